//===- W4A4ToKernels.h - model-level w4a4 to kernel-level w4a4k -*- C++ -*-===//

#ifndef W4A4_CONVERSION_W4A4TOKERNELS_H
#define W4A4_CONVERSION_W4A4TOKERNELS_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/PatternMatch.h"
#include "w4a4/runtime/WeightsFile.h"

#include <vector>

namespace mlir::w4a4 {

/// The patterns of --w4a4-lower-to-kernels for `target` ("cpu"): one per
/// model-level op; ops a pattern leaves alone have no kernel on the target.
void populateW4A4ToKernelsPatterns(RewritePatternSet &patterns,
                                   StringRef target);

/// The patterns of --w4a4k-fuse: rms_norm -> quantize, swiglu ->
/// [hadamard] -> quantize, add(qgemm, r) -> qgemm with a residual.
void populateW4A4KFusionPatterns(RewritePatternSet &patterns);

/// The weights a compiled @forward reads, in the order of weights.bin: every
/// w4a4.weight of the function (f32 or i8), with its data (splats
/// expanded into `owned`).
struct KernelWeights {
  std::vector<::w4a4::rt::WeightEntry> entries;
  std::vector<const void *> data;
  std::vector<std::vector<char>> owned;
  llvm::DenseMap<Operation *, int> index;
};
FailureOr<KernelWeights> collectKernelWeights(func::FuncOp func);

} // namespace mlir::w4a4

#endif
