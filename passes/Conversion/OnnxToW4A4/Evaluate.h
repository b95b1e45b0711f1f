//===- Evaluate.h - evaluate small generic-IR subgraphs ---------*- C++ -*-===//
//
// Raising by meaning: instead of recognising every spelling of a causal
// mask or of a RoPE table, the raising patterns evaluate the subgraph that
// computes it on concrete small inputs (batch 1, a short sequence, an empty
// KV past, an all-ones attention_mask, position_ids 0..n-1) and check what
// it computes. Values in float64; only subgraphs that depend on nothing but
// constants, weights, those inputs and explicitly bound values evaluate.
//
//===----------------------------------------------------------------------===//

#ifndef W4A4_CONVERSION_ONNXTOW4A4_EVALUATE_H
#define W4A4_CONVERSION_ONNXTOW4A4_EVALUATE_H

#include "dialects/W4A4/W4A4Ops.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/DenseMap.h"

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mlir::w4a4 {

struct ETensor {
  std::vector<int64_t> shape;
  std::vector<double> v;
  /// Elements, saturating: -1 for a negative dim, kTooLarge past the
  /// evaluator's limit (no overflow on hostile shapes).
  static constexpr int64_t kTooLarge = (int64_t{1} << 22) + 1;
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) {
      if (d < 0)
        return -1;
      if (d != 0 && n > kTooLarge / d)
        return kTooLarge;
      n *= d;
    }
    return std::min(n, kTooLarge);
  }
  bool sizeOk() const { return numel() >= 0 && numel() < kTooLarge; }
};

/// ONNX input `pos` of a generic op (absent optional inputs are not
/// operands), or null.
Value onnxInput(OnnxOp op, int64_t pos);

/// An integer attribute of a generic op, or `dflt`.
int64_t onnxAttrInt(OnnxOp op, llvm::StringRef name, int64_t dflt);

/// Stage 1's symbolic dims of `v` (`w4a4.dims` of its defining op, or of the
/// function argument), or null.
ArrayAttr stageOneDims(Value v);

class SubgraphEvaluator {
public:
  /// Binds the function's inputs for a run of `seq` positions after an
  /// empty past: input_ids stay unbound (nothing may depend on token ids),
  /// attention_mask = ones, position_ids = 0..seq-1, past_* empty.
  /// `batch` > 1 evaluates several probes at once (one per batch entry).
  SubgraphEvaluator(func::FuncOp func, int64_t seq, int64_t batch = 1);

  void bind(Value v, ETensor t) { memo[v] = std::move(t); }
  /// The value of `v`, or nullopt when it depends on something unbound or
  /// an op this evaluator does not know (why() says which).
  std::optional<ETensor> eval(Value v);
  /// Like eval(), with why() about this evaluation only.
  std::optional<ETensor> evalFresh(Value v) {
    reason.clear();
    return eval(v);
  }
  /// The concrete shape of `v` under the bindings (static type, stage 1's
  /// symbolic dims, or by evaluation).
  std::optional<std::vector<int64_t>> shapeOf(Value v);
  const std::string &why() const { return reason; }
  const std::map<std::string, int64_t> &symbols() const { return bindings; }
  int64_t seq() const { return seqLen; }

private:
  std::optional<ETensor> evalOp(Operation *op, unsigned resultIndex);
  std::optional<ETensor> fail(const std::string &message) {
    if (reason.empty())
      reason = message;
    return std::nullopt;
  }
  std::optional<std::vector<int64_t>> evalDims(ArrayAttr dims);
  std::optional<std::vector<int64_t>> shapeOfUnchecked(Value v);
  llvm::DenseMap<Value, ETensor> memo;
  std::map<std::string, int64_t> bindings;
  std::string reason;
  int64_t seqLen;
  int64_t depth = 0;
};

} // namespace mlir::w4a4

#endif // W4A4_CONVERSION_ONNXTOW4A4_EVALUATE_H
