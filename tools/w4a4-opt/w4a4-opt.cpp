//===- w4a4-opt.cpp - opt-style driver for w4a4 IR ------------------------===//
//
// Parses textual or bytecode IR holding the w4a4, func and arith dialects,
// runs the requested passes and pipelines, and prints the result. Every stage
// of the compiler is a pass or named pipeline registered here, so any stage
// can be replayed alone on textual IR.
//
//===----------------------------------------------------------------------===//

#include "dialects/W4A4/W4A4Dialect.h"
#include "passes/Conversion/Passes.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  registry.insert<mlir::w4a4::W4A4Dialect, mlir::func::FuncDialect,
                  mlir::arith::ArithDialect>();

  // Upstream generic passes (canonicalize, cse, symbol-dce, inline, ...).
  mlir::registerTransformsPasses();
  mlir::w4a4::registerW4A4Passes();
  mlir::w4a4::registerW4A4ConversionPasses();
  mlir::w4a4::registerW4A4Pipelines();

  return mlir::asMainReturnCode(mlir::MlirOptMain(
      argc, argv, "w4a4 optimizer driver: runs w4a4 passes on MLIR\n",
      registry));
}
