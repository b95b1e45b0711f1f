//===- w4a4-compile.cpp - ahead-of-time compiler for w4a4 models ----------===//
//
// w4a4-compile q.mlir --target=cpu -o out/ writes a directory a user can
// ship:
//   model.cpp      the generated source (w4a4k kernel-level IR through EmitC)
//   model.h        the C API (w4a4/runtime/w4a4_model.h)
//   weights.bin    aligned, mappable weights with a header and a checksum
//   manifest.json  model config, the recipe the module records, checksum
//   libmodel.so    model.cpp built with the system compiler against the
//                  runtime (statically; libmodel.map: only w4a4_* exported),
//                  unless --no-build
// The pipeline is --w4a4-lower-to-kernels{target} --w4a4k-plan-buffers
// --w4a4k-to-emitc, each replayable in w4a4-opt.
//
//===----------------------------------------------------------------------===//

#include "dialects/W4A4/W4A4Dialect.h"
#include "dialects/W4A4/W4A4Ops.h"
#include "dialects/W4A4Kernel/W4A4KernelDialect.h"
#include "passes/Conversion/Passes.h"
#include "passes/Conversion/W4A4ToKernels/W4A4ToKernels.h"
#include "support/AtomicFile.h"
#include "support/ParseDeadline.h"
#include "w4a4/runtime/WeightsFile.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/EmitC/IR/EmitC.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/Cpp/CppEmitter.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/raw_ostream.h"

#include <nlohmann/json.hpp>

#include <cinttypes>
#include <cstdio>

using namespace llvm;
namespace cl = llvm::cl;

static cl::OptionCategory toolOptions("w4a4-compile options");

static cl::opt<std::string> inputPath(cl::Positional, cl::cat(toolOptions),
                                      cl::Required,
                                      cl::desc("<quantized w4a4 IR>"));
static cl::opt<std::string> outputDir("o", cl::cat(toolOptions), cl::Required,
                                      cl::desc("Output directory"),
                                      cl::value_desc("DIR"));
static cl::opt<std::string> target("target", cl::cat(toolOptions),
                                   cl::init("cpu"), cl::desc("Target: cpu"));
static cl::opt<bool> noBuild("no-build", cl::cat(toolOptions),
                             cl::desc("Write the sources, do not build "
                                      "libmodel.so"));
static cl::opt<std::string>
    tokenizer("tokenizer", cl::cat(toolOptions), cl::init(""),
              cl::desc("A tokenizer model to copy into the artifact (its "
                       "file name goes into the manifest)"));
static cl::opt<bool>
    noFuse("no-fuse", cl::cat(toolOptions), cl::init(false),
           cl::desc("Skip --w4a4k-fuse (norm / SwiGLU producers fused with "
                    "their quantization, residual adds in GEMM epilogues)"));
static cl::opt<std::string> cxx("cxx", cl::cat(toolOptions),
                                cl::init(W4A4_DEFAULT_CXX),
                                cl::desc("C++ compiler for libmodel.so"));
static cl::opt<std::string>
    runtimeInclude("runtime-include", cl::cat(toolOptions),
                   cl::init(W4A4_RUNTIME_INCLUDE_DIR),
                   cl::desc("Directory holding w4a4/runtime/*.h"));
static cl::opt<std::string>
    runtimeLibrary("runtime-library", cl::cat(toolOptions),
                   cl::init(W4A4_RUNTIME_LIBRARY),
                   cl::desc("The static runtime library to link"));
static cl::opt<std::string> runtimeCoreLibrary(
    "runtime-core-library", cl::cat(toolOptions),
    cl::init(W4A4_RUNTIME_CORE_LIBRARY),
    cl::desc("The static runtime core library to link (Hadamard, weights "
             "file)"));

namespace {

Error fail(const Twine &message) { return createStringError(message.str()); }

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, v);
  return buf;
}

std::string attrString(mlir::Attribute a) {
  std::string s;
  llvm::raw_string_ostream os(s);
  a.print(os);
  return s;
}

Error writeArtifact(mlir::ModuleOp module) {
  if (target != "cpu")
    return fail("unknown target '" + target + "' (available: cpu)");
  if (std::error_code ec = sys::fs::create_directories(outputDir))
    return fail(outputDir + ": cannot create the directory: " + ec.message());
  if (!sys::fs::is_directory(outputDir))
    return fail(outputDir + ": not a directory");
  mlir::PassManager lower(module.getContext());
  mlir::w4a4::W4A4LowerToKernelsOptions options;
  options.target = target;
  lower.addPass(mlir::w4a4::createW4A4InternalizeKVCache());
  lower.addPass(mlir::w4a4::createW4A4LowerToKernels(options));
  if (!noFuse)
    lower.addPass(mlir::w4a4::createW4A4KFuse());
  lower.addPass(mlir::w4a4::createW4A4KSplitTail());
  lower.addPass(mlir::w4a4::createW4A4KPlanBuffers());
  if (mlir::failed(lower.run(module)))
    return fail(inputPath + ": cannot lower to target '" + target + "'");
  auto func = module.lookupSymbol<mlir::func::FuncOp>("forward");
  mlir::FailureOr<mlir::w4a4::KernelWeights> weights =
      mlir::w4a4::collectKernelWeights(func);
  if (mlir::failed(weights))
    return fail(inputPath + ": cannot collect the weights");
  uint64_t checksum = 0;
  std::string image =
      ::w4a4::rt::serializeWeights(weights->entries, weights->data, &checksum);
  auto path = [&](StringRef name) {
    SmallString<256> p(outputDir);
    sys::path::append(p, name);
    return std::string(p);
  };
  if (Error e = ::w4a4::writeFileAtomically(path("weights.bin"), image))
    return e;

  // The manifest: what the model is and how it was made.
  nlohmann::ordered_json manifest;
  manifest["format"] = "w4a4c-artifact";
  manifest["format_version"] = 1;
  manifest["target"] = target.getValue();
  manifest["weights"] = "weights.bin";
  manifest["weights_format_version"] = ::w4a4::rt::kWeightsVersion;
  manifest["weights_checksum"] = hex64(checksum);
  manifest["library"] = noBuild ? "" : "libmodel.so";
  auto result = cast<mlir::RankedTensorType>(func.getResultTypes()[0]);
  nlohmann::ordered_json config;
  config["vocab"] = result.getShape().back();
  int64_t layers = 0;
  func.walk([&](mlir::w4a4k::AttentionOp a) {
    ++layers;
    config["num_heads"] = a.getNumHeads();
    config["num_kv_heads"] = a.getNumKvHeads();
    config["head_dim"] = a.getHeadDim();
  });
  config["layers"] = layers;
  manifest["config"] = config;
  nlohmann::ordered_json recipe = nlohmann::ordered_json::object();
  int64_t qgemms = 0, bits = 0, actBits = 0;
  func.walk([&](mlir::w4a4k::QGemmOp q) {
    ++qgemms;
    bits = q.getWeightBits();
    actBits = q.getInput().getType().getBits();
  });
  recipe["quantized_linears"] = qgemms;
  if (qgemms) {
    recipe["weight_bits"] = bits;
    recipe["act_bits"] = actBits;
  }
  for (mlir::NamedAttribute a : module->getAttrs())
    if (a.getName().strref().starts_with("w4a4."))
      recipe[a.getName().strref().drop_front(5).str()] =
          attrString(a.getValue());
  manifest["module"] = recipe;
  if (!tokenizer.empty()) {
    std::string name = sys::path::filename(tokenizer).str();
    auto bytes = MemoryBuffer::getFile(tokenizer, /*IsText=*/false);
    if (!bytes)
      return fail(tokenizer + ": " + bytes.getError().message());
    if (Error e =
            ::w4a4::writeFileAtomically(path(name), (*bytes)->getBuffer()))
      return e;
    manifest["tokenizer"] = name;
  }
  if (Error e = ::w4a4::writeFileAtomically(path("manifest.json"),
                                            manifest.dump(2) + "\n"))
    return e;

  // model.cpp through EmitC.
  mlir::PassManager emit(module.getContext());
  mlir::w4a4::W4A4KToEmitCOptions emitOptions;
  emitOptions.weightsChecksum = hex64(checksum); // weights.bin is written
  emit.addPass(mlir::w4a4::createW4A4KToEmitC(emitOptions));
  if (mlir::failed(emit.run(module)))
    return fail(inputPath + ": cannot emit C++");
  std::string source = "// Generated by w4a4-compile from " +
                       sys::path::filename(inputPath).str() + " (target " +
                       target.getValue() + "). Do not edit.\n";
  raw_string_ostream os(source);
  if (mlir::failed(mlir::emitc::translateToCpp(module, os)))
    return fail(inputPath + ": the C++ emitter failed");
  if (Error e = ::w4a4::writeFileAtomically(path("model.cpp"), source))
    return e;
  SmallString<256> header(runtimeInclude);
  sys::path::append(header, "w4a4", "runtime", "w4a4_model.h");
  auto h = MemoryBuffer::getFile(header, /*IsText=*/true);
  if (!h)
    return fail(std::string(header) + ": " + h.getError().message() +
                " (--runtime-include)");
  if (Error e = ::w4a4::writeFileAtomically(path("model.h"), (*h)->getBuffer()))
    return e;
  if (noBuild)
    return Error::success();

  // libmodel.so: the runtime linked in statically, only the C API exported.
  auto compiler = sys::findProgramByName(cxx);
  if (!compiler)
    return fail("cannot find the C++ compiler '" + cxx + "' (--cxx)");
  std::string lib = path("libmodel.so"), tmp = lib + ".tmp";
  // Only the C API is exported (the runtime inside stays private).
  std::string exports = path("libmodel.map");
  if (Error e = ::w4a4::writeFileAtomically(
          exports, "{\n  global: w4a4_*;\n  local: *;\n};\n"))
    return e;
  std::vector<std::string> args = {
      *compiler, "-O2", "-std=c++17", "-fPIC", "-shared", "-fvisibility=hidden",
      "-fopenmp",
      // No path of this machine in the library.
      "-ffile-prefix-map=" + outputDir + "=.", "-I" + runtimeInclude,
      path("model.cpp"), "-Wl,--whole-archive", runtimeLibrary.getValue(),
      runtimeCoreLibrary.getValue(), "-Wl,--no-whole-archive",
      "-Wl,--version-script=" + exports,
      // OpenMP's worker threads outlive a
      // dlclose: never unload the library.
      "-Wl,-z,nodelete", W4A4_OPENBLAS_LIBRARY, "-o", tmp};
  std::vector<StringRef> argv(args.begin(), args.end());
  std::string errors;
  int rc =
      sys::ExecuteAndWait(*compiler, argv, std::nullopt, {}, 0, 0, &errors);
  if (rc != 0) {
    sys::fs::remove(tmp);
    return fail("building " + lib + " failed (" + cxx + " exit code " +
                std::to_string(rc) + (errors.empty() ? "" : ": " + errors) +
                ")");
  }
  if (std::error_code ec = sys::fs::rename(tmp, lib))
    return fail(lib + ": " + ec.message());
  return Error::success();
}

} // namespace

int main(int argc, char **argv) {
  InitLLVM y(argc, argv);
  cl::HideUnrelatedOptions(toolOptions);
  cl::ParseCommandLineOptions(
      argc, argv,
      "w4a4-compile: compiles quantized w4a4 IR into a directory with "
      "model.cpp, model.h, weights.bin, manifest.json and libmodel.so\n");
  ::w4a4::exitCleanlyOnFatalErrors("w4a4-compile", inputPath);
  mlir::DialectRegistry registry;
  registry.insert<mlir::w4a4::W4A4Dialect, mlir::w4a4k::W4A4KDialect,
                  mlir::func::FuncDialect, mlir::arith::ArithDialect,
                  mlir::emitc::EmitCDialect>();
  mlir::MLIRContext context(registry);
  context.loadAllAvailableDialects();
  if (Error e = ::w4a4::checkRegularInput(inputPath, "the input IR")) {
    errs() << "w4a4-compile: error: " << toString(std::move(e)) << "\n";
    return 1;
  }
  if (StringRef(inputPath).ends_with(".onnx")) {
    errs() << "w4a4-compile: error: " << inputPath
           << ": an ONNX file; import and quantize it first (w4a4-import, "
              "w4a4-opt --w4a4-quantize-pipeline)\n";
    return 1;
  }
  auto bytes = MemoryBuffer::getFile(inputPath, /*IsText=*/false,
                                     /*RequiresNullTerminator=*/false);
  if (!bytes) {
    errs() << "w4a4-compile: error: " << inputPath << ": "
           << bytes.getError().message() << "\n";
    return 1;
  }
  if (Error e = ::w4a4::checkMlirInput(inputPath, (*bytes)->getBuffer())) {
    errs() << "w4a4-compile: error: " << toString(std::move(e)) << "\n";
    return 1;
  }
  mlir::OwningOpRef<mlir::ModuleOp> module;
  {
    ::w4a4::ParseDeadline deadline(
        ::w4a4::parseDeadlineSeconds((*bytes)->getBufferSize()));
    ::w4a4::parseOrExitOnCrash(
        [&] {
          module = mlir::parseSourceFile<mlir::ModuleOp>(inputPath, &context);
        },
        (*bytes)->getBufferSize());
  }
  if (!module) {
    errs() << "w4a4-compile: error: " << inputPath << ": cannot parse the IR\n";
    return 1;
  }
  if (Error e = writeArtifact(*module)) {
    errs() << "w4a4-compile: error: " << toString(std::move(e)) << "\n";
    return 1;
  }
  return 0;
}
