//===- Passes.h - w4a4 passes -----------------------------------*- C++ -*-===//

#ifndef W4A4_PASSES_PASSES_H
#define W4A4_PASSES_PASSES_H

#include "dialects/W4A4/W4A4Dialect.h"
#include "mlir/Pass/Pass.h"

namespace mlir::w4a4 {

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

/// Registers the named pipelines (w4a4-quantize-pipeline).
void registerW4A4Pipelines();

} // namespace mlir::w4a4

#endif // W4A4_PASSES_PASSES_H
