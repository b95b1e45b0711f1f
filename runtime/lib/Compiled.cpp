//===- Compiled.cpp - runtime of models compiled by w4a4-compile ----------===//

#include "w4a4/runtime/Compiled.h"

#include "w4a4/runtime/CheckedMath.h"
#include "w4a4/runtime/Hadamard.h"
#include "w4a4/runtime/IntGemm.h"
#include "w4a4/runtime/Kernels.h"
#include "w4a4/runtime/WeightsFile.h"

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <new>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace w4a4::cc {

struct Context {
  w4a4_model *model = nullptr;
  const int64_t *ids = nullptr;
  int64_t batch = 0, seq = 0;
  /// Positions per sequence whose logits the call returns (the last ones).
  int64_t scored = 0;
  float *logits = nullptr;
  /// Logits of every position when the code has no row-wise tail and the
  /// caller wants fewer.
  std::vector<float> staging;
  int64_t arenaRows = 0;
  std::vector<float> arena;
  std::vector<rt::QuantizedRows> qrows;
  /// The KV cache: per layer, keys and values [batch, kvHeads, past, d] of
  /// the tokens before this call; `next` receives the presents.
  struct Layer {
    std::vector<float> k, v, nextK, nextV;
  };
  std::vector<Layer> cache;
  int64_t past = 0, cacheBatch = 0;
  bool failed = false;
  std::string error;
};

} // namespace w4a4::cc

struct w4a4_model {
  const w4a4::cc::ModelSpec *spec = nullptr;
  w4a4::rt::WeightsFile weights;
  std::vector<const void *> tensors;
  std::vector<w4a4::rt::PackedWeights> packs;
  w4a4::cc::Context ctx;
  std::string error;
};

namespace w4a4::cc {
namespace {

void fail(Context *c, std::string message) {
  if (!c->failed) {
    c->failed = true;
    c->error = std::move(message);
  }
}

std::string readFile(const std::string &path, bool &ok) {
  std::ifstream in(path, std::ios::binary);
  ok = static_cast<bool>(in);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void copyError(const std::string &message, char *err, size_t errLen) {
  if (!err || !errLen)
    return;
  size_t n = std::min(message.size(), errLen - 1);
  std::memcpy(err, message.data(), n);
  err[n] = '\0';
}

std::string shapeString(const int64_t *dims, int rank) {
  std::string s = "[";
  for (int i = 0; i < rank; ++i)
    s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

} // namespace

static w4a4_model *openImpl(const ModelSpec *spec, const char *dir, char *err,
                            size_t errLen);

w4a4_model *open(const ModelSpec *spec, const char *dir, char *err,
                 size_t errLen) {
  // No exception leaves the C API.
  try {
    return openImpl(spec, dir, err, errLen);
  } catch (const std::bad_alloc &) {
    copyError(std::string(dir ? dir : ".") + ": out of memory", err, errLen);
  } catch (...) {
    copyError(std::string(dir ? dir : ".") + ": cannot open the artifact", err,
              errLen);
  }
  return nullptr;
}

static w4a4_model *openImpl(const ModelSpec *spec, const char *dir, char *err,
                            size_t errLen) {
  std::unique_ptr<w4a4_model> m(new (std::nothrow) w4a4_model);
  if (!m) {
    copyError("out of memory", err, errLen);
    return nullptr;
  }
  m->spec = spec;
  std::string base = dir && *dir ? dir : ".";
  if (base.back() != '/')
    base += '/';
  // The manifest names the weights it was written with.
  bool ok = false;
  std::string manifestPath = base + "manifest.json";
  std::string manifest = readFile(manifestPath, ok);
  if (!ok) {
    copyError(manifestPath + ": cannot read the artifact's manifest", err,
              errLen);
    return nullptr;
  }
  char expected[17];
  std::snprintf(expected, sizeof expected, "%016" PRIx64,
                spec->weightsChecksum);
  size_t key = manifest.find("\"weights_checksum\"");
  size_t quote = key == std::string::npos ? key : manifest.find('"', key + 18);
  std::string stated = quote == std::string::npos
                           ? std::string()
                           : manifest.substr(quote + 1, 16);
  if (stated != expected) {
    copyError(manifestPath + ": written for other weights (weights_checksum " +
                  (stated.empty() ? std::string("missing") : stated) +
                  "; this library was compiled for " + expected + ")",
              err, errLen);
    return nullptr;
  }
  std::string weightsPath = base + "weights.bin";
  rt::Status s = rt::WeightsFile::open(weightsPath, m->weights);
  if (!s.ok()) {
    copyError(s.message(), err, errLen);
    return nullptr;
  }
  if (m->weights.checksum() != spec->weightsChecksum) {
    copyError(weightsPath + ": these weights are not the ones the library "
                            "was compiled for (checksum differs)",
              err, errLen);
    return nullptr;
  }
  const auto &entries = m->weights.entries();
  if (static_cast<int>(entries.size()) != spec->numTensors) {
    copyError(weightsPath + ": holds " + std::to_string(entries.size()) +
                  " tensors; the library expects " +
                  std::to_string(spec->numTensors),
              err, errLen);
    return nullptr;
  }
  for (int i = 0; i < spec->numTensors; ++i) {
    const TensorSpec &t = spec->tensors[i];
    const rt::WeightEntry &e = entries[i];
    std::vector<int64_t> dims(t.dims, t.dims + t.rank);
    if (e.name != t.name || static_cast<int>(e.type) != t.type ||
        e.shape != dims) {
      copyError(weightsPath + ": tensor " + std::to_string(i) + " is '" +
                    e.name + "'; the library expects '" + t.name + "' " +
                    shapeString(t.dims, t.rank),
                err, errLen);
      return nullptr;
    }
    m->tensors.push_back(m->weights.data(i));
  }
  m->packs.resize(spec->numPacks);
  for (int i = 0; i < spec->numPacks; ++i) {
    const PackSpec &p = spec->packs[i];
    int64_t perByte = (p.bits == 2 || p.bits == 4) ? 8 / p.bits : 1;
    int64_t groups = p.group > 0 ? p.in / p.group : 1;
    if (p.codes < 0 || p.codes >= spec->numTensors || p.scales < 0 ||
        p.scales >= spec->numTensors ||
        static_cast<int64_t>(entries[p.codes].bytes) !=
            p.out * ((p.in + perByte - 1) / perByte) ||
        static_cast<int64_t>(entries[p.scales].bytes) != 4 * p.out * groups) {
      copyError(weightsPath + ": quantized weight " + std::to_string(i) +
                    " does not match its codes and scales tensors",
                err, errLen);
      return nullptr;
    }
    rt::Status packed =
        rt::packWeights(static_cast<const int8_t *>(m->tensors[p.codes]),
                        static_cast<const float *>(m->tensors[p.scales]), p.out,
                        p.in, p.bits, p.group, m->packs[i]);
    if (!packed.ok()) {
      copyError(weightsPath + ": tensor '" + spec->tensors[p.codes].name +
                    "': " + packed.message(),
                err, errLen);
      return nullptr;
    }
  }
  // The IR's codes were only needed to build the packs.
  for (int i = 0; i < spec->numPacks; ++i)
    m->weights.release(spec->packs[i].codes);
  m->ctx.model = m.get();
  m->ctx.qrows.resize(spec->qrowsSlots);
  m->ctx.cache.resize(spec->cacheLayers);
  return m.release();
}

int64_t batch(Context *c) { return c->batch; }
int64_t rows(Context *c, int64_t extra) { return c->batch * (c->seq + extra); }
int64_t seq(Context *c, int64_t extra) { return c->seq + extra; }
int64_t scoredRows(Context *c) { return c->batch * c->scored; }
const int64_t *ids(Context *c) { return c->ids; }
float *slot(Context *c, int64_t offset) {
  return c->arena.data() + offset * c->arenaRows;
}
float *result(Context *c) { return c->logits; }
const float *f32(Context *c, int tensor) {
  return static_cast<const float *>(c->model->tensors[tensor]);
}

void embedding(Context *c, const float *table, int64_t vocab, int64_t hidden,
               const int64_t *ids, int64_t n, float *out) {
  if (c->failed)
    return;
  rt::Status s = rt::embedding(table, vocab, hidden, ids, n, out);
  if (!s.ok())
    fail(c, s.message());
}
void rmsNorm(Context *c, const float *x, const float *gain, int64_t rows,
             int64_t cols, double eps, float *out) {
  if (!c->failed)
    rt::rmsNorm(x, gain, rows, cols, eps, out);
}
void gemm(Context *c, const float *x, const float *w, const float *bias,
          int64_t rows, int64_t in, int64_t out, float *y) {
  if (!c->failed)
    rt::linear(x, w, bias, rows, in, out, y);
}
void quantize(Context *c, int64_t qslot, const float *x, int64_t rows,
              int64_t cols, int64_t bits, double clip) {
  if (!c->failed)
    rt::quantizeActivations(x, rows, cols, static_cast<int>(bits), clip,
                            c->qrows[qslot]);
}
void qgemm(Context *c, int64_t qslot, int pack, const float *bias,
           const float *residual, int64_t rows, float *y) {
  if (c->failed)
    return;
  rt::Status s = rt::intGemm(c->qrows[qslot], c->model->packs[pack], bias, y,
                             rt::GemmPath::Auto, residual);
  if (!s.ok())
    fail(c, s.message());
}
void rmsNormQuantize(Context *c, int64_t qslot, const float *x,
                     const float *gain, int64_t rows, int64_t cols, double eps,
                     int64_t bits, double clip) {
  if (c->failed)
    return;
  rt::quantizeProduced(rows, cols, static_cast<int>(bits), clip,
                       c->qrows[qslot], [&](int64_t r, float *row) {
                         rt::rmsNormRow(x + r * cols, gain, cols, eps, row);
                       });
}
void swigluQuantize(Context *c, int64_t qslot, const float *gate,
                    const float *up, int64_t rows, int64_t cols,
                    int64_t hadamardSize, const float *signs, bool inverse,
                    int64_t stride, int64_t bits, double clip) {
  if (c->failed)
    return;
  std::optional<rt::HadamardRowTransform> h;
  if (hadamardSize > 0) {
    h = rt::HadamardRowTransform::create(cols, hadamardSize, stride);
    if (!h) {
      fail(c, "no Hadamard matrix of order " + std::to_string(hadamardSize));
      return;
    }
  }
  rt::quantizeProduced(rows, cols, static_cast<int>(bits), clip,
                       c->qrows[qslot], [&](int64_t r, float *row) {
                         rt::swigluRow(gate + r * cols, up + r * cols, cols,
                                       row);
                         if (h) {
                           thread_local std::vector<float> t, u;
                           h->apply(row, signs, inverse, row, t, u);
                         }
                       });
}
void tailRows(Context *c, const float *x, int64_t batch, int64_t seq,
              int64_t width, float *out) {
  if (c->failed)
    return;
  int64_t first = seq - c->scored;
  for (int64_t b = 0; b < batch; ++b)
    std::memcpy(out + b * c->scored * width, x + (b * seq + first) * width,
                sizeof(float) * static_cast<size_t>(c->scored * width));
}
void fakeQuant(Context *c, const float *x, int64_t rows, int64_t cols,
               int64_t bits, double clip, int64_t group, float *out) {
  if (c->failed)
    return;
  int64_t width = group > 0 ? group : cols;
  rt::quantizeRows(x, rows * (cols / width), width, static_cast<int>(bits),
                   clip, out);
}
void rope(Context *c, const float *x, int64_t batch, int64_t seq, int64_t heads,
          int64_t headDim, double theta, int64_t offset, bool interleaved,
          float *out) {
  if (!c->failed)
    rt::rope(x, batch, seq, heads, headDim, theta, offset + c->past,
             interleaved, out);
}
void attention(Context *c, int64_t layer, const float *q, const float *k,
               const float *v, const float *kp, const float *vp, int64_t prefix,
               int64_t batch, int64_t seq, int64_t heads, int64_t kvHeads,
               int64_t headDim, double scale, float *out) {
  if (c->failed)
    return;
  if (layer >= static_cast<int64_t>(c->cache.size())) {
    fail(c, "attention layer " + std::to_string(layer) +
                " has no KV cache (the library's spec is inconsistent)");
    return;
  }
  if (layer < 0) {
    rt::attention(q, k, v, kp, vp, prefix, batch, seq, heads, kvHeads, headDim,
                  scale, out);
    return;
  }
  Context::Layer &l = c->cache[layer];
  size_t present =
      static_cast<size_t>(batch * kvHeads * (c->past + seq) * headDim);
  l.nextK.resize(present);
  l.nextV.resize(present);
  rt::attentionCached(q, k, v, kp, vp, prefix, l.k.data(), l.v.data(), c->past,
                      batch, seq, heads, kvHeads, headDim, scale, out,
                      l.nextK.data(), l.nextV.data());
}
void swiglu(Context *c, const float *gate, const float *up, int64_t rows,
            int64_t cols, float *out) {
  if (!c->failed)
    rt::swiglu(gate, up, rows * cols, out);
}
void add(Context *c, const float *a, const float *b, int64_t rows, int64_t cols,
         float *out) {
  if (!c->failed)
    rt::add(a, b, rows * cols, out);
}
void hadamard(Context *c, const float *x, int64_t rows, int64_t width,
              int64_t size, const float *signs, bool inverse, int64_t stride,
              float *out) {
  if (c->failed)
    return;
  if (!rt::hadamardRows(x, rows, width, size, signs, inverse, out, stride))
    fail(c, "no Hadamard matrix of order " + std::to_string(size));
}
void registers(Context *c, int mode, const float *x, const float *regs,
               int64_t batch, int64_t seq, int64_t k, int64_t hidden,
               float *out) {
  if (c->failed)
    return;
  rt::Status s = rt::registers(static_cast<rt::RegisterMode>(mode), x, regs,
                               batch, seq, k, hidden, out);
  if (!s.ok())
    fail(c, s.message());
}

} // namespace w4a4::cc

using namespace w4a4;

static int runImpl(w4a4_model *m, const int64_t *ids, int64_t batch,
                   int64_t seq, int64_t last, float *logits, bool append,
                   const char *what);

/// Runs `seq` tokens after the cache (`append`) or on an empty cache and
/// writes the logits of the `last` positions of each sequence. No exception
/// leaves the C API.
static int run(w4a4_model *m, const int64_t *ids, int64_t batch, int64_t seq,
               int64_t last, float *logits, bool append, const char *what) {
  try {
    return runImpl(m, ids, batch, seq, last, logits, append, what);
  } catch (const std::bad_alloc &) {
    m->error = std::string(what) + ": out of memory";
  } catch (...) {
    m->error = std::string(what) + ": failed";
  }
  m->ctx.past = 0; // the cache may be half written
  return -1;
}

static int runImpl(w4a4_model *m, const int64_t *ids, int64_t batch,
                   int64_t seq, int64_t last, float *logits, bool append,
                   const char *what) {
  if (!m)
    return -1;
  const cc::ModelSpec &spec = *m->spec;
  cc::Context &c = m->ctx;
  m->error.clear();
  auto refuse = [&](const std::string &why) {
    m->error = std::string(what) + ": " + why;
    return -1;
  };
  if (!ids || (!logits && last > 0) || batch <= 0 || seq < 0)
    return refuse("needs ids, logits, batch >= 1 and seq >= 0");
  if (last < 0 || last > seq)
    return refuse("the positions to score (" + std::to_string(last) +
                  ") must be between 0 and the call's " + std::to_string(seq));
  if (spec.batch >= 0 && batch != spec.batch)
    return refuse("the model was compiled for batch " +
                  std::to_string(spec.batch) + ", not " +
                  std::to_string(batch));
  if (append && spec.perCallRegisters)
    return refuse("this model applies its registers on every call; fold "
                  "them into the KV prefix (w4a4-opt --w4a4-fold-registers) "
                  "to decode");
  if (append && c.past > 0 && batch != c.cacheBatch)
    return refuse("the KV cache holds batch " + std::to_string(c.cacheBatch) +
                  ", not " + std::to_string(batch) + " (w4a4_reset first)");
  int64_t past = append ? c.past : 0;
  if (spec.maxTokens > 0 && past + seq > spec.maxTokens)
    return refuse(std::to_string(past + seq) + " tokens exceed the model's " +
                  std::to_string(spec.maxTokens) + " positions");
  std::optional<int64_t> arenaRows = checkedMul(batch, seq + spec.maxSeqExtra);
  std::optional<int64_t> floats =
      arenaRows ? checkedMul(*arenaRows, spec.arenaWidth) : std::nullopt;
  if (!floats || *floats > (int64_t(1) << 36))
    return refuse("batch x seq too large for the activation arena");
  c.arenaRows = *arenaRows;
  if (static_cast<int64_t>(c.arena.size()) < *floats) {
    c.arena.clear();
    c.arena.shrink_to_fit();
    c.arena.resize(*floats);
  }
  c.ids = ids;
  c.batch = batch;
  c.seq = seq;
  c.scored = spec.rowTail ? last : seq;
  if (c.scored == last && logits) {
    c.logits = logits;
  } else {
    // What the code writes: the scored rows (all of them without a tail).
    size_t n = std::max<size_t>(1, batch * c.scored * spec.vocab);
    if (c.staging.size() < n)
      c.staging.resize(n);
    c.logits = c.staging.data();
  }
  c.past = past;
  c.failed = false;
  c.error.clear();
  spec.forward(&c);
  if (c.failed) {
    m->error = c.error;
    return -1;
  }
  if (c.logits != logits && last > 0)
    for (int64_t b = 0; b < batch; ++b)
      std::memcpy(logits + b * last * spec.vocab,
                  c.logits + (b * seq + seq - last) * spec.vocab,
                  sizeof(float) * static_cast<size_t>(last * spec.vocab));
  // The presents become the cache.
  for (cc::Context::Layer &l : c.cache) {
    std::swap(l.k, l.nextK);
    std::swap(l.v, l.nextV);
  }
  c.past = past + seq;
  c.cacheBatch = batch;
  return 0;
}

extern "C" {

int w4a4_forward(w4a4_model *m, const int64_t *ids, int64_t batch, int64_t seq,
                 float *logits) {
  return run(m, ids, batch, seq, seq, logits, /*append=*/false, "w4a4_forward");
}

int w4a4_forward_last(w4a4_model *m, const int64_t *ids, int64_t batch,
                      int64_t seq, int64_t last, float *logits) {
  return run(m, ids, batch, seq, last, logits, /*append=*/false,
             "w4a4_forward_last");
}

int w4a4_decode_last(w4a4_model *m, const int64_t *ids, int64_t batch,
                     int64_t seq, int64_t last, float *logits) {
  return run(m, ids, batch, seq, last, logits, /*append=*/true,
             "w4a4_decode_last");
}

int w4a4_decode(w4a4_model *m, const int64_t *ids, int64_t batch, int64_t seq,
                float *logits) {
  return run(m, ids, batch, seq, seq, logits, /*append=*/true, "w4a4_decode");
}

void w4a4_reset(w4a4_model *m) {
  if (m)
    m->ctx.past = 0;
}

int64_t w4a4_cache_length(const w4a4_model *m) { return m ? m->ctx.past : 0; }

int64_t w4a4_vocab(const w4a4_model *m) { return m ? m->spec->vocab : 0; }
int64_t w4a4_max_tokens(const w4a4_model *m) {
  return m ? m->spec->maxTokens : 0;
}
int64_t w4a4_batch(const w4a4_model *m) { return m ? m->spec->batch : -1; }
int w4a4_set_threads(w4a4_model *, int threads) {
  return rt::setThreads(threads);
}
const char *w4a4_last_error(const w4a4_model *m) {
  return m ? m->error.c_str() : "no model";
}
void w4a4_close(w4a4_model *m) { delete m; }

} // extern "C"
