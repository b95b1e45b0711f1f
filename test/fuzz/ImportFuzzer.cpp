//===- ImportFuzzer.cpp - libFuzzer target over the ONNX importer ---------===//
//
// Feeds arbitrary bytes through the whole importer: protobuf parsing and
// validation, shape inference, IR construction, verification and raising.
// Any input must end in a module or an error message, never a crash, hang
// or sanitizer report. Built by scripts/fuzz-importer.sh.
//
//===----------------------------------------------------------------------===//

#include "passes/Conversion/OnnxToW4A4/ImportOnnx.h"
#include "passes/Conversion/Passes.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mlir::MLIRContext context;
  context.disableMultithreading();
  // Raising failures are diagnostics; keep them quiet.
  mlir::ScopedDiagnosticHandler quiet(
      &context, [](mlir::Diagnostic &) { return mlir::success(); });
  auto module = mlir::w4a4::importOnnxBytes(
      llvm::StringRef(reinterpret_cast<const char *>(data), size), "fuzz.onnx",
      &context);
  if (!module) {
    llvm::consumeError(module.takeError());
    return 0;
  }
  mlir::PassManager pm(&context);
  pm.addPass(mlir::w4a4::createW4A4NormalizeOnnx());
  pm.addPass(mlir::w4a4::createW4A4RaiseOnnx());
  (void)pm.run(module->get());
  return 0;
}
