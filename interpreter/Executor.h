//===- Executor.h - run w4a4 IR through the runtime kernels -----*- C++ -*-===//
//
// Interprets the entry function of a w4a4 module op by op with the CPU
// kernels of w4a4_runtime. Shapes are resolved at run time (batch and
// sequence may be dynamic in the IR). Weights are read once from their
// attributes (dense_resource blobs are used in place, without a copy).
// The interpreter is on the compiler side (it reads MLIR); the runtime it
// drives does not link MLIR.
//
//===----------------------------------------------------------------------===//

#ifndef W4A4_INTERPRETER_EXECUTOR_H
#define W4A4_INTERPRETER_EXECUTOR_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/Support/Error.h"

#include <memory>
#include <vector>

#include "w4a4/runtime/Device.h"

namespace mlir::w4a4 {

/// A host tensor: fp32 or int64, row-major. Data is owned, or borrowed from
/// an attribute that outlives the executor's module.
struct HostTensor {
  std::vector<int64_t> shape;
  std::shared_ptr<std::vector<float>> owned;
  /// Or the data lives in a device buffer (host-visible for the CPU device).
  std::shared_ptr<::w4a4::rt::Buffer> buffer;
  const float *f32 = nullptr;
  std::shared_ptr<std::vector<int64_t>> ids;

  int64_t numel() const;
  static HostTensor zerosF32(std::vector<int64_t> shape);
  float *mutableF32() { return owned ? owned->data() : buffer->f32(); }
};

/// What a function input of the entry is. The first is always the token
/// ids; an export that keeps its KV cache also takes position ids and the
/// past keys / values of every attention.
enum class InputKind { Ids, Positions, Past };

class Executor {
public:
  /// Prepares `entry` of `module` (which must outlive the executor) to run
  /// on `device` (default: the CPU backend). Every kernel goes through the
  /// device's interface on its default stream.
  static llvm::Expected<std::unique_ptr<Executor>>
  create(ModuleOp module, llvm::StringRef entry = "forward",
         std::shared_ptr<::w4a4::rt::Device> device = nullptr);

  ::w4a4::rt::Device &getDevice() { return *device; }

  /// Runs the function on token ids [batch, seq] and returns its single
  /// result (logits [batch, seq, vocab]). `observe`, when given, sees every
  /// op result as it is computed. seq may be 0 (only a register prefix runs).
  llvm::Expected<HostTensor>
  run(const std::vector<int64_t> &ids, int64_t batch, int64_t seq,
      llvm::function_ref<void(Value, const HostTensor &)> observe = {});

  /// Runs the function on all its inputs (`inputs()` says what each is:
  /// ids and positions as `ids` tensors [batch, seq], pasts as fp32
  /// [batch, kv_heads, past, head_dim]) and returns all its results (logits,
  /// then the present keys / values of a model that keeps its KV cache).
  llvm::Expected<std::vector<HostTensor>>
  runAll(const std::vector<HostTensor> &inputs,
         llvm::function_ref<void(Value, const HostTensor &)> observe = {});

  /// The entry's inputs, in order.
  const std::vector<InputKind> &inputs() const { return kinds; }
  /// The [kv_heads, head_dim] of past input `i`.
  std::pair<int64_t, int64_t> pastDims(unsigned i) const;

  /// The inputs of a call on `ids` [batch, seq] that follows a KV cache
  /// `presents` (the previous call's results after the logits; none: an
  /// empty cache): positions past..past+seq-1.
  llvm::Expected<std::vector<HostTensor>>
  inputsFor(const std::vector<int64_t> &ids, int64_t batch, int64_t seq,
            const std::vector<HostTensor> &presents = {}) const;

  /// Like run(), but only positions [begin, end) of the result are needed
  /// (perplexity scores part of each window): returns [batch, end - begin,
  /// vocab]. The row-wise tail of the function (the ops after the last one
  /// that mixes positions: final norm, LM head, usually the last layer's
  /// o_proj and MLP) runs on those positions only. Each row of the tail is
  /// computed as in run(), so the rows equal run()'s up to the BLAS's
  /// blocking of the GEMM.
  llvm::Expected<HostTensor> runRows(const std::vector<int64_t> &ids,
                                     int64_t batch, int64_t seq, int64_t begin,
                                     int64_t end);

private:
  llvm::Expected<std::vector<HostTensor>>
  execute(const std::vector<HostTensor> &inputs,
          llvm::function_ref<void(Value, const HostTensor &)> observe,
          int64_t begin, int64_t end);
  Executor() = default;
  llvm::Expected<HostTensor> constant(Operation *op, Attribute value);
  llvm::Error prepareQLinear(Operation *op);

  Operation *func = nullptr;
  std::vector<InputKind> kinds;
  /// The row-wise tail: ops whose every result row depends only on the same
  /// row of their operands, and whose results are used only by the tail or
  /// returned.
  llvm::DenseSet<Operation *> tail;
  std::shared_ptr<::w4a4::rt::Device> device;
  llvm::DenseMap<Operation *, HostTensor> constants;
  /// Per qlinear: unpacked integer weights, and dequantized fp32 weights for
  /// floating-point activations.
  llvm::DenseMap<Operation *, std::shared_ptr<::w4a4::rt::PackedWeights>>
      packed;
  llvm::DenseMap<Operation *, HostTensor> dequantized;
};

} // namespace mlir::w4a4

#endif // W4A4_INTERPRETER_EXECUTOR_H
