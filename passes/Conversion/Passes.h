//===- Passes.h - w4a4 conversion passes ------------------------*- C++ -*-===//

#ifndef W4A4_CONVERSION_PASSES_H
#define W4A4_CONVERSION_PASSES_H

#include "dialects/W4A4/W4A4Dialect.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Pass/Pass.h"

namespace mlir::w4a4 {

#define GEN_PASS_DECL
#include "passes/Conversion/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "passes/Conversion/Passes.h.inc"

/// The canonicalization patterns of w4a4-normalize-onnx.
void populateNormalizeOnnxPatterns(RewritePatternSet &patterns);

/// The raising patterns of one phase (1, 2 or 3) of w4a4-raise-onnx.
void populateRaiseOnnxPatterns(RewritePatternSet &patterns, int phase);

} // namespace mlir::w4a4

#endif // W4A4_CONVERSION_PASSES_H
