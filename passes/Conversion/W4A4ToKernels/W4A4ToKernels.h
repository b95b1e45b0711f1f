//===- W4A4ToKernels.h - model-level w4a4 to kernel-level w4a4k -*- C++ -*-===//

#ifndef W4A4_CONVERSION_W4A4TOKERNELS_H
#define W4A4_CONVERSION_W4A4TOKERNELS_H

#include "mlir/IR/PatternMatch.h"

namespace mlir::w4a4 {

/// The patterns of --w4a4-lower-to-kernels for `target` ("cpu"): one per
/// model-level op; ops a pattern leaves alone have no kernel on the target.
void populateW4A4ToKernelsPatterns(RewritePatternSet &patterns,
                                   StringRef target);

} // namespace mlir::w4a4

#endif
