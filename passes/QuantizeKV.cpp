//===- QuantizeKV.cpp - w4a4-quantize-kv ----------------------------------===//
//
// Per-token, per-head (or per-group) symmetric b-bit fake quantization of the
// keys (after RoPE) and values that attention reads: a `w4a4.quantize` with
// `group_size` in front of each. The folded register prefix is a separate
// constant operand and stays in floating point.
//
//===----------------------------------------------------------------------===//

#include "dialects/W4A4/W4A4Ops.h"
#include "passes/Passes.h"
#include "passes/Report.h"

#include "mlir/IR/Builders.h"

namespace mlir::w4a4 {
#define GEN_PASS_DEF_W4A4QUANTIZEKV
#include "passes/Passes.h.inc"
} // namespace mlir::w4a4

using namespace mlir;
using namespace mlir::w4a4;

namespace {

struct QuantizeKVPass : mlir::w4a4::impl::W4A4QuantizeKVBase<QuantizeKVPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (bits < 2 || bits > 8) {
      module.emitError("w4a4-quantize-kv: bits must be in [2, 8], got ")
          << static_cast<int64_t>(bits);
      return signalPassFailure();
    }
    if (group < 0) {
      module.emitError("w4a4-quantize-kv: group must be >= 0 (0: one scale "
                       "per head), got ")
          << static_cast<int64_t>(group);
      return signalPassFailure();
    }
    bool registers = false;
    module.walk([&](RegistersOp) { registers = true; });
    if (registers) {
      module.emitError("w4a4-quantize-kv: the model has Depth Registers; run "
                       "w4a4-fold-registers first so that the register "
                       "prefix stays floating point");
      return signalPassFailure();
    }
    SmallVector<AttentionOp> attentions;
    module.walk([&](AttentionOp a) { attentions.push_back(a); });
    for (AttentionOp a : attentions) {
      int64_t hd = a.getHeadDim(), g = group ? int64_t(group) : hd;
      int64_t width = a.getNumKvHeads() * hd;
      if (width % g != 0) {
        a.emitError("w4a4-quantize-kv: group ")
            << g << " does not divide the key/value width " << width;
        return signalPassFailure();
      }
      for (OpOperand *operand : {&a.getKeyMutable(), &a.getValueMutable()}) {
        Value v = operand->get();
        if (v.getDefiningOp<QuantizeOp>()) {
          a.emitError("w4a4-quantize-kv: keys/values are already quantized");
          return signalPassFailure();
        }
        OpBuilder b(a);
        auto q = QuantizeOp::create(
            b, a.getLoc(), v.getType(), v, b.getI64IntegerAttr(bits),
            b.getF64FloatAttr(1.0), b.getI64IntegerAttr(g));
        operand->set(q.getResult());
      }
    }
    reportFact("bits", static_cast<int64_t>(bits));
    reportFact("group", static_cast<int64_t>(group));
    reportFact("attentions", static_cast<int64_t>(attentions.size()));
  }
};

} // namespace
