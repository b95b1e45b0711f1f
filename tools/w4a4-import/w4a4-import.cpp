//===- w4a4-import.cpp - import ONNX models into w4a4 IR ------------------===//
//
// w4a4-import model.onnx [-o out.mlir] [--emit-bytecode] [--raise=false]
//
// Reads and validates the ONNX file, imports it into w4a4 IR (stage 1: one
// `w4a4.onnx` op per node, weights as dense_resource blobs), raises it to
// model-level ops (stage 2: the w4a4-raise-onnx pass) and prints it. Errors
// name the file, node, op type and opset, and exit non-zero.
//
//===----------------------------------------------------------------------===//

#include "passes/Conversion/OnnxToW4A4/ImportOnnx.h"
#include "passes/Conversion/Passes.h"

#include "mlir/Bytecode/BytecodeWriter.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OperationSupport.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "support/AtomicFile.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/WithColor.h"

using namespace llvm;

static cl::OptionCategory toolOptions("w4a4-import options");

static cl::opt<std::string> inputFile(cl::Positional, cl::cat(toolOptions),
                                      cl::desc("<model.onnx>"), cl::Required);
static cl::opt<std::string>
    outputFile("o", cl::cat(toolOptions),
               cl::desc("Output file (default: stdout)"),
               cl::value_desc("filename"), cl::init("-"));
static cl::opt<bool>
    emitBytecode("emit-bytecode", cl::cat(toolOptions),
                 cl::desc("Write MLIR bytecode instead of text"));
static cl::opt<bool> raise("raise", cl::cat(toolOptions),
                           cl::desc("Raise to model-level ops (stage 2); "
                                    "--raise=false keeps the w4a4.onnx ops"),
                           cl::init(true));
static cl::opt<int64_t> elideLarger(
    "elide-resources-larger-than", cl::cat(toolOptions),
    cl::desc("Print weight blobs larger than this many bytes as __elided__ "
             "(for reading; the output cannot be executed)"),
    cl::init(0));

int main(int argc, char **argv) {
  InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions(toolOptions);
  cl::ParseCommandLineOptions(argc, argv, "w4a4 ONNX importer\n");
  w4a4::exitCleanlyOnFatalErrors("w4a4-import", inputFile);

  mlir::MLIRContext context;
  auto module = mlir::w4a4::importOnnxFile(inputFile, &context);
  if (!module) {
    WithColor::error(errs(), "w4a4-import")
        << toString(module.takeError()) << "\n";
    return 1;
  }
  if (raise) {
    mlir::PassManager pm(&context);
    pm.addPass(mlir::w4a4::createW4A4NormalizeOnnx());
    pm.addPass(mlir::w4a4::createW4A4RaiseOnnx());
    if (mlir::failed(pm.run(module->get()))) {
      WithColor::error(errs(), "w4a4-import")
          << inputFile << ": raising failed (see the diagnostic above)\n";
      return 1;
    }
  }
  auto output = ::w4a4::AtomicOutput::open(outputFile);
  if (!output) {
    WithColor::error(errs(), "w4a4-import")
        << toString(output.takeError()) << "\n";
    return 1;
  }
  if (emitBytecode) {
    if (mlir::failed(
            mlir::writeBytecodeToFile(module->get(), (*output)->os()))) {
      WithColor::error(errs(), "w4a4-import") << "cannot write bytecode\n";
      return 1;
    }
  } else {
    mlir::OpPrintingFlags flags;
    if (elideLarger > 0)
      flags.elideLargeResourceString(elideLarger);
    module->get()->print((*output)->os(), flags);
    (*output)->os() << "\n";
  }
  if (Error e = (*output)->commit()) {
    WithColor::error(errs(), "w4a4-import") << toString(std::move(e)) << "\n";
    return 1;
  }
  return 0;
}
