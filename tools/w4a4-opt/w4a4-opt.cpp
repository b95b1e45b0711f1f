//===- w4a4-opt.cpp - opt-style driver for w4a4 IR ------------------------===//
//
// Parses textual or bytecode IR holding the w4a4, func and arith dialects,
// runs the requested passes and pipelines, and prints the result. Every stage
// of the compiler is a pass or named pipeline registered here, so any stage
// can be replayed alone on textual IR. `--w4a4-report=FILE.json` writes what
// each pass did (time, ops added/removed, the pass's own facts).
//
//===----------------------------------------------------------------------===//

#include "dialects/W4A4/W4A4Dialect.h"
#include "dialects/W4A4Kernel/W4A4KernelDialect.h"
#include "passes/Conversion/Passes.h"
#include "passes/Passes.h"
#include "passes/Report.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/EmitC/IR/EmitC.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"
#include "support/AtomicFile.h"
#include "support/ParseDeadline.h"
#include "support/ThreadPolicy.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"

static llvm::cl::opt<std::string> reportFile(
    "w4a4-report",
    llvm::cl::desc("Write a JSON summary of what each pass did to this file"),
    llvm::cl::value_desc("FILE.json"), llvm::cl::init(""));

int main(int argc, char **argv) {
  // Calibration runs the kernels: OpenMP workers that park (unless the user
  // chose a wait policy).
  w4a4::useParkingThreads(argc, argv);
  llvm::InitLLVM y(argc, argv);
  mlir::DialectRegistry registry;
  registry.insert<mlir::w4a4::W4A4Dialect, mlir::w4a4k::W4A4KDialect,
                  mlir::func::FuncDialect, mlir::arith::ArithDialect,
                  mlir::emitc::EmitCDialect>();

  // Upstream generic passes (canonicalize, cse, symbol-dce, inline, ...).
  mlir::registerTransformsPasses();
  mlir::w4a4::registerW4A4Passes();
  mlir::w4a4::registerW4A4ConversionPasses();
  mlir::w4a4::registerW4A4Pipelines();

  auto [inputFilename, outputFilename] = mlir::registerAndParseCLIOptions(
      argc, argv, "w4a4 optimizer driver: runs w4a4 passes on MLIR\n",
      registry);
  mlir::MlirOptMainConfig cliConfig =
      mlir::MlirOptMainConfig::createFromCLOptions();
  mlir::MlirOptMainConfig config = cliConfig;
  auto log = std::make_shared<mlir::w4a4::ReportLog>();
  // Reading the input runs under a deadline (support/ParseDeadline.h),
  // disarmed once MlirOptMain has parsed it and sets up the passes.
  std::unique_ptr<::w4a4::ParseDeadline> deadline;
  config.setPassPipelineSetupFn([&](mlir::PassManager &pm) {
    if (deadline)
      deadline->disarm();
    if (mlir::failed(cliConfig.setupPassPipeline(pm)))
      return mlir::failure();
    if (!reportFile.empty())
      pm.addInstrumentation(
          std::make_unique<mlir::w4a4::ReportInstrumentation>(log));
    return mlir::success();
  });

  w4a4::exitCleanlyOnFatalErrors("w4a4-opt", inputFilename == "-"
                                                 ? std::string("<stdin>")
                                                 : std::string(inputFilename));
  std::string error;
  auto input = mlir::openInputFile(inputFilename, &error);
  if (!input) {
    llvm::errs() << "w4a4-opt: " << error << "\n";
    return 1;
  }
  // A NUL byte ends the text parser's input: a file of NULs would pass as
  // an empty module.
  if (llvm::Error e =
          w4a4::checkMlirInput(inputFilename == "-" ? "<stdin>" : inputFilename,
                               input->getBuffer())) {
    llvm::errs() << "w4a4-opt: " << llvm::toString(std::move(e)) << "\n";
    return 1;
  }
  // Written to a temporary file renamed over the destination on success:
  // `-o` may name the input, and a failed run leaves an existing output as
  // it was.
  auto output = ::w4a4::AtomicOutput::open(outputFilename);
  if (!output) {
    llvm::errs() << "w4a4-opt: " << llvm::toString(output.takeError()) << "\n";
    return 1;
  }
  deadline = std::make_unique<::w4a4::ParseDeadline>(
      ::w4a4::parseDeadlineSeconds(input->getBufferSize()));
  // Bytecode is read once under the crash guard (support/ParseDeadline.h)
  // before MlirOptMain reads it again: MLIR's bytecode reader can crash on
  // a malformed file, and only the reading may be guarded, not the passes.
  if (input->getBuffer().starts_with("ML\xefR")) {
    mlir::MLIRContext probe(registry);
    probe.disableMultithreading();
    mlir::ParserConfig parserConfig(&probe, /*verifyAfterParse=*/false);
    mlir::ScopedDiagnosticHandler quiet(
        &probe, [](mlir::Diagnostic &) { return mlir::success(); });
    ::w4a4::parseOrExitOnCrash(
        [&] {
          (void)mlir::parseSourceString<mlir::ModuleOp>(
              input->getBuffer(), parserConfig, input->getBufferIdentifier());
        },
        input->getBufferSize());
  }
  mlir::LogicalResult result =
      mlir::MlirOptMain((*output)->os(), std::move(input), registry, config);
  deadline.reset();
  if (!reportFile.empty() && !log->write(reportFile, error)) {
    llvm::errs() << "w4a4-opt: " << error << "\n";
    return 1;
  }
  if (mlir::failed(result))
    return 1;
  if (llvm::Error e = (*output)->commit()) {
    llvm::errs() << "w4a4-opt: " << llvm::toString(std::move(e)) << "\n";
    return 1;
  }
  return 0;
}
