//===- Models.cpp - what w4a4-run runs: IR or a compiled artifact ---------===//

#include "tools/w4a4-run/Models.h"

#include "dialects/W4A4/W4A4Utils.h"
#include "w4a4/runtime/w4a4_model.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include <nlohmann/json.hpp>

#include <dlfcn.h>

using namespace llvm;
namespace w4 = mlir::w4a4;

namespace w4a4::run {
namespace {

std::vector<float> lastRow(const float *data, int64_t rows, int64_t vocab) {
  if (rows <= 0)
    return std::vector<float>(static_cast<size_t>(vocab), 0.0f);
  return std::vector<float>(data + (rows - 1) * vocab, data + rows * vocab);
}

class IRModel : public Model {
public:
  IRModel(mlir::ModuleOp module, std::unique_ptr<w4::Executor> executor)
      : module(module), executor(std::move(executor)) {
    for (w4::InputKind k : this->executor->inputs())
      cached |= k == w4::InputKind::Past;
    auto f = module.lookupSymbol<mlir::func::FuncOp>("forward");
    auto t = mlir::cast<mlir::RankedTensorType>(f.getResultTypes()[0]);
    vocabSize = t.getShape().back();
  }
  int64_t vocab() const override { return vocabSize; }

  Expected<std::vector<float>> logits(const std::vector<int64_t> &ids,
                                      int64_t begin, int64_t end) override {
    int64_t n = ids.size();
    auto out = (begin == 0 && end == n)
                   ? executor->run(ids, 1, n)
                   : executor->runRows(ids, 1, n, begin, end);
    if (!out)
      return out.takeError();
    return std::vector<float>(out->f32, out->f32 + out->numel());
  }

  Expected<std::vector<float>> start(const std::vector<int64_t> &ids) override {
    tokens = ids;
    cache.clear();
    return feed(ids);
  }
  Expected<std::vector<float>> next(int64_t id) override {
    tokens.push_back(id);
    return feed({id});
  }

  std::string checkPositions(int64_t tokens,
                             const std::string &what) const override {
    return w4::checkPositions(module, tokens, what);
  }
  int64_t bos() const override {
    if (auto a = module->getAttrOfType<mlir::IntegerAttr>("w4a4.bos_id"))
      return a.getInt();
    return -1;
  }
  std::string kind() const override {
    return cached ? "the IR's KV-cache inputs"
                  : "recomputing every token (the IR has no KV-cache inputs)";
  }

private:
  /// With KV-cache inputs: runs `fresh` after the cache. Without: reruns
  /// every token so far.
  Expected<std::vector<float>> feed(const std::vector<int64_t> &fresh) {
    if (!cached) {
      int64_t n = tokens.size();
      auto out = executor->runRows(tokens, 1, n, n - 1, n);
      if (!out)
        return out.takeError();
      return std::vector<float>(out->f32, out->f32 + out->numel());
    }
    auto in = executor->inputsFor(fresh, 1, fresh.size(), cache);
    if (!in)
      return in.takeError();
    auto outs = executor->runAll(*in);
    if (!outs)
      return outs.takeError();
    cache.assign(outs->begin() + 1, outs->end());
    const mlir::w4a4::HostTensor &l = (*outs)[0];
    return lastRow(l.f32, l.shape[1], l.shape[2]);
  }

  mlir::ModuleOp module;
  std::unique_ptr<w4::Executor> executor;
  bool cached = false;
  int64_t vocabSize = 0;
  std::vector<int64_t> tokens;
  std::vector<w4::HostTensor> cache;
};

class ArtifactModel : public Model {
public:
  ~ArtifactModel() override {
    if (model)
      api.close(model);
    // libmodel.so is linked -z nodelete; the handle is not closed.
  }

  static Expected<std::unique_ptr<Model>> open(const std::string &dir,
                                               int threads) {
    auto m = std::make_unique<ArtifactModel>();
    SmallString<256> lib(dir);
    sys::path::append(lib, "libmodel.so");
    if (!sys::fs::exists(lib))
      return createStringError(std::string(lib) +
                               ": no such file (an artifact written with "
                               "w4a4-compile --no-build? build it first)");
    void *h = dlopen(lib.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h)
      return createStringError(std::string(lib) + ": " + dlerror());
    auto sym = [&](const char *name) { return dlsym(h, name); };
    m->api.open = reinterpret_cast<decltype(m->api.open)>(sym("w4a4_open"));
    m->api.forward =
        reinterpret_cast<decltype(m->api.forward)>(sym("w4a4_forward"));
    m->api.decode =
        reinterpret_cast<decltype(m->api.decode)>(sym("w4a4_decode"));
    m->api.forwardLast = reinterpret_cast<decltype(m->api.forwardLast)>(
        sym("w4a4_forward_last"));
    m->api.vocab = reinterpret_cast<decltype(m->api.vocab)>(sym("w4a4_vocab"));
    m->api.maxTokens =
        reinterpret_cast<decltype(m->api.maxTokens)>(sym("w4a4_max_tokens"));
    m->api.threads =
        reinterpret_cast<decltype(m->api.threads)>(sym("w4a4_set_threads"));
    m->api.error =
        reinterpret_cast<decltype(m->api.error)>(sym("w4a4_last_error"));
    m->api.close = reinterpret_cast<decltype(m->api.close)>(sym("w4a4_close"));
    if (!m->api.open || !m->api.forward || !m->api.decode ||
        !m->api.forwardLast || !m->api.vocab || !m->api.maxTokens ||
        !m->api.threads || !m->api.error || !m->api.close)
      return createStringError(std::string(lib) + ": not a w4a4-compile "
                                                  "library (w4a4_* missing)");
    char err[2048] = "";
    m->model = m->api.open(dir.c_str(), err, sizeof err);
    if (!m->model)
      return createStringError(err);
    m->api.threads(m->model, threads);
    // BOS and the tokenizer from the manifest (already checked by open).
    SmallString<256> manifestPath(dir);
    sys::path::append(manifestPath, "manifest.json");
    if (auto text = MemoryBuffer::getFile(manifestPath)) {
      nlohmann::json j =
          nlohmann::json::parse((*text)->getBuffer().str(), nullptr, false);
      if (j.is_object()) {
        if (j.contains("tokenizer") && j["tokenizer"].is_string()) {
          SmallString<256> t(dir);
          sys::path::append(t, j["tokenizer"].get<std::string>());
          m->tokenizerPath = std::string(t);
        }
        if (j.contains("module") && j["module"].contains("bos_id") &&
            j["module"]["bos_id"].is_string()) {
          std::string text = j["module"]["bos_id"].get<std::string>();
          StringRef s = text;
          int64_t v;
          if (!s.split(' ').first.getAsInteger(10, v))
            m->bosId = v;
        }
      }
    }
    return std::unique_ptr<Model>(std::move(m));
  }

  int64_t vocab() const override { return api.vocab(model); }

  Expected<std::vector<float>> logits(const std::vector<int64_t> &ids,
                                      int64_t begin, int64_t end) override {
    int64_t n = ids.size(), v = vocab();
    if (begin < 0 || end > n || begin >= end)
      return createStringError("positions out of range");
    // The rows from `begin` to the end through the row-wise tail.
    std::vector<float> rows(static_cast<size_t>((n - begin) * v));
    if (api.forwardLast(model, ids.data(), 1, n, n - begin, rows.data()) != 0)
      return createStringError(api.error(model));
    rows.resize(static_cast<size_t>((end - begin) * v));
    return rows;
  }
  Expected<std::vector<float>> start(const std::vector<int64_t> &ids) override {
    std::vector<float> row(static_cast<size_t>(vocab()));
    if (api.forwardLast(model, ids.data(), 1, ids.size(), 1, row.data()) != 0)
      return createStringError(api.error(model));
    return row;
  }
  Expected<std::vector<float>> next(int64_t id) override {
    std::vector<float> row(static_cast<size_t>(vocab()));
    if (api.decode(model, &id, 1, 1, row.data()) != 0)
      return createStringError(api.error(model));
    return row;
  }
  std::string checkPositions(int64_t tokens,
                             const std::string &what) const override {
    int64_t most = api.maxTokens(model);
    if (most > 0 && tokens > most)
      return what + " needs " + std::to_string(tokens) +
             " positions; the model has " + std::to_string(most);
    return "";
  }
  int64_t bos() const override { return bosId; }
  std::string tokenizer() const override { return tokenizerPath; }
  std::string kind() const override { return "the artifact's KV cache"; }

  struct Api {
    w4a4_model *(*open)(const char *, char *, size_t) = nullptr;
    int (*forward)(w4a4_model *, const int64_t *, int64_t, int64_t,
                   float *) = nullptr;
    int (*decode)(w4a4_model *, const int64_t *, int64_t, int64_t,
                  float *) = nullptr;
    int (*forwardLast)(w4a4_model *, const int64_t *, int64_t, int64_t, int64_t,
                       float *) = nullptr;
    int64_t (*vocab)(const w4a4_model *) = nullptr;
    int64_t (*maxTokens)(const w4a4_model *) = nullptr;
    int (*threads)(w4a4_model *, int) = nullptr;
    const char *(*error)(const w4a4_model *) = nullptr;
    void (*close)(w4a4_model *) = nullptr;
  } api;
  w4a4_model *model = nullptr;
  int64_t bosId = -1;
  std::string tokenizerPath;
};

} // namespace

std::unique_ptr<Model> irModel(mlir::ModuleOp module,
                               std::unique_ptr<w4::Executor> executor) {
  return std::make_unique<IRModel>(module, std::move(executor));
}

bool isArtifact(const std::string &path) {
  SmallString<256> manifest(path);
  sys::path::append(manifest, "manifest.json");
  return sys::fs::is_directory(path) && sys::fs::exists(manifest);
}

Expected<std::unique_ptr<Model>> openArtifact(const std::string &dir,
                                              int threads) {
  return ArtifactModel::open(dir, threads);
}

} // namespace w4a4::run
