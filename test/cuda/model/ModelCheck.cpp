//===- ModelCheck.cpp - a compiled model's kernels on the SIMT emulator ---===//
//
// Runs the model.cpp that w4a4-compile emitted for a bundled tiny model with
// every kernel call executed twice: by the CPU runtime (the real
// w4a4::cc::Context of the artifact's runtime, which writes the logits) and
// by runtime/cuda's kernels on the SIMT emulator, over a mirror of the
// activation arena, the quantized-activation slots and the weights packed
// in both GEMM variants' fragment orders (cuda::packWeights). After every
// call the two outputs are compared:
//  - --mode=lockstep (default): after the comparison the CPU's output is
//    copied into the mirror, so every kernel sees exactly the CPU's inputs;
//    each call must then be bit for bit equal, except attention (the CPU's
//    products run in OpenBLAS: within 1e-5) and the fp32 LM head (OpenBLAS
//    sgemm: within 1e-5 of the largest |logit|);
//  - --mode=free: the emulated chain runs on its own outputs, as a GPU
//    would; the logits are compared at the end (figures printed) and must
//    agree within --tol of the largest |logit|.
// The CPU's logits go to --cpu-logits (the lit test compares them with
// run-artifact's, byte for byte: the CPU side here is the artifact's own
// runtime), the emulator's to --emu-logits.
//
// How: model.cpp is compiled with -Dw4a4=w4a4emu (its calls go to the
// w4a4emu::cc functions below) and -Dw4a4_open=w4a4emu_open_<name>. The
// real runtime is opened with a copy of the model's spec whose forward
// function is a trampoline into model.cpp's forward with an emulated
// Context that holds the real one.
//
//   w4a4-cuda-model-check MODEL DIR IDS [--mode=lockstep|free] [--tol=X]
//                         [--cpu-logits=F] [--emu-logits=F]
//                         [--decode=N,N,...]   (then decode in these chunks)
//
//===----------------------------------------------------------------------===//

#include "emulator/Emulator.h"

#include "w4a4/cuda/Attention.cuh"
#include "w4a4/cuda/Gemm.cuh"
#include "w4a4/cuda/Pack.h"
#include "w4a4/cuda/Producers.cuh"
#include "w4a4/cuda/Rows.cuh"
#include "w4a4/runtime/IntGemm.h"
#include "w4a4/runtime/Kernels.h"
#include "w4a4/runtime/WeightsFile.h"

// The CPU runtime's interface (w4a4::cc), then the same declarations in
// namespace w4a4emu::cc: what model.cpp, compiled with -Dw4a4=w4a4emu, calls.
#include "w4a4/runtime/Compiled.h"
#undef W4A4_RUNTIME_COMPILED_H
#define w4a4 w4a4emu
#include "w4a4/runtime/Compiled.h"
#undef w4a4

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

extern "C" w4a4_model *w4a4emu_open_tiny_dr_sink_quarot(const char *, char *,
                                                        size_t);
extern "C" w4a4_model *w4a4emu_open_tiny_baseline_kv4(const char *, char *,
                                                      size_t);

namespace w4a4emu::cc {
struct Context {
  w4a4::cc::Context *real;
};
} // namespace w4a4emu::cc

namespace {

using namespace w4a4;
namespace rc = w4a4::cc;

[[noreturn]] void die(const std::string &message) {
  std::fprintf(stderr, "w4a4-cuda-model-check: error: %s\n", message.c_str());
  std::exit(1);
}

/// The activation codes of one w4a4k quantized-rows slot, as the GEMM
/// reads them.
struct QSlot {
  std::vector<uint8_t> codes;
  std::vector<float> scales;
  int rows = 0, cols = 0, kPadded = 0;
};

struct KernelFigures {
  int64_t calls = 0, exact = 0;
  double worst = 0; // largest |emulated - CPU| (relative for the LM head)
};

struct Checker {
  const w4a4emu::cc::ModelSpec *spec = nullptr;
  rc::ModelSpec realSpec{};
  std::vector<rc::TensorSpec> tensors;
  std::vector<rc::PackSpec> packs;
  w4a4_model *real = nullptr;
  std::vector<cuda::CudaWeights> sm80, sm90;
  bool lockstep = true;

  // Per forward.
  rc::Context *ctx = nullptr;
  const float *arenaBase = nullptr;
  int64_t arenaFloats = 0;
  std::vector<float> mirror;
  const float *resultBase = nullptr;
  int64_t resultFloats = 0;
  std::vector<float> mirrorResult;
  std::vector<QSlot> qslots;
  std::map<std::string, KernelFigures> figures;
  std::vector<std::string> failures;
  /// The cache length before this call (w4a4_decode) or 0 (w4a4_forward).
  int64_t past = 0;
  /// Outputs of this call's fakeQuant calls (emulator pointers): a K or V
  /// quantized per head goes into a 4-bit cache.
  struct FakeQuantized {
    int64_t bits, group;
    double clip;
  };
  std::map<const float *, FakeQuantized> fakeQuantized;
  /// Each attention layer's K and V caches on the emulator (persist across
  /// calls, as the CPU's do).
  struct LayerCache {
    bool fourBit = false;
    int64_t bits = 4;
    double clip = 1.0;
    std::vector<float> values[2], scales[2];
    std::vector<uint8_t> codes[2];
    cuda::KvCacheView view[2];
  };
  std::map<int64_t, LayerCache> caches;

  /// The emulator's copy of a CPU buffer (weights are shared, read-only).
  float *emu(const float *p) {
    if (p >= arenaBase && p < arenaBase + arenaFloats)
      return mirror.data() + (p - arenaBase);
    if (p >= resultBase && p < resultBase + resultFloats)
      return mirrorResult.data() + (p - resultBase);
    return const_cast<float *>(p);
  }

  void launch(const char *kernel, const cuda::emu::LaunchConfig &cfg,
              const std::function<void()> &body) {
    std::string error = cuda::emu::launch(cfg, body);
    if (!error.empty())
      die(std::string(kernel) + " on the emulator: " + error);
  }

  /// Compares the emulated output of `kernel` with the CPU's (n floats at
  /// the CPU pointer `out`), within `tol` (0: bit for bit; `relative`: of
  /// the largest |CPU value|), then (lockstep) copies the CPU's into the
  /// mirror.
  void compare(const std::string &kernel, const float *out, int64_t n,
               double tol = 0, bool relative = false, bool sync = true) {
    float *e = emu(out);
    KernelFigures &f = figures[kernel];
    ++f.calls;
    double worst = 0, scale = 0;
    bool same = true;
    for (int64_t i = 0; i < n; ++i) {
      if (std::memcmp(&e[i], &out[i], 4) != 0)
        same = false;
      double d = std::fabs(double(e[i]) - double(out[i]));
      if (std::isnan(d))
        d = INFINITY;
      worst = std::max(worst, d);
      scale = std::max(scale, std::fabs(double(out[i])));
    }
    if (relative && scale > 0)
      worst /= scale;
    f.worst = std::max(f.worst, worst);
    f.exact += same;
    if (lockstep && ((tol == 0 && !same) || worst > tol)) {
      char line[256];
      std::snprintf(line, sizeof line,
                    "%s (call %lld): largest difference %.3g, allowed %.3g",
                    kernel.c_str(), static_cast<long long>(f.calls), worst,
                    tol);
      failures.push_back(line);
    }
    if (lockstep && sync && e != out)
      std::memcpy(e, out, sizeof(float) * static_cast<size_t>(n));
  }

  QSlot &slot(int64_t q, int rows, int cols) {
    if (q < 0 || q >= static_cast<int64_t>(qslots.size()))
      die("quantized-rows slot " + std::to_string(q) + " out of range");
    QSlot &s = qslots[q];
    s.rows = rows;
    s.cols = cols;
    s.kPadded = (cols + 63) / 64 * 64;
    s.codes.assign(static_cast<size_t>(rows) * s.kPadded / 2, 0xee);
    s.scales.assign(rows, NAN);
    return s;
  }
};

Checker &checker() {
  static Checker k;
  return k;
}

/// The real runtime's forward: model.cpp's, on an emulated Context.
void trampoline(rc::Context *real) {
  Checker &k = checker();
  k.ctx = real;
  int64_t rows = rc::rows(real, k.spec->maxSeqExtra);
  k.arenaBase = rc::slot(real, 0);
  k.arenaFloats = rows * k.spec->arenaWidth;
  k.mirror.assign(static_cast<size_t>(k.arenaFloats), NAN);
  k.resultBase = rc::result(real);
  k.resultFloats = rc::rows(real, 0) * k.spec->vocab;
  k.mirrorResult.assign(static_cast<size_t>(k.resultFloats), NAN);
  k.qslots.assign(static_cast<size_t>(k.spec->qrowsSlots), QSlot{});
  k.fakeQuantized.clear();
  w4a4emu::cc::Context emu{real};
  k.spec->forward(&emu);
}

int toInt(int64_t v) { return static_cast<int>(v); }

} // namespace

// What model.cpp calls: the CPU runtime's call, then the emulated kernel.
namespace w4a4emu::cc {

w4a4_model *open(const ModelSpec *spec, const char *dir, char *err,
                 size_t errLen) {
  Checker &k = checker();
  k.spec = spec;
  for (int i = 0; i < spec->numTensors; ++i) {
    const TensorSpec &t = spec->tensors[i];
    rc::TensorSpec r{t.name, t.type, t.rank, {}};
    std::memcpy(r.dims, t.dims, sizeof r.dims);
    k.tensors.push_back(r);
  }
  for (int i = 0; i < spec->numPacks; ++i) {
    const PackSpec &p = spec->packs[i];
    k.packs.push_back({p.codes, p.scales, p.bits, p.group, p.out, p.in});
  }
  rc::ModelSpec &r = k.realSpec;
  r.weightsChecksum = spec->weightsChecksum;
  r.tensors = k.tensors.data();
  r.numTensors = spec->numTensors;
  r.packs = k.packs.data();
  r.numPacks = spec->numPacks;
  r.arenaWidth = spec->arenaWidth;
  r.maxSeqExtra = spec->maxSeqExtra;
  r.qrowsSlots = spec->qrowsSlots;
  r.vocab = spec->vocab;
  r.batch = spec->batch;
  r.maxTokens = spec->maxTokens;
  r.cacheLayers = spec->cacheLayers;
  r.perCallRegisters = spec->perCallRegisters;
  r.rowTail = spec->rowTail;
  r.forward = trampoline;
  k.real = rc::open(&r, dir, err, errLen);
  return k.real;
}

int64_t batch(Context *c) { return rc::batch(c->real); }
int64_t rows(Context *c, int64_t extra) { return rc::rows(c->real, extra); }
int64_t seq(Context *c, int64_t extra) { return rc::seq(c->real, extra); }
int64_t scoredRows(Context *c) { return rc::scoredRows(c->real); }
const int64_t *ids(Context *c) { return rc::ids(c->real); }
float *slot(Context *c, int64_t offset) { return rc::slot(c->real, offset); }
float *result(Context *c) { return rc::result(c->real); }
const float *f32(Context *c, int tensor) { return rc::f32(c->real, tensor); }

void embedding(Context *c, const float *table, int64_t vocab, int64_t hidden,
               const int64_t *ids, int64_t n, float *out) {
  rc::embedding(c->real, table, vocab, hidden, ids, n, out);
  Checker &k = checker();
  int bad = 0;
  cuda::EmbeddingParams p;
  p.table = table;
  p.ids = ids;
  p.out = k.emu(out);
  p.vocab = vocab;
  p.rows = toInt(n);
  p.hidden = toInt(hidden);
  p.badId = &bad;
  cuda::emu::LaunchConfig cfg;
  cfg.gridX = p.rows;
  cfg.threads = 128;
  k.launch("embedding", cfg, [&] { cuda::embedding(p); });
  if (bad)
    die("a token id outside the vocabulary");
  k.compare("embedding", out, n * hidden);
}

namespace {
cuda::RmsNormQuantizeParams rmsNormParams(Checker &k, const float *x,
                                          const float *gain, int64_t rows,
                                          int64_t cols, double eps) {
  cuda::RmsNormQuantizeParams p;
  p.x = k.emu(x);
  p.gain = gain;
  p.rows = toInt(rows);
  p.cols = toInt(cols);
  p.eps = static_cast<float>(eps);
  return p;
}
} // namespace

void rmsNorm(Context *c, const float *x, const float *gain, int64_t rows,
             int64_t cols, double eps, float *out) {
  rc::rmsNorm(c->real, x, gain, rows, cols, eps, out);
  Checker &k = checker();
  cuda::RmsNormQuantizeParams p = rmsNormParams(k, x, gain, rows, cols, eps);
  p.rowsOut = k.emu(out);
  cuda::emu::LaunchConfig cfg;
  cfg.gridX = p.rows;
  cfg.threads = cuda::producers::kThreads;
  cfg.sharedBytes = cuda::producers::rmsNormSharedBytes();
  k.launch("rmsNorm", cfg, [&] { cuda::rmsNorm(p); });
  k.compare("rmsNorm", out, rows * cols);
}

void gemm(Context *c, const float *x, const float *w, const float *bias,
          int64_t rows, int64_t in, int64_t out, float *y) {
  rc::gemm(c->real, x, w, bias, rows, in, out, y);
  Checker &k = checker();
  cuda::LinearF32Params p;
  p.x = k.emu(x);
  p.w = w;
  p.bias = bias;
  p.y = k.emu(y);
  p.rows = toInt(rows);
  p.in = toInt(in);
  p.out = toInt(out);
  cuda::emu::LaunchConfig cfg;
  cfg.gridX = p.rows;
  cfg.gridY =
      (p.out + cuda::rows::kLinearThreads - 1) / cuda::rows::kLinearThreads;
  cfg.threads = cuda::rows::kLinearThreads;
  k.launch("linearF32", cfg, [&] { cuda::linearF32(p); });
  k.compare("linearF32 (LM head)", y, rows * out, 1e-5, /*relative=*/true);
}

namespace {
void quantizeRowsOnEmulator(Checker &k, const char *kernel,
                            cuda::SwigluQuantizeParams &p, QSlot &q,
                            int64_t bits, double clip, bool swiglu) {
  p.out = {q.codes.data(), q.scales.data(), q.kPadded, static_cast<int>(bits),
           static_cast<float>(clip)};
  cuda::emu::LaunchConfig cfg;
  cfg.gridX = p.rows;
  cfg.threads = cuda::producers::kThreads;
  cfg.sharedBytes = cuda::producers::swigluSharedBytes(p.cols);
  k.launch(kernel, cfg, [&] {
    if (swiglu)
      cuda::swigluQuantize(p);
    else
      cuda::hadamardQuantize(p);
  });
}

/// The Hadamard parameters of swigluQuantize / hadamardRows for
/// rt::HadamardRowTransform::create(cols, size, stride).
void setHadamard(cuda::SwigluQuantizeParams &p, int64_t size,
                 const float *signs, bool inverse, int64_t stride,
                 cuda::HadamardSpec &spec) {
  if (size <= 0)
    return;
  if (!cuda::hadamardSpec(size, spec).ok())
    die("no Hadamard matrix of order " + std::to_string(size));
  p.hadamardSize = toInt(size);
  p.m = toInt(spec.m);
  p.w = toInt(spec.w);
  p.stride = toInt(stride);
  p.base = spec.base.empty() ? nullptr : spec.base.data();
  p.signs = signs;
  p.inverse = inverse;
  p.norm = spec.norm;
}
} // namespace

void quantize(Context *c, int64_t qslot, const float *x, int64_t rows,
              int64_t cols, int64_t bits, double clip) {
  rc::quantize(c->real, qslot, x, rows, cols, bits, clip);
  Checker &k = checker();
  QSlot &q = k.slot(qslot, toInt(rows), toInt(cols));
  cuda::SwigluQuantizeParams p;
  p.gate = k.emu(x);
  p.rows = toInt(rows);
  p.cols = toInt(cols);
  quantizeRowsOnEmulator(k, "quantize", p, q, bits, clip, false);
}

void qgemm(Context *c, int64_t qslot, int pack, const float *bias,
           const float *residual, int64_t rows, float *y) {
  rc::qgemm(c->real, qslot, pack, bias, residual, rows, y);
  Checker &k = checker();
  QSlot &q = k.qslots.at(static_cast<size_t>(qslot));
  for (int variant = 0; variant < 2; ++variant) {
    const cuda::CudaWeights &w =
        (variant == 0 ? k.sm80 : k.sm90).at(static_cast<size_t>(pack));
    if (q.rows != rows || q.kPadded != w.kPadded)
      die("qgemm " + std::to_string(pack) + ": the slot holds " +
          std::to_string(q.rows) + " rows of " + std::to_string(q.kPadded) +
          " padded inputs; the weights take " + std::to_string(w.kPadded));
    cuda::GemmParams p;
    p.m = toInt(rows);
    p.n = toInt(w.n);
    p.kPadded = toInt(w.kPadded);
    p.groupSteps = toInt(w.groupSteps);
    p.groups = toInt(w.groups);
    p.nPadded = toInt(w.nPadded);
    p.a = q.codes.data();
    p.aScale = q.scales.data();
    p.b = w.tiles.data();
    p.bScale = w.scales.data();
    p.bias = bias;
    p.residual = residual ? k.emu(residual) : nullptr;
    // The residual may be y itself: each variant starts from the same input.
    std::vector<float> residualCopy;
    if (residual && k.emu(residual) == k.emu(y)) {
      residualCopy.assign(k.emu(residual), k.emu(residual) + rows * w.n);
      p.residual = residualCopy.data();
    }
    std::vector<float> out(static_cast<size_t>(rows * w.n), NAN);
    p.y = out.data();
    cuda::emu::LaunchConfig cfg;
    cfg.gridX = toInt(w.nPadded / cuda::gemm::kBlockN);
    cfg.gridY = toInt((rows + cuda::gemm::kBlockM - 1) / cuda::gemm::kBlockM);
    cfg.threads = cuda::gemm::kThreads;
    cfg.sharedBytes = cuda::gemm::kSharedBytes;
    k.launch("w4a4Gemm", cfg, [&] {
      if (variant == 0)
        cuda::w4a4Gemm<cuda::Sm80S4>(p);
      else
        cuda::w4a4Gemm<cuda::Sm90S8>(p);
    });
    std::memcpy(k.emu(y), out.data(), out.size() * sizeof(float));
    // Both variants must equal the CPU; lockstep syncs after the second.
    k.compare(variant == 0 ? "w4a4Gemm<Sm80S4>" : "w4a4Gemm<Sm90S8>", y,
              rows * w.n, 0, false, /*sync=*/variant == 1);
  }
}

void rmsNormQuantize(Context *c, int64_t qslot, const float *x,
                     const float *gain, int64_t rows, int64_t cols, double eps,
                     int64_t bits, double clip) {
  rc::rmsNormQuantize(c->real, qslot, x, gain, rows, cols, eps, bits, clip);
  Checker &k = checker();
  QSlot &q = k.slot(qslot, toInt(rows), toInt(cols));
  cuda::RmsNormQuantizeParams p = rmsNormParams(k, x, gain, rows, cols, eps);
  p.out = {q.codes.data(), q.scales.data(), q.kPadded, static_cast<int>(bits),
           static_cast<float>(clip)};
  cuda::emu::LaunchConfig cfg;
  cfg.gridX = p.rows;
  cfg.threads = cuda::producers::kThreads;
  cfg.sharedBytes = cuda::producers::rmsNormSharedBytes();
  k.launch("rmsNormQuantize", cfg, [&] { cuda::rmsNormQuantize(p); });
}

void swigluQuantize(Context *c, int64_t qslot, const float *gate,
                    const float *up, int64_t rows, int64_t cols,
                    int64_t hadamardSize, const float *signs, bool inverse,
                    int64_t stride, int64_t bits, double clip) {
  rc::swigluQuantize(c->real, qslot, gate, up, rows, cols, hadamardSize, signs,
                     inverse, stride, bits, clip);
  Checker &k = checker();
  QSlot &q = k.slot(qslot, toInt(rows), toInt(cols));
  cuda::SwigluQuantizeParams p;
  p.gate = k.emu(gate);
  p.up = k.emu(up);
  p.rows = toInt(rows);
  p.cols = toInt(cols);
  cuda::HadamardSpec spec;
  setHadamard(p, hadamardSize, signs, inverse, stride, spec);
  quantizeRowsOnEmulator(k, "swigluQuantize", p, q, bits, clip, true);
}

void tailRows(Context *c, const float *x, int64_t batch, int64_t seq,
              int64_t width, float *out) {
  rc::tailRows(c->real, x, batch, seq, width, out);
  Checker &k = checker();
  int64_t scored = rc::scoredRows(c->real) / batch;
  cuda::TailRowsParams p;
  p.x = k.emu(x);
  p.out = k.emu(out);
  p.seq = toInt(seq);
  p.scored = toInt(scored);
  p.width = toInt(width);
  // x and out may overlap in the arena: read a copy.
  std::vector<float> in(p.x, p.x + batch * seq * width);
  p.x = in.data();
  cuda::emu::LaunchConfig cfg;
  cfg.gridX = toInt(batch * scored);
  cfg.threads = 128;
  k.launch("tailRows", cfg, [&] { cuda::tailRows(p); });
  k.compare("tailRows", out, batch * scored * width);
}

void fakeQuant(Context *c, const float *x, int64_t rows, int64_t cols,
               int64_t bits, double clip, int64_t group, float *out) {
  rc::fakeQuant(c->real, x, rows, cols, bits, clip, group, out);
  Checker &k = checker();
  int64_t width = group > 0 ? group : cols;
  cuda::FakeQuantParams p;
  p.x = k.emu(x);
  p.out = k.emu(out);
  p.rows = toInt(rows * (cols / width));
  p.width = toInt(width);
  p.bits = toInt(bits);
  p.clip = static_cast<float>(clip);
  cuda::emu::LaunchConfig cfg;
  cfg.gridX = p.rows;
  cfg.threads = cuda::producers::kThreads;
  cfg.sharedBytes = cuda::producers::kThreads * 4;
  k.launch("fakeQuant", cfg, [&] { cuda::fakeQuant(p); });
  k.fakeQuantized[p.out] = {bits, group, clip};
  k.compare("fakeQuant (4-bit KV)", out, rows * cols);
}

void rope(Context *c, const float *x, int64_t batch, int64_t seq, int64_t heads,
          int64_t headDim, double theta, int64_t offset, bool interleaved,
          float *out) {
  rc::rope(c->real, x, batch, seq, heads, headDim, theta, offset, interleaved,
           out);
  Checker &k = checker();
  // The tables as the CPU makes them (rt::ropeTables, float64 angles).
  // Positions start at offset + the cache's length (as the CPU's).
  offset += k.past;
  std::vector<float> cosT((seq + offset) * headDim / 2), sinT(cosT.size());
  rt::ropeTables(theta, headDim, 0, seq + offset, cosT.data(), sinT.data());
  cuda::RopeParams p;
  p.x = k.emu(x);
  p.out = k.emu(out);
  p.rows = toInt(batch * seq);
  p.seq = toInt(seq);
  p.heads = toInt(heads);
  p.headDim = toInt(headDim);
  p.cosT = cosT.data();
  p.sinT = sinT.data();
  p.offset = toInt(offset);
  p.interleaved = interleaved;
  cuda::emu::LaunchConfig cfg;
  cfg.gridX = p.rows;
  cfg.threads = 128;
  k.launch("rope", cfg, [&] { cuda::rope(p); });
  k.compare("rope", out, batch * seq * heads * headDim);
}

void attention(Context *c, int64_t layer, const float *q, const float *k,
               const float *v, const float *kp, const float *vp, int64_t prefix,
               int64_t batch, int64_t seq, int64_t heads, int64_t kvHeads,
               int64_t headDim, double scale, float *out) {
  rc::attention(c->real, layer, q, k, v, kp, vp, prefix, batch, seq, heads,
                kvHeads, headDim, scale, out);
  Checker &ck = checker();
  cuda::AttentionParams p;
  // out may overlap q, k or v in the arena: the kernel reads copies.
  int64_t qn = batch * seq * heads * headDim,
          kvn = batch * seq * kvHeads * headDim;
  std::vector<float> qc(ck.emu(q), ck.emu(q) + qn),
      kc(ck.emu(k), ck.emu(k) + kvn), vc(ck.emu(v), ck.emu(v) + kvn);
  p.q = qc.data();
  p.k = kc.data();
  p.v = vc.data();
  p.kp = kp;
  p.vp = vp;
  p.out = ck.emu(out);
  p.batch = toInt(batch);
  p.seq = toInt(seq);
  p.heads = toInt(heads);
  p.kvHeads = toInt(kvHeads);
  p.headDim = toInt(headDim);
  p.prefix = toInt(prefix);
  p.scale = static_cast<float>(scale);
  std::string name = "attention";
  if (layer >= 0) {
    // A layer with a KV cache: this call's K and V go into the emulator's
    // cache (kvAppend: 4-bit codes when the model fake-quantizes them per
    // head, fp32 otherwise), then attention reads prefix + cache.
    Checker::LayerCache &lc = ck.caches[layer];
    int64_t capacity = ck.spec->maxTokens;
    size_t slots = static_cast<size_t>(batch * kvHeads * capacity);
    if (lc.view[0].capacity == 0) {
      auto kq = ck.fakeQuantized.find(ck.emu(k));
      auto vq = ck.fakeQuantized.find(ck.emu(v));
      lc.fourBit = kq != ck.fakeQuantized.end() &&
                   vq != ck.fakeQuantized.end() && kq->second.bits <= 4 &&
                   kq->second.group == headDim && vq->second.bits <= 4 &&
                   vq->second.group == headDim && headDim % 2 == 0;
      if (lc.fourBit) {
        lc.bits = kq->second.bits;
        lc.clip = kq->second.clip;
      }
      for (int i = 0; i < 2; ++i) {
        cuda::KvCacheView &view = lc.view[i];
        view.capacity = toInt(capacity);
        if (lc.fourBit) {
          lc.codes[i].assign(slots * headDim / 2, 0xee);
          lc.scales[i].assign(slots, NAN);
          view.codes = lc.codes[i].data();
          view.scales = lc.scales[i].data();
        } else {
          lc.values[i].assign(slots * headDim, NAN);
          view.values = lc.values[i].data();
        }
      }
    }
    if (ck.past + seq > capacity)
      die("the cache holds " + std::to_string(capacity) + " positions");
    for (int i = 0; i < 2; ++i) {
      cuda::KvAppendParams a;
      a.x = i == 0 ? p.k : p.v;
      a.cache = lc.view[i];
      a.seq = toInt(seq);
      a.kvHeads = toInt(kvHeads);
      a.headDim = toInt(headDim);
      a.past = toInt(ck.past);
      a.bits = toInt(lc.bits);
      a.clip = static_cast<float>(lc.clip);
      cuda::emu::LaunchConfig cfg;
      cfg.gridX = toInt(batch * seq);
      cfg.gridY = toInt(kvHeads);
      cfg.threads = cuda::attn::kAppendThreads;
      cfg.sharedBytes = cuda::attn::kAppendThreads * 4;
      ck.launch("kvAppend", cfg, [&] { cuda::kvAppend(a); });
    }
    p.cached = true;
    p.past = toInt(ck.past);
    p.cacheK = lc.view[0];
    p.cacheV = lc.view[1];
    name = lc.fourBit ? "attention (4-bit cache)" : "attention (fp32 cache)";
  }
  cuda::emu::LaunchConfig cfg;
  cfg.gridX = toInt(batch * seq);
  cfg.gridY = toInt(heads);
  cfg.threads = cuda::attn::kThreads;
  cfg.sharedBytes =
      cuda::attn::sharedBytes(p.prefix + (p.cached ? p.past : 0) + p.seq);
  ck.launch("attention", cfg, [&] { cuda::attention(p); });
  ck.compare(name, out, qn, 1e-5);
}

void hadamard(Context *c, const float *x, int64_t rows, int64_t width,
              int64_t size, const float *signs, bool inverse, int64_t stride,
              float *out) {
  rc::hadamard(c->real, x, rows, width, size, signs, inverse, stride, out);
  Checker &k = checker();
  cuda::SwigluQuantizeParams p;
  std::vector<float> in(k.emu(x), k.emu(x) + rows * width);
  p.gate = in.data();
  p.rows = toInt(rows);
  p.cols = toInt(width);
  p.rowsOut = k.emu(out);
  cuda::HadamardSpec spec;
  setHadamard(p, size, signs, inverse, stride, spec);
  cuda::emu::LaunchConfig cfg;
  cfg.gridX = p.rows;
  cfg.threads = cuda::producers::kThreads;
  cfg.sharedBytes = cuda::producers::swigluSharedBytes(p.cols);
  k.launch("hadamardRows", cfg, [&] { cuda::hadamardRows(p); });
  k.compare("hadamardRows", out, rows * width);
}

[[noreturn]] void unsupported(const char *call) {
  die(std::string("the CUDA kernels have no ") + call +
      " yet (fp32 models: not on the W4A4 path this check covers)");
}
void swiglu(Context *, const float *, const float *, int64_t, int64_t,
            float *) {
  unsupported("swiglu");
}
void add(Context *, const float *, const float *, int64_t, int64_t, float *) {
  unsupported("add");
}
void registers(Context *, int, const float *, const float *, int64_t, int64_t,
               int64_t, int64_t, float *) {
  unsupported("registers (per-call Depth Registers)");
}

} // namespace w4a4emu::cc

namespace {

std::vector<int64_t> parseIds(const std::string &text) {
  std::vector<int64_t> ids;
  std::stringstream s(text);
  std::string item;
  while (std::getline(s, item, ','))
    ids.push_back(std::strtoll(item.c_str(), nullptr, 10));
  if (ids.empty())
    die("no token ids");
  return ids;
}

void writeFloats(const std::string &path, const std::vector<float> &v) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char *>(v.data()),
            static_cast<std::streamsize>(v.size() * sizeof(float)));
  if (!out)
    die("cannot write " + path);
}

} // namespace

int main(int argc, char **argv) {
  if (argc < 4)
    die("usage: w4a4-cuda-model-check MODEL DIR IDS [--mode=lockstep|free] "
        "[--tol=X] [--cpu-logits=F] [--emu-logits=F] [--decode=N,N,...]");
  std::string model = argv[1], dir = argv[2];
  std::vector<int64_t> ids = parseIds(argv[3]);
  std::string cpuOut, emuOut;
  std::vector<int64_t> decodeChunks;
  double tol = 0;
  Checker &k = checker();
  for (int i = 4; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--mode=free")
      k.lockstep = false;
    else if (a == "--mode=lockstep")
      k.lockstep = true;
    else if (a.rfind("--tol=", 0) == 0)
      tol = std::strtod(a.c_str() + 6, nullptr);
    else if (a.rfind("--cpu-logits=", 0) == 0)
      cpuOut = a.substr(13);
    else if (a.rfind("--emu-logits=", 0) == 0)
      emuOut = a.substr(13);
    else if (a.rfind("--decode=", 0) == 0)
      decodeChunks = parseIds(a.substr(9));
    else
      die("unknown option " + a);
  }
  char err[512] = "";
  w4a4_model *m = nullptr;
  if (model == "tiny_dr_sink_quarot")
    m = w4a4emu_open_tiny_dr_sink_quarot(dir.c_str(), err, sizeof err);
  else if (model == "tiny_baseline_kv4")
    m = w4a4emu_open_tiny_baseline_kv4(dir.c_str(), err, sizeof err);
  else
    die("unknown model " + model);
  if (!m)
    die(dir + ": " + err);
  // The weights in both GEMM variants' fragment orders, packed from the
  // artifact's codes and scales (weights.bin) by the CPU's packing.
  rt::WeightsFile weights;
  rt::Status opened = rt::WeightsFile::open(dir + "/weights.bin", weights);
  if (!opened.ok())
    die(opened.message());
  for (const rc::PackSpec &p : k.packs) {
    rt::PackedWeights w;
    rt::Status s =
        rt::packWeights(static_cast<const int8_t *>(weights.data(p.codes)),
                        static_cast<const float *>(weights.data(p.scales)),
                        p.out, p.in, p.bits, p.group, w);
    if (!s.ok())
      die(s.message());
    k.sm80.emplace_back();
    k.sm90.emplace_back();
    if (!cuda::packWeights(cuda::GemmTarget::Sm80S4, w, k.sm80.back()).ok() ||
        !cuda::packWeights(cuda::GemmTarget::Sm90S8, w, k.sm90.back()).ok())
      die("cannot pack weight " + std::string(k.tensors[p.codes].name));
  }
  int64_t seq = static_cast<int64_t>(ids.size()), vocab = w4a4_vocab(m);
  std::vector<float> logits(static_cast<size_t>(seq * vocab));
  if (w4a4_forward(m, ids.data(), 1, seq, logits.data()) != 0)
    die(std::string("forward: ") + w4a4_last_error(m));
  // The emulator's logits (the result buffer mirror holds the same rows).
  std::vector<float> emuLogits(k.mirrorResult.begin(),
                               k.mirrorResult.begin() + seq * vocab);
  std::printf("model %s, %lld tokens, mode %s\n", model.c_str(),
              static_cast<long long>(seq), k.lockstep ? "lockstep" : "free");
  for (const auto &[name, f] : k.figures)
    std::printf("  %-22s calls %3lld  bit-identical %3lld  largest "
                "difference %.3g\n",
                name.c_str(), static_cast<long long>(f.calls),
                static_cast<long long>(f.exact), f.worst);
  double worst = 0, largest = 0;
  int64_t argmaxSame = 0;
  for (int64_t r = 0; r < seq; ++r) {
    int64_t a = 0, b = 0;
    for (int64_t v = 0; v < vocab; ++v) {
      size_t i = static_cast<size_t>(r * vocab + v);
      double d = std::fabs(double(emuLogits[i]) - logits[i]);
      worst = std::max(worst, std::isnan(d) ? INFINITY : d);
      largest = std::max(largest, std::fabs(double(logits[i])));
      if (logits[i] > logits[static_cast<size_t>(r * vocab + a)])
        a = v;
      if (emuLogits[i] > emuLogits[static_cast<size_t>(r * vocab + b)])
        b = v;
    }
    argmaxSame += a == b;
  }
  if (k.lockstep)
    std::printf("logits: the LM head's line above (in lockstep each kernel "
                "ran on the CPU's inputs)\n");
  else
    std::printf("logits: largest |emulated - CPU| %.3g (%.3g of the largest "
                "|logit| %.3g), same argmax at %lld of %lld positions\n",
                worst, worst / largest, largest,
                static_cast<long long>(argmaxSame),
                static_cast<long long>(seq));
  // Scoring: the next token's NLL at every position but the last, by
  // rt::tokenNll on the CPU's logits and by the tokenNll kernel on the
  // emulator's (lockstep: on the CPU's, bit for bit).
  if (seq > 1) {
    int64_t scored = seq - 1;
    std::vector<int64_t> targets(ids.begin() + 1, ids.end());
    std::vector<double> cpuNll(scored), emuNll(scored, NAN);
    if (!rt::tokenNll(logits.data(), scored, vocab, targets.data(),
                      cpuNll.data())
             .ok())
      die("tokenNll on the CPU");
    int bad = 0;
    cuda::TokenNllParams p;
    p.logits = k.lockstep ? logits.data() : emuLogits.data();
    p.targets = targets.data();
    p.nll = emuNll.data();
    p.rows = toInt(scored);
    p.vocab = toInt(vocab);
    p.badTarget = &bad;
    cuda::emu::LaunchConfig cfg;
    cfg.gridX = p.rows;
    cfg.threads = cuda::rows::kNllThreads;
    cfg.sharedBytes = cuda::rows::nllSharedBytes();
    k.launch("tokenNll", cfg, [&] { cuda::tokenNll(p); });
    double cpuMean = 0, emuMean = 0, worstNll = 0;
    int64_t same = 0;
    for (int64_t r = 0; r < scored; ++r) {
      cpuMean += cpuNll[r] / scored;
      emuMean += emuNll[r] / scored;
      worstNll = std::max(worstNll, std::fabs(cpuNll[r] - emuNll[r]));
      same += std::memcmp(&cpuNll[r], &emuNll[r], sizeof(double)) == 0;
    }
    std::printf("  %-22s calls %3d  bit-identical %3lld of %lld rows  "
                "largest difference %.3g\n",
                "tokenNll", 1, static_cast<long long>(same),
                static_cast<long long>(scored), worstNll);
    std::printf("mean NLL: CPU %.9f, emulated %.9f\n", cpuMean, emuMean);
    if (bad || std::isnan(worstNll) || (k.lockstep && same != scored))
      k.failures.push_back("tokenNll differs");
  }
  if (!cpuOut.empty())
    writeFloats(cpuOut, logits);
  if (!emuOut.empty())
    writeFloats(emuOut, emuLogits);
  // Decoding: the same ids in chunks through the KV cache (w4a4_decode),
  // each call checked kernel by kernel; the emulator keeps its own caches
  // (4-bit codes where the model quantizes K and V per head).
  double decodeWorst = 0;
  if (!decodeChunks.empty()) {
    k.figures.clear();
    w4a4_reset(m);
    int64_t done = 0, calls = 0;
    std::string sizes;
    for (size_t c = 0; done < seq; ++c) {
      int64_t n = c < decodeChunks.size() ? decodeChunks[c] : seq - done;
      n = std::max<int64_t>(1, std::min(n, seq - done));
      k.past = w4a4_cache_length(m);
      if (k.past != done)
        die("the CPU's cache holds " + std::to_string(k.past) +
            " positions after " + std::to_string(done) + " tokens");
      std::vector<float> stepLogits(static_cast<size_t>(n * vocab));
      if (w4a4_decode(m, ids.data() + done, 1, n, stepLogits.data()) != 0)
        die(std::string("decode: ") + w4a4_last_error(m));
      for (int64_t i = 0; i < n * vocab; ++i)
        decodeWorst = std::max(
            decodeWorst, std::fabs(double(k.mirrorResult[i]) - stepLogits[i]));
      done += n;
      ++calls;
      sizes += (sizes.empty() ? "" : ",") + std::to_string(n);
    }
    k.past = 0;
    std::printf("decode: %lld calls of %s tokens through the KV cache\n",
                static_cast<long long>(calls), sizes.c_str());
    for (const auto &[name, f] : k.figures)
      std::printf("  %-24s calls %3lld  bit-identical %3lld  largest "
                  "difference %.3g\n",
                  name.c_str(), static_cast<long long>(f.calls),
                  static_cast<long long>(f.exact), f.worst);
    if (!k.lockstep)
      std::printf("decode logits: largest |emulated - CPU| %.3g\n",
                  decodeWorst);
  }
  w4a4_close(m);
  if (!k.lockstep && !(decodeWorst <= tol * largest)) {
    std::printf("FAIL: the decode logits differ by more than %.3g of the "
                "largest |logit|\n",
                tol);
    return 1;
  }
  for (const std::string &f : k.failures)
    std::printf("MISMATCH %s\n", f.c_str());
  if (!k.failures.empty())
    return 1;
  if (!k.lockstep && !(worst <= tol * largest)) {
    std::printf("FAIL: the logits differ by more than %.3g of the largest "
                "|logit|\n",
                tol);
    return 1;
  }
  std::printf("PASS\n");
  return 0;
}
