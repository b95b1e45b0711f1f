//===- w4a4-run.cpp - execute w4a4 models: logits and perplexity ----------===//
//
//   w4a4-run MODEL --ids 1,17,42 [--dump-logits out.f32]
//   w4a4-run MODEL --text valid.txt --tokenizer tok.model [--ctx 256
//       --stride 128]
//   w4a4-run MODEL --tokens ids.txt --bos 1 [--max-tokens N] [--json out.json]
//   w4a4-run MODEL --generate --prompt TEXT --tokenizer tok.model
//       [--max-new-tokens N --temperature T --top-k K --top-p P --seed S]
//
// MODEL is an ONNX file (imported and raised on the fly by running the
// w4a4-import next to this executable: Debian's libsentencepiece carries its
// own protobuf, which cannot share a process with libonnx's), w4a4 IR (text
// or bytecode), or a directory written by w4a4-compile (run through its
// libmodel.so). Perplexity follows DESIGN.md: windows of ctx tokens advancing
// by stride, each fed as [registers][BOS][window]; every token is scored once;
// register and BOS positions never are.
//
//===----------------------------------------------------------------------===//

#include "interpreter/Executor.h"
#include "support/AtomicFile.h"
#include "support/ParseDeadline.h"
#include "support/ThreadPolicy.h"
#include "tools/w4a4-run/Models.h"
#include "w4a4/runtime/IntGemm.h"
#include "w4a4/runtime/Kernels.h"
#include "w4a4/runtime/Sampling.h"

#include "dialects/W4A4/W4A4Ops.h"
#include "dialects/W4A4/W4A4Utils.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/Signals.h"
#include "llvm/Support/WithColor.h"

#include <nlohmann/json.hpp>
#include <sentencepiece_processor.h>

#include <chrono>
#include <cmath>
#include <fstream>

using namespace llvm;
namespace w4 = mlir::w4a4;

static cl::OptionCategory toolOptions("w4a4-run options");

static cl::opt<std::string>
    modelPath(cl::Positional, cl::cat(toolOptions),
              cl::desc("<model.onnx|model.mlir|artifact-dir>"), cl::Required);
static cl::opt<std::string>
    idsArg("ids", cl::cat(toolOptions),
           cl::desc("Comma-separated token ids to run once"));
static cl::opt<std::string>
    dumpLogits("dump-logits", cl::cat(toolOptions),
               cl::desc("Write the logits of --ids as raw float32"));
static cl::opt<std::string> positionsArg(
    "positions", cl::cat(toolOptions),
    cl::desc("With --ids: compute the logits of positions B:E only "
             "(end exclusive; the row-wise tail runs on those rows)"));
static cl::opt<std::string> kvSplits(
    "kv-split", cl::cat(toolOptions),
    cl::desc("With --ids, for a model that keeps its KV cache: run the ids "
             "in chunks ending at these comma-separated offsets, each chunk "
             "reading the cache the previous one returned (the logits are "
             "the chunks' logits in order)"));
static cl::opt<std::string> dumpCache(
    "dump-cache", cl::cat(toolOptions),
    cl::desc("With --kv-split: write the final KV cache (the present "
             "outputs, [1, kv_heads, n, head_dim] each) as raw float32 to "
             "PREFIX.<i>.f32"),
    cl::value_desc("PREFIX"));
static cl::opt<bool> allPositions(
    "all-positions", cl::cat(toolOptions),
    cl::desc("Perplexity: compute the logits of every position of each "
             "window (as the ONNX graph does), not only of the scored ones"));
static cl::opt<w4a4::rt::GemmPath> intGemm(
    "int-gemm", cl::cat(toolOptions),
    cl::desc("Integer GEMM path of W4A4 linears"),
    cl::init(w4a4::rt::GemmPath::Auto),
    cl::values(
        clEnumValN(w4a4::rt::GemmPath::Auto, "auto", "the fastest available"),
        clEnumValN(w4a4::rt::GemmPath::AmxInt8, "amx", "AMX-INT8 tiles"),
        clEnumValN(w4a4::rt::GemmPath::Avx512Vnni, "vnni", "AVX-512-VNNI"),
        clEnumValN(w4a4::rt::GemmPath::Avx2, "avx2",
                   "AVX2 (vpmaddubsw; 4-bit activations)"),
        clEnumValN(w4a4::rt::GemmPath::Portable, "portable",
                   "plain C++ loops")));
static cl::opt<std::string>
    textFile("text", cl::cat(toolOptions),
             cl::desc("Evaluate perplexity on this UTF-8 text"));
static cl::opt<std::string>
    tokenizerPath("tokenizer", cl::cat(toolOptions),
                  cl::desc("SentencePiece model for --text"));
static cl::opt<std::string>
    tokensFile("tokens", cl::cat(toolOptions),
               cl::desc("Evaluate perplexity on whitespace-separated ids"));
static cl::opt<int64_t>
    bosId("bos", cl::cat(toolOptions),
          cl::desc("BOS id (default: the model's w4a4.bos_id, else "
                   "the tokenizer's, else 1)"),
          cl::init(-1));
static cl::opt<int64_t> ctx("ctx", cl::cat(toolOptions),
                            cl::desc("Window length in tokens"), cl::init(256));
static cl::opt<int64_t> stride("stride", cl::cat(toolOptions),
                               cl::desc("Window advance in tokens"),
                               cl::init(128));
static cl::opt<int64_t> maxTokens("max-tokens", cl::cat(toolOptions),
                                  cl::desc("Score at most this many tokens"),
                                  cl::init(0));
static cl::opt<int> numThreads("num-threads", cl::cat(toolOptions),
                               cl::desc("Kernel threads (0 = all cores)"),
                               cl::init(0));
static cl::opt<std::string> jsonOut("json", cl::cat(toolOptions),
                                    cl::desc("Write the results as JSON here"));

static cl::opt<bool>
    generate("generate", cl::cat(toolOptions),
             cl::desc("Generate text after --prompt (or token ids after "
                      "--ids), streaming it as it comes"));
static cl::opt<std::string>
    prompt("prompt", cl::cat(toolOptions),
           cl::desc("With --generate: the prompt (needs a "
                    "tokenizer: --tokenizer, or an artifact's)"));
static cl::opt<int64_t> maxNewTokens("max-new-tokens", cl::cat(toolOptions),
                                     cl::desc("With --generate: how many"),
                                     cl::init(32));
static cl::opt<double>
    temperature("temperature", cl::cat(toolOptions),
                cl::desc("With --generate: 0 = greedy (default), else sample "
                         "softmax(logits / T)"),
                cl::init(0.0));
static cl::opt<int64_t> topK("top-k", cl::cat(toolOptions),
                             cl::desc("With --generate: keep the k most "
                                      "likely tokens (0 = all)"),
                             cl::init(0));
static cl::opt<double> topP("top-p", cl::cat(toolOptions),
                            cl::desc("With --generate: keep the most likely "
                                     "tokens up to this probability"),
                            cl::init(1.0));
static cl::opt<uint64_t> seed("seed", cl::cat(toolOptions),
                              cl::desc("With --generate: the seed"),
                              cl::init(0));

static int fail(const Twine &message) {
  WithColor::error(errs(), "w4a4-run") << message << "\n";
  return 1;
}

/// A tensor's fp32 data as raw little-endian float32, written atomically.
static Error writeFloats(StringRef path, const w4::HostTensor &t) {
  return ::w4a4::writeFileAtomically(
      path, StringRef(reinterpret_cast<const char *>(t.f32),
                      static_cast<size_t>(t.numel()) * sizeof(float)));
}

/// Imports an ONNX file with the w4a4-import beside this executable into a
/// temporary bytecode file.
static Expected<std::string> importOnnx(const char *argv0) {
  std::string self =
      sys::fs::getMainExecutable(argv0, reinterpret_cast<void *>(&importOnnx));
  SmallString<256> importer(sys::path::parent_path(self));
  sys::path::append(importer, "w4a4-import");
  if (!sys::fs::exists(importer))
    return createStringError("cannot find " + std::string(importer));
  SmallString<128> out;
  if (std::error_code ec =
          sys::fs::createTemporaryFile("w4a4-run", "mlirbc", out))
    return createStringError("cannot create a temporary file: " + ec.message());
  // Removed when the run is interrupted, and after parsing otherwise.
  sys::RemoveFileOnSignal(out);
  std::string err;
  int rc = sys::ExecuteAndWait(
      importer, {importer.str(), modelPath, "--emit-bytecode", "-o", out.str()},
      std::nullopt, {}, 0, 0, &err);
  if (rc != 0) {
    sys::fs::remove(out);
    sys::DontRemoveFileOnSignal(out);
    return createStringError(modelPath + ": import failed" +
                             (err.empty() ? "" : ": " + err));
  }
  return std::string(out);
}

static Expected<mlir::OwningOpRef<mlir::ModuleOp>>
loadModel(mlir::MLIRContext &context, const char *argv0) {
  context.loadDialect<w4::W4A4Dialect, mlir::func::FuncDialect,
                      mlir::arith::ArithDialect>();
  if (!sys::fs::exists(modelPath))
    return createStringError(modelPath + ": no such file");
  std::string path = modelPath;
  bool temporary = StringRef(modelPath).ends_with(".onnx");
  if (temporary) {
    auto imported = importOnnx(argv0);
    if (!imported)
      return imported.takeError();
    path = *imported;
  }
  {
    auto bytes = MemoryBuffer::getFile(path, /*IsText=*/false,
                                       /*RequiresNullTerminator=*/false);
    if (!bytes)
      return createStringError(modelPath + ": " + bytes.getError().message());
    if (Error e = w4a4::checkMlirInput(modelPath, (*bytes)->getBuffer()))
      return std::move(e);
  }
  mlir::OwningOpRef<mlir::ModuleOp> module;
  {
    uint64_t size = 0;
    (void)sys::fs::file_size(path, size);
    w4a4::ParseDeadline deadline(w4a4::parseDeadlineSeconds(size));
    w4a4::parseOrExitOnCrash(
        [&] { module = mlir::parseSourceFile<mlir::ModuleOp>(path, &context); },
        size);
  }
  if (temporary) {
    sys::fs::remove(path);
    sys::DontRemoveFileOnSignal(path);
  }
  if (!module)
    return createStringError(modelPath + ": cannot parse the IR");
  return module;
}

static Expected<std::vector<int64_t>> parseIds(StringRef text, StringRef what) {
  std::vector<int64_t> ids;
  std::string normalized = text.str();
  for (char &c : normalized)
    if (c == ',' || std::isspace(static_cast<unsigned char>(c)))
      c = ' ';
  SmallVector<StringRef> parts;
  StringRef(normalized).split(parts, ' ', -1, /*KeepEmpty=*/false);
  for (StringRef p : parts) {
    int64_t v;
    if (p.getAsInteger(10, v))
      return createStringError(what.str() + ": '" + p.str() +
                               "' is not a token id");
    ids.push_back(v);
  }
  return ids;
}

/// Line by line, as models/zoo/w4a4zoo/data.py: each line with a
/// non-whitespace character is encoded and the ids concatenated.
static Expected<std::vector<int64_t>>
tokenize(const std::string &path, sentencepiece::SentencePieceProcessor &sp,
         int64_t maxTokens) {
  if (Error e = w4a4::checkRegularInput(path, "--text"))
    return std::move(e);
  auto buffer = MemoryBuffer::getFile(path);
  if (!buffer)
    return createStringError(path + ": " + buffer.getError().message());
  if (Error e = w4a4::checkUtf8Text(path, (*buffer)->getBuffer()))
    return std::move(e);
  std::vector<int64_t> ids;
  auto encode = [&](StringRef text) -> Error {
    std::vector<int> piece;
    auto status = sp.Encode(std::string_view(text.data(), text.size()), &piece);
    if (!status.ok())
      return createStringError(path + ": tokenizer: " + status.ToString());
    ids.insert(ids.end(), piece.begin(), piece.end());
    return Error::success();
  };
  // Line by line, as the reference; tokenizing stops once --max-tokens are
  // there. A line over 1 MiB is encoded in pieces of at most 64 KiB cut
  // before a space (SentencePiece splits at whitespace, so the pieces give
  // the line's tokens) instead of all at once.
  constexpr size_t kLongLine = 1 << 20, kPiece = 1 << 16;
  StringRef rest = (*buffer)->getBuffer();
  while (!rest.empty() &&
         (maxTokens <= 0 || static_cast<int64_t>(ids.size()) < maxTokens)) {
    auto [line, tail] = rest.split('\n');
    rest = tail;
    if (line.trim().empty())
      continue;
    while (line.size() > kLongLine) {
      size_t cut = line.take_front(kPiece).rfind(' ');
      if (cut == StringRef::npos || cut == 0) {
        cut = kPiece; // no space: cut at a character boundary
        while (cut > 0 &&
               (static_cast<unsigned char>(line[cut]) & 0xC0) == 0x80)
          --cut;
      }
      if (Error e = encode(line.take_front(cut)))
        return std::move(e);
      line = line.drop_front(cut);
      if (maxTokens > 0 && static_cast<int64_t>(ids.size()) >= maxTokens)
        return ids;
    }
    if (Error e = encode(line))
      return std::move(e);
  }
  return ids;
}

int main(int argc, char **argv) {
  // OpenMP workers that park instead of spinning (unless the user chose).
  w4a4::useParkingThreads(argc, argv);
  InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions(toolOptions);
  cl::ParseCommandLineOptions(argc, argv,
                              "w4a4 model runner: logits and perplexity\n");
  w4a4::exitCleanlyOnFatalErrors("w4a4-run", modelPath);
  if (numThreads < 0)
    return fail("--num-threads " + Twine(numThreads) +
                ": expected 0 (all usable cores) or a positive count");
  if (bosId < -1 || (bosId.getNumOccurrences() && bosId < 0))
    return fail("--bos " + Twine(bosId) + ": expected a token id >= 0");
  if (generate) {
    if (prompt.empty() == idsArg.empty())
      return fail("--generate needs one of --prompt and --ids");
    for (auto *o : std::initializer_list<cl::Option *>{
             &textFile, &tokensFile, &positionsArg, &dumpLogits, &kvSplits,
             &dumpCache, &ctx, &stride, &maxTokens, &allPositions})
      if (o->getNumOccurrences())
        return fail("--" + o->ArgStr + " does not apply to --generate");
    if (maxNewTokens < 1)
      return fail("--max-new-tokens " + Twine(maxNewTokens) +
                  ": expected at least 1");
    if (!(temperature >= 0.0) || !std::isfinite(temperature))
      return fail("--temperature: expected a finite value >= 0");
    if (topK < 0)
      return fail("--top-k " + Twine(topK) + ": expected >= 0");
    if (!(topP > 0.0 && topP <= 1.0))
      return fail("--top-p: expected a value in (0, 1]");
  } else {
    for (auto *o : std::initializer_list<cl::Option *>{
             &prompt, &maxNewTokens, &temperature, &topK, &topP, &seed})
      if (o->getNumOccurrences())
        return fail("--" + o->ArgStr + " applies to --generate only");
  }
  // One input, and only the options that apply to it.
  int inputs = !idsArg.empty() + !textFile.empty() + !tokensFile.empty();
  if (inputs > 1)
    return fail("give one of --ids, --text and --tokens, not several");
  if (idsArg.empty())
    for (auto *o : std::initializer_list<cl::Option *>{
             &positionsArg, &dumpLogits, &kvSplits, &dumpCache})
      if (o->getNumOccurrences())
        return fail("--" + o->ArgStr + " applies to --ids only");
  if (!idsArg.empty() && !generate)
    for (auto *o : std::initializer_list<cl::Option *>{
             &ctx, &stride, &maxTokens, &allPositions, &jsonOut, &tokenizerPath,
             &bosId})
      if (o->getNumOccurrences())
        return fail("--" + o->ArgStr +
                    " applies to perplexity (--text or --tokens), not --ids");
  if (!tokenizerPath.empty() && textFile.empty() && prompt.empty())
    return fail("--tokenizer applies to --text and --prompt only");
  if (numThreads > w4a4::rt::usableCores())
    WithColor::note(errs(), "w4a4-run")
        << "--num-threads " << numThreads << ": this process may use "
        << w4a4::rt::usableCores() << " cores; running "
        << w4a4::rt::usableCores() << " threads\n";
  w4a4::rt::setThreads(numThreads);
  if ((intGemm == w4a4::rt::GemmPath::AmxInt8 && !w4a4::rt::hasAmxInt8()) ||
      (intGemm == w4a4::rt::GemmPath::Avx512Vnni && !w4a4::rt::hasAvx512Vnni()))
    return fail("--int-gemm: this CPU (or OS) cannot run that path");
  w4a4::rt::setPreferredGemmPath(intGemm);

  mlir::MLIRContext context;
  mlir::OwningOpRef<mlir::ModuleOp> module;
  std::unique_ptr<w4a4::run::Model> model;
  mlir::w4a4::Executor *executor = nullptr;
  bool artifact = w4a4::run::isArtifact(modelPath);
  if (artifact) {
    for (auto *o :
         std::initializer_list<cl::Option *>{&kvSplits, &dumpCache, &intGemm})
      if (o->getNumOccurrences())
        return fail("--" + o->ArgStr +
                    " applies to IR, not to a compiled "
                    "artifact");
    auto opened = w4a4::run::openArtifact(modelPath, numThreads);
    if (!opened)
      return fail(toString(opened.takeError()));
    model = std::move(*opened);
  } else {
    if (sys::fs::is_directory(modelPath))
      return fail(modelPath + ": a directory without manifest.json (not a "
                              "w4a4-compile artifact)");
    auto loaded = loadModel(context, argv[0]);
    if (!loaded)
      return fail(toString(loaded.takeError()));
    module = std::move(*loaded);
    auto created = w4::Executor::create(module.get());
    if (!created)
      return fail(modelPath + ": " + toString(created.takeError()));
    executor = created->get();
    model = w4a4::run::irModel(module.get(), std::move(*created));
  }

  if (generate) {
    std::unique_ptr<sentencepiece::SentencePieceProcessor> sp;
    std::string tok = !tokenizerPath.empty() ? std::string(tokenizerPath)
                                             : model->tokenizer();
    std::vector<int64_t> input;
    int64_t bos = bosId >= 0 ? int64_t(bosId) : model->bos();
    if (!prompt.empty()) {
      if (tok.empty())
        return fail("--prompt needs a tokenizer (--tokenizer, or an "
                    "artifact compiled with --tokenizer)");
      sp = std::make_unique<sentencepiece::SentencePieceProcessor>();
      auto status = sp->Load(tok);
      if (!status.ok())
        return fail(tok + ": " + status.ToString());
      if (bos < 0)
        bos = sp->bos_id();
      std::vector<int> pieces;
      status = sp->Encode(std::string(prompt), &pieces);
      if (!status.ok())
        return fail("--prompt: " + status.ToString());
      input.push_back(bos < 0 ? 1 : bos);
      input.insert(input.end(), pieces.begin(), pieces.end());
    } else {
      auto ids = parseIds(idsArg, "--ids");
      if (!ids)
        return fail(toString(ids.takeError()));
      if (ids->empty())
        return fail("--ids: no token ids");
      input = std::move(*ids);
    }
    int64_t total = input.size() + maxNewTokens;
    if (std::string e = model->checkPositions(
            total, "the prompt and --max-new-tokens (" + std::to_string(total) +
                       " tokens)");
        !e.empty())
      return fail(e);
    w4a4::rt::SamplingOptions sampling{temperature, topK, topP};
    uint64_t state = seed;
    std::vector<int> generated;
    std::string shown;
    auto t0 = std::chrono::steady_clock::now();
    auto logits = model->start(input);
    auto tPrefill = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < maxNewTokens; ++i) {
      if (!logits)
        return fail(modelPath + ": " + toString(logits.takeError()));
      int64_t id = w4a4::rt::sampleToken(logits->data(), model->vocab(),
                                         sampling, state);
      generated.push_back(static_cast<int>(id));
      if (sp) {
        // Stream the text that the new piece adds (pieces merge spaces).
        std::string text;
        (void)sp->Decode(generated, &text);
        if (text.size() > shown.size() &&
            text.compare(0, shown.size(), shown) == 0)
          outs() << text.substr(shown.size());
        shown = text;
        if (id == sp->eos_id())
          break;
      } else {
        outs() << (i ? " " : "") << id;
      }
      outs().flush();
      if (i + 1 < maxNewTokens)
        logits = model->next(id);
    }
    outs() << "\n";
    double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
            .count();
    double prefill = std::chrono::duration<double>(tPrefill - t0).count();
    // Tokens after the first come from decode steps.
    double decodeSteps = static_cast<double>(generated.size()) - 1;
    double decode = wall - prefill;
    errs() << formatv(
        "w4a4-run: {0} prompt + {1} new tokens in {2:F2} s "
        "({3:F1} new tokens/s; prefill {4:F3} s, decode {5:F1} "
        "tokens/s; {6})\n",
        input.size(), generated.size(), wall, generated.size() / wall, prefill,
        decodeSteps > 0 ? decodeSteps / decode : 0.0, model->kind());
    if (!jsonOut.empty()) {
      nlohmann::json j = {
          {"model", modelPath},
          {"prompt_tokens", input.size()},
          {"new_tokens", generated.size()},
          {"generated", generated},
          {"prefill_s", prefill},
          {"decode_s", decode},
          {"decode_tokens_per_s", decodeSteps > 0 ? decodeSteps / decode : 0.0},
          {"wall_s", wall},
          {"how", model->kind()},
          {"threads", static_cast<int>(numThreads)}};
      if (Error e = ::w4a4::writeFileAtomically(jsonOut, j.dump(2) + "\n"))
        return fail(toString(std::move(e)));
    }
    return 0;
  }

  if (!idsArg.empty()) {
    auto ids = parseIds(idsArg, "--ids");
    if (!ids)
      return fail(toString(ids.takeError()));
    if (ids->empty())
      return fail("--ids: no token ids");
    if (std::string e = model->checkPositions(
            ids->size(), "--ids (" + std::to_string(ids->size()) + " ids)");
        !e.empty())
      return fail(e);
    int64_t n = ids->size(), begin = 0, end = n;
    if (!positionsArg.empty()) {
      auto [b, e] = StringRef(positionsArg).split(':');
      if (b.trim().getAsInteger(10, begin) || e.trim().getAsInteger(10, end) ||
          begin < 0 || end <= begin || end > n)
        return fail("--positions '" + positionsArg +
                    "': expected B:E with 0 <= B < E <= " + Twine(n));
    }
    if (!kvSplits.empty() && !positionsArg.empty())
      return fail("--kv-split and --positions cannot be combined");
    if (!dumpCache.empty() && kvSplits.empty())
      return fail("--dump-cache needs --kv-split");
    llvm::Expected<w4::HostTensor> logits =
        llvm::createStringError("no logits");
    if (!kvSplits.empty()) {
      auto cuts = parseIds(kvSplits, "--kv-split");
      if (!cuts)
        return fail(toString(cuts.takeError()));
      if (!llvm::is_contained(executor->inputs(), w4::InputKind::Past))
        return fail("--kv-split: " + modelPath +
                    " does not keep a KV cache (no past inputs)");
      cuts->push_back(n);
      int64_t at = 0;
      std::vector<w4::HostTensor> cache, chunks;
      for (int64_t cut : *cuts) {
        if (cut <= at || cut > n)
          return fail("--kv-split '" + kvSplits +
                      "': expected increasing offsets inside (0, " + Twine(n) +
                      ")");
        std::vector<int64_t> part(ids->begin() + at, ids->begin() + cut);
        auto in = executor->inputsFor(part, 1, cut - at, cache);
        if (!in)
          return fail(modelPath + ": " + toString(in.takeError()));
        auto outs = executor->runAll(*in);
        if (!outs)
          return fail(modelPath + ": " + toString(outs.takeError()));
        chunks.push_back((*outs)[0]);
        cache.assign(outs->begin() + 1, outs->end());
        at = cut;
      }
      for (size_t i = 0; i < cache.size() && !dumpCache.empty(); ++i) {
        std::string path = dumpCache + "." + std::to_string(i) + ".f32";
        if (Error e = writeFloats(path, cache[i]))
          return fail(toString(std::move(e)));
      }
      w4::HostTensor all =
          w4::HostTensor::zerosF32({1, n, chunks[0].shape.back()});
      float *dst = all.mutableF32();
      for (const w4::HostTensor &c : chunks)
        dst = std::copy(c.f32, c.f32 + c.numel(), dst);
      logits = std::move(all);
    } else {
      auto rows = model->logits(*ids, begin, end);
      if (!rows)
        return fail(modelPath + ": " + toString(rows.takeError()));
      w4::HostTensor t =
          w4::HostTensor::zerosF32({1, end - begin,
                                    static_cast<int64_t>(rows->size()) /
                                        std::max<int64_t>(end - begin, 1)});
      std::copy(rows->begin(), rows->end(), t.mutableF32());
      logits = std::move(t);
    }
    if (!logits)
      return fail(modelPath + ": " + toString(logits.takeError()));
    outs() << "logits [" << logits->shape[0] << ", " << logits->shape[1] << ", "
           << logits->shape[2] << "]\n";
    if (!dumpLogits.empty())
      if (Error e = writeFloats(dumpLogits, *logits))
        return fail(toString(std::move(e)));
    return 0;
  }

  // Perplexity.
  std::vector<int64_t> tokens;
  int64_t bos = bosId;
  if (bos < 0)
    bos = model->bos();
  if (!textFile.empty()) {
    if (tokenizerPath.empty())
      return fail("--text needs --tokenizer");
    sentencepiece::SentencePieceProcessor sp;
    auto status = sp.Load(tokenizerPath);
    if (!status.ok())
      return fail(tokenizerPath + ": " + status.ToString());
    auto ids = tokenize(textFile, sp, maxTokens);
    if (!ids)
      return fail(toString(ids.takeError()));
    tokens = std::move(*ids);
    if (bos < 0)
      bos = sp.bos_id();
  } else if (!tokensFile.empty()) {
    auto buffer = MemoryBuffer::getFile(tokensFile);
    if (!buffer)
      return fail(tokensFile + ": " + buffer.getError().message());
    auto ids = parseIds((*buffer)->getBuffer(), tokensFile);
    if (!ids)
      return fail(toString(ids.takeError()));
    tokens = std::move(*ids);
  } else {
    return fail("give --ids, or --text with --tokenizer, or --tokens");
  }
  if (bos < 0)
    bos = 1;
  if (maxTokens > 0 && static_cast<int64_t>(tokens.size()) > maxTokens)
    tokens.resize(maxTokens);
  if (tokens.empty())
    return fail("no tokens to score (empty text?)");
  if (ctx <= 0 || stride <= 0 || stride > ctx)
    return fail("need 0 < --stride <= --ctx");
  // BOS + window, after any register prefix (folded or not).
  if (std::string e = model->checkPositions(int64_t(ctx) + 1,
                                            "--ctx " + std::to_string(ctx));
      !e.empty())
    return fail(e);

  // Windows as in models/reference/w4a4ref/perplexity.py.
  struct Window {
    int64_t start, end, first;
  };
  std::vector<Window> windows;
  int64_t n = tokens.size();
  for (int64_t start = 0, scored = 0; start < n; start += stride) {
    int64_t end = std::min(start + static_cast<int64_t>(ctx), n);
    windows.push_back({start, end, scored});
    scored = end;
    if (end == n)
      break;
  }
  bool tty = sys::Process::StandardErrIsDisplayed();
  double nll = 0;
  int64_t count = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (size_t w = 0; w < windows.size(); ++w) {
    const Window &win = windows[w];
    std::vector<int64_t> input = {bos};
    input.insert(input.end(), tokens.begin() + win.start,
                 tokens.begin() + win.end);
    // Logits at input position j predict token win.start + j; only the
    // positions of tokens not scored by an earlier window are computed.
    int64_t j0 = std::max(win.first - win.start, int64_t{0}),
            j1 = win.end - win.start;
    // (A compiled artifact runs from j0 to the end: w4a4_forward_last.)
    bool whole = allPositions;
    auto logits = whole ? model->logits(input, 0, input.size())
                        : model->logits(input, j0, j1);
    if (!logits)
      return fail(modelPath + ": " + toString(logits.takeError()));
    int64_t vocab = model->vocab();
    const float *first = logits->data() + (whole ? j0 * vocab : 0);
    std::vector<int64_t> targets(tokens.begin() + win.start + j0,
                                 tokens.begin() + win.start + j1);
    std::vector<double> rowNll(targets.size());
    w4a4::rt::Status scored = w4a4::rt::tokenNll(first, j1 - j0, vocab,
                                                 targets.data(), rowNll.data());
    if (!scored.ok())
      return fail(modelPath + ": window at token " + Twine(win.start) + ": " +
                  scored.message());
    for (int64_t j = j0; j < j1; ++j) {
      if (!std::isfinite(rowNll[j - j0]))
        return fail("non-finite log-probability at token " +
                    Twine(win.start + j));
      nll += rowNll[j - j0];
      ++count;
    }
    if (tty) {
      int done = static_cast<int>(30 * (w + 1) / windows.size());
      errs() << "\r[" << std::string(done, '#') << std::string(30 - done, '.')
             << "] " << (w + 1) << "/" << windows.size() << " windows";
    }
  }
  if (tty)
    errs() << "\n";
  double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
          .count();
  double mean = nll / count;
  outs() << formatv(
      "tokens {0}  mean NLL {1:F6}  PPL {2:F4}  {3:F1} tokens/s  {4:F2} s\n",
      count, mean, std::exp(mean), count / wall, wall);
  if (!jsonOut.empty()) {
    nlohmann::json j = {{"model", modelPath},
                        {"tokens", count},
                        {"mean_nll", mean},
                        {"bos", bos},
                        {"ppl", std::exp(mean)},
                        {"tokens_per_s", count / wall},
                        {"wall_s", wall},
                        {"ctx", static_cast<int64_t>(ctx)},
                        {"device", executor ? executor->getDevice().name()
                                            : std::string("compiled artifact")},
                        {"int_gemm", w4a4::rt::gemmPathName(intGemm)},
                        {"omp_wait_policy", w4a4::rt::waitPolicy()},
                        {"all_positions", static_cast<bool>(allPositions)},
                        {"stride", static_cast<int64_t>(stride)}};
    if (Error e = ::w4a4::writeFileAtomically(jsonOut, j.dump(2) + "\n"))
      return fail(toString(std::move(e)));
  }
  return 0;
}
