//===- Kernels.cpp - CPU kernels of the w4a4 ops --------------------------===//

#include "w4a4/runtime/Kernels.h"
#include "w4a4/runtime/IntGemm.h"

#include "VecMath.h"

#include <cblas.h>
#ifdef __linux__
#include <sched.h>
#endif

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

extern "C" void openblas_set_num_threads(int);

namespace w4a4::rt {

namespace {
/// Whether `work` (elements, or multiply-adds / 64) is worth waking the
/// other threads for: a parallel region costs tens of microseconds with
/// parked workers, more than a decode step's small kernels take alone.
inline bool worthThreads(int64_t work) { return work > 16384; }
} // namespace

int usableCores() {
#ifdef __linux__
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
    return CPU_COUNT(&set);
#endif
  unsigned n = std::thread::hardware_concurrency();
  return n ? static_cast<int>(n) : 1;
}

int setThreads(int threads) {
  int cores = usableCores();
  int n = threads > 0 ? std::min(threads, cores) : cores;
#ifdef _OPENMP
  omp_set_num_threads(n);
#endif
  return n;
}

const char *waitPolicy() {
  const char *p = std::getenv("OMP_WAIT_POLICY");
  if (!p)
    return "default";
  std::string v(p);
  for (char &c : v)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return v == "passive" ? "passive" : v == "active" ? "active" : "default";
}

namespace {
/// OpenBLAS runs single-threaded inside the kernels' own OpenMP threads:
/// its pthread pool and OpenMP's spinning workers fight over the cores
/// otherwise (measured 4x slower on 2 cores).
struct SingleThreadedBlas {
  SingleThreadedBlas() { openblas_set_num_threads(1); }
} singleThreadedBlas;
} // namespace

Status embedding(const float *table, int64_t vocab, int64_t hidden,
                 const int64_t *ids, int64_t n, float *out) {
  for (int64_t i = 0; i < n; ++i) {
    int64_t id = ids[i];
    if (id < 0 || id >= vocab)
      return Status::error("token id " + std::to_string(id) + " at position " +
                           std::to_string(i) +
                           " is outside the vocabulary [0, " +
                           std::to_string(vocab) + ")");
    std::copy(table + id * hidden, table + (id + 1) * hidden, out + i * hidden);
  }
  return {};
}

void rmsNormRow(const float *xr, const float *gain, int64_t cols, double eps,
                float *o) {
  float epsf = static_cast<float>(eps);
  // Accumulate in double, round the mean to float: fp32 semantics with a
  // summation error independent of the row length.
  double ss = 0;
  for (int64_t c = 0; c < cols; ++c)
    ss += static_cast<double>(xr[c]) * xr[c];
  float denom = std::sqrt(static_cast<float>(ss / cols) + epsf);
  for (int64_t c = 0; c < cols; ++c) {
    float y = xr[c] / denom;
    o[c] = gain ? y * gain[c] : y;
  }
}

void rmsNorm(const float *x, const float *gain, int64_t rows, int64_t cols,
             double eps, float *out) {
#pragma omp parallel for schedule(static) if (worthThreads(rows * cols))
  for (int64_t r = 0; r < rows; ++r)
    rmsNormRow(x + r * cols, gain, cols, eps, out + r * cols);
}

void linear(const float *x, const float *w, const float *bias, int64_t rows,
            int64_t in, int64_t out, float *y) {
  float beta = 0.0f;
  if (bias) {
    for (int64_t r = 0; r < rows; ++r)
      std::copy(bias, bias + out, y + r * out);
    beta = 1.0f;
  }
  // Split the rows over the threads, or the outputs when there are fewer
  // rows than threads (decoding); each block is one single-threaded GEMM.
  // Small products stay on one thread (waking the others costs more).
#pragma omp parallel if (worthThreads(rows * in * out / 64))
  {
    int64_t nt = 1, t = 0;
#ifdef _OPENMP
    nt = omp_get_num_threads();
    t = omp_get_thread_num();
#endif
    if (rows >= nt) {
      int64_t chunk = (rows + nt - 1) / nt, r0 = std::min(rows, t * chunk),
              r1 = std::min(rows, r0 + chunk);
      if (r1 > r0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r1 - r0, out, in,
                    1.0f, x + r0 * in, in, w, in, beta, y + r0 * out, out);
    } else {
      int64_t chunk = (out + nt - 1) / nt, o0 = std::min(out, t * chunk),
              o1 = std::min(out, o0 + chunk);
      if (o1 > o0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, o1 - o0, in,
                    1.0f, x, in, w + o0 * in, in, beta, y + o0, out);
    }
  }
}

namespace {
/// cos and sin of p * theta^(-2i/d) for positions p in [0, positions),
/// i in [0, d/2), computed in float64 and rounded to float.
struct RopeTable {
  int64_t positions;
  std::vector<float> cos, sin;
};

void fillRope(double theta, int64_t headDim, int64_t p0, int64_t p1,
              float *cosT, float *sinT) {
  int64_t half = headDim / 2;
  for (int64_t p = p0; p < p1; ++p)
    for (int64_t i = 0; i < half; ++i) {
      double inv = 1.0 / std::pow(theta, static_cast<double>(2 * i) / headDim);
      double ang = static_cast<double>(p) * inv;
      cosT[(p - p0) * half + i] = static_cast<float>(std::cos(ang));
      sinT[(p - p0) * half + i] = static_cast<float>(std::sin(ang));
    }
}

/// The tables of (theta, headDim) covering at least `positions`, kept for
/// the life of the process (every window of a perplexity run reuses them).
/// A table is immutable once published; growing replaces it.
std::shared_ptr<const RopeTable> ropeTable(double theta, int64_t headDim,
                                           int64_t positions) {
  static std::mutex mutex;
  static std::map<std::pair<double, int64_t>, std::shared_ptr<const RopeTable>>
      cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto &entry = cache[{theta, headDim}];
  if (!entry || entry->positions < positions) {
    auto t = std::make_shared<RopeTable>();
    t->positions =
        std::max<int64_t>({positions, entry ? 2 * entry->positions : 0, 512});
    t->cos.resize(t->positions * (headDim / 2));
    t->sin.resize(t->positions * (headDim / 2));
    fillRope(theta, headDim, 0, t->positions, t->cos.data(), t->sin.data());
    entry = std::move(t);
  }
  return entry;
}
} // namespace

namespace {
/// One token's heads rotated by the angles whose cos/sin are c[i], sn[i]
/// (rotate-half pairs (i, i + d/2), or interleaved (2i, 2i + 1)).
void rotateHeads(const float *x, const float *c, const float *sn, int64_t heads,
                 int64_t headDim, bool interleaved, float *out) {
  int64_t half = headDim / 2;
  for (int64_t h = 0; h < heads; ++h) {
    const float *xv = x + h * headDim;
    float *o = out + h * headDim;
    for (int64_t i = 0; i < half; ++i) {
      int64_t a = interleaved ? 2 * i : i,
              b = interleaved ? 2 * i + 1 : i + half;
      float xa = xv[a], xb = xv[b];
      o[a] = xa * c[i] - xb * sn[i];
      o[b] = xb * c[i] + xa * sn[i];
    }
  }
}
} // namespace

void ropeTables(double theta, int64_t headDim, int64_t p0, int64_t p1,
                float *cosT, float *sinT) {
  fillRope(theta, headDim, p0, p1, cosT, sinT);
}

void rope(const float *x, int64_t batch, int64_t seq, int64_t heads,
          int64_t headDim, double theta, int64_t offset, bool interleaved,
          float *out) {
  int64_t half = headDim / 2, width = heads * headDim;
  std::shared_ptr<const RopeTable> table;
  std::vector<float> localCos, localSin;
  const float *cosT, *sinT;
  if (offset >= 0) {
    table = ropeTable(theta, headDim, offset + seq);
    cosT = table->cos.data() + offset * half;
    sinT = table->sin.data() + offset * half;
  } else {
    localCos.resize(seq * half);
    localSin.resize(seq * half);
    fillRope(theta, headDim, offset, offset + seq, localCos.data(),
             localSin.data());
    cosT = localCos.data();
    sinT = localSin.data();
  }
#pragma omp parallel for schedule(static) if (worthThreads(batch * seq * width))
  for (int64_t bs = 0; bs < batch * seq; ++bs) {
    int64_t s = bs % seq;
    rotateHeads(x + bs * width, cosT + s * half, sinT + s * half, heads,
                headDim, interleaved, out + bs * width);
  }
}

void ropeAt(const float *x, const int64_t *positions, int64_t batch,
            int64_t seq, int64_t heads, int64_t headDim, double theta,
            int64_t offset, bool interleaved, float *out) {
  int64_t half = headDim / 2, width = heads * headDim;
#pragma omp parallel if (worthThreads(batch * seq * width))
  {
    // cos/sin of the row's position, by the tables' formula (so a row
    // equals rope()'s for the same position).
    std::vector<float> c(half), sn(half);
#pragma omp for schedule(static)
    for (int64_t bs = 0; bs < batch * seq; ++bs) {
      int64_t p = positions[bs] + offset;
      fillRope(theta, headDim, p, p + 1, c.data(), sn.data());
      rotateHeads(x + bs * width, c.data(), sn.data(), heads, headDim,
                  interleaved, out + bs * width);
    }
  }
}

namespace {
constexpr int64_t kLanes = 16;

/// Lane maxima of row[0, n): 16 lanes over the blocks of 16, the tail
/// folded into the first lanes; then combined in lane order.
W4A4_INLINE float rowMax(const float *row, int64_t n) {
  using namespace detail;
  int64_t body = n / kLanes * kLanes;
  F16 m = splat<F16>(-std::numeric_limits<float>::infinity());
  for (int64_t j = 0; j < body; j += kLanes) {
    F16 v = load16(row + j);
    m = v > m ? v : m;
  }
  float lanes[kLanes];
  store16(lanes, m);
  for (int64_t j = body; j < n; ++j)
    lanes[j - body] = row[j] > lanes[j - body] ? row[j] : lanes[j - body];
  float mx = lanes[0];
  for (int64_t l = 1; l < kLanes; ++l)
    mx = lanes[l] > mx ? lanes[l] : mx;
  return mx;
}

/// row[0, n) = softmax(row[0, n)) in place: exp(x - max) on 16 lanes, the
/// sum over 16 lane sums (a fixed order on every instruction set).
W4A4_VECTOR_CLONES void softmaxInPlace(float *__restrict row, int64_t n) {
  using namespace detail;
  int64_t body = n / kLanes * kLanes;
  float mx = rowMax(row, n);
  F16 s = splat<F16>(0.0f), mv = splat<F16>(mx);
  for (int64_t j = 0; j < body; j += kLanes) {
    F16 e = expPoly(load16(row + j) - mv);
    store16(row + j, e);
    s += e;
  }
  float lanes[kLanes];
  store16(lanes, s);
  for (int64_t j = body; j < n; ++j) {
    float e = expPoly<float>(row[j] - mx);
    row[j] = e;
    lanes[j - body] += e;
  }
  float sum = 0.0f;
  for (int64_t l = 0; l < kLanes; ++l)
    sum += lanes[l];
  float inv = 1.0f / sum;
  F16 iv = splat<F16>(inv);
  for (int64_t j = 0; j < body; j += kLanes)
    store16(row + j, load16(row + j) * iv);
  for (int64_t j = body; j < n; ++j)
    row[j] *= inv;
}
} // namespace

namespace {
/// Where the keys and values of (batch b, kv head g) live: row j (j <
/// past + seq, the past first) is at base + b * batchStride + g * headStride
/// + j * ld.
struct KeyRows {
  const float *k, *v;
  int64_t batchStride, headStride, ld;
};

/// Causal attention over a constant prefix kp/vp [prefix, kvHeads * d] and
/// `past + seq` key rows (`rows`); query t sees the prefix, the past and
/// rows past..past+t.
void attendCausal(const float *q, const KeyRows &rows, const float *kp,
                  const float *vp, int64_t prefix, int64_t past, int64_t batch,
                  int64_t seq, int64_t heads, int64_t kvHeads, int64_t headDim,
                  double scale, float *out) {
  int64_t group = heads / kvHeads, qWidth = heads * headDim,
          kvWidth = kvHeads * headDim, n = prefix + past + seq;
  float sc = static_cast<float>(scale);
  // Work items are (batch, head, block of kQueryBlock queries); a block
  // sees the keys up to its last query (causal), so the upper triangle is
  // not computed: S = Q K^T (sgemm on the strided head slices), the softmax
  // row by row over the visible keys, then O = P V (sgemm).
  constexpr int64_t kQueryBlock = 64;
  int64_t blocks = (seq + kQueryBlock - 1) / kQueryBlock;
#pragma omp parallel if (worthThreads(batch * heads * seq * n * headDim / 64))
  {
    std::vector<float> kh, vh, s(kQueryBlock * n);
    if (prefix) {
      kh.resize(n * headDim);
      vh.resize(n * headDim);
    }
#pragma omp for collapse(3) schedule(dynamic)
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t blk = 0; blk < blocks; ++blk) {
          // Largest blocks first, for the dynamic schedule's balance.
          int64_t t0 = (blocks - 1 - blk) * kQueryBlock,
                  t1 = std::min(seq, t0 + kQueryBlock),
                  keys = prefix + past + t1;
          int64_t g = h / group;
          int64_t offset = b * rows.batchStride + g * rows.headStride;
          const float *ks = rows.k + offset, *vs = rows.v + offset;
          int64_t ld = rows.ld;
          if (prefix) {
            // The constant prefix and the key rows as one key matrix.
            for (int64_t j = 0; j < keys; ++j) {
              const float *kr = j < prefix ? kp + j * kvWidth + g * headDim
                                           : ks + (j - prefix) * ld;
              const float *vr = j < prefix ? vp + j * kvWidth + g * headDim
                                           : vs + (j - prefix) * ld;
              std::copy(kr, kr + headDim, kh.data() + j * headDim);
              std::copy(vr, vr + headDim, vh.data() + j * headDim);
            }
            ks = kh.data();
            vs = vh.data();
            ld = headDim;
          }
          const float *qh = q + (b * seq + t0) * qWidth + h * headDim;
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, t1 - t0, keys,
                      headDim, sc, qh, qWidth, ks, ld, 0.0f, s.data(), keys);
          for (int64_t t = t0; t < t1; ++t) {
            float *row = s.data() + (t - t0) * keys;
            int64_t visible = prefix + past + t + 1;
            softmaxInPlace(row, visible);
            std::fill(row + visible, row + keys, 0.0f);
          }
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, t1 - t0,
                      headDim, keys, 1.0f, s.data(), keys, vs, ld, 0.0f,
                      out + (b * seq + t0) * qWidth + h * headDim, qWidth);
        }
  }
}
} // namespace

void attention(const float *q, const float *k, const float *v, const float *kp,
               const float *vp, int64_t prefix, int64_t batch, int64_t seq,
               int64_t heads, int64_t kvHeads, int64_t headDim, double scale,
               float *out) {
  // Key rows are the sequence's k, v [batch, seq, kvHeads * d].
  int64_t kvWidth = kvHeads * headDim;
  attendCausal(q, {k, v, seq * kvWidth, headDim, kvWidth}, kp, vp, prefix,
               /*past=*/0, batch, seq, heads, kvHeads, headDim, scale, out);
}

void attentionCached(const float *q, const float *k, const float *v,
                     const float *kp, const float *vp, int64_t prefix,
                     const float *pastK, const float *pastV, int64_t past,
                     int64_t batch, int64_t seq, int64_t heads, int64_t kvHeads,
                     int64_t headDim, double scale, float *out, float *presentK,
                     float *presentV) {
  int64_t kvWidth = kvHeads * headDim, total = past + seq;
  // present = past ++ this sequence's keys / values, per (batch, kv head).
#pragma omp parallel for collapse(2)                                           \
    schedule(static) if (worthThreads(batch * kvHeads * total * headDim))
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t g = 0; g < kvHeads; ++g) {
      int64_t head = b * kvHeads + g;
      for (auto [src, seqSrc, dst] :
           {std::tuple{pastK, k, presentK}, std::tuple{pastV, v, presentV}}) {
        float *d = dst + head * total * headDim;
        if (past)
          std::copy(src + head * past * headDim,
                    src + (head + 1) * past * headDim, d);
        for (int64_t t = 0; t < seq; ++t) {
          const float *r = seqSrc + (b * seq + t) * kvWidth + g * headDim;
          std::copy(r, r + headDim, d + (past + t) * headDim);
        }
      }
    }
  // Key rows are the presents [batch, kvHeads, past + seq, d].
  attendCausal(
      q,
      {presentK, presentV, kvHeads * total * headDim, total * headDim, headDim},
      kp, vp, prefix, past, batch, seq, heads, kvHeads, headDim, scale, out);
}

namespace {
W4A4_VECTOR_CLONES void swigluRange(const float *__restrict gate,
                                    const float *__restrict up, int64_t n,
                                    float *__restrict out) {
  for (int64_t i = 0; i < n; ++i) {
    float g = gate[i];
    out[i] = g / (1.0f + detail::expPoly<float>(-g)) * up[i];
  }
}

/// log(sum_v exp(row[v] - max)) with max = max_v row[v] returned in `mx`:
/// exp in float on 16 lanes, the lane sums in float64.
W4A4_VECTOR_CLONES double logSumExpShifted(const float *__restrict row,
                                           int64_t n, float &mx) {
  using namespace detail;
  int64_t body = n / kLanes * kLanes;
  float m = rowMax(row, n);
  F16 mv = splat<F16>(m);
  D16 s = D16{} + 0.0;
  for (int64_t j = 0; j < body; j += kLanes)
    s += __builtin_convertvector(expPoly(load16(row + j) - mv), D16);
  double lanes[kLanes];
  std::memcpy(lanes, &s, sizeof(lanes));
  for (int64_t j = body; j < n; ++j)
    lanes[j - body] += static_cast<double>(expPoly<float>(row[j] - m));
  double sum = 0.0;
  for (int64_t l = 0; l < kLanes; ++l)
    sum += lanes[l];
  mx = m;
  return std::log(sum);
}
} // namespace

void swigluRow(const float *gate, const float *up, int64_t n, float *out) {
  swigluRange(gate, up, n, out);
}

void swiglu(const float *gate, const float *up, int64_t n, float *out) {
  // Chunks of whole cache lines per thread; each chunk one vector loop.
  constexpr int64_t kChunk = 4096;
  int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int64_t c = 0; c < chunks; ++c) {
    int64_t i0 = c * kChunk, i1 = std::min(n, i0 + kChunk);
    swigluRange(gate + i0, up + i0, i1 - i0, out + i0);
  }
}

Status tokenNll(const float *logits, int64_t rows, int64_t vocab,
                const int64_t *targets, double *nll) {
  for (int64_t r = 0; r < rows; ++r)
    if (targets[r] < 0 || targets[r] >= vocab)
      return Status::error("target token id " + std::to_string(targets[r]) +
                           " of row " + std::to_string(r) +
                           " is outside the vocabulary [0, " +
                           std::to_string(vocab) + ")");
#pragma omp parallel for schedule(static) if (rows * vocab > 65536)
  for (int64_t r = 0; r < rows; ++r) {
    const float *row = logits + r * vocab;
    float mx;
    double lse = logSumExpShifted(row, vocab, mx);
    nll[r] = lse - (static_cast<double>(row[targets[r]]) - mx);
  }
  return {};
}

void add(const float *a, const float *b, int64_t n, float *out) {
#pragma omp parallel for schedule(static) if (worthThreads(n))
  for (int64_t i = 0; i < n; ++i)
    out[i] = a[i] + b[i];
}

Status registers(RegisterMode mode, const float *x, const float *regs,
                 int64_t batch, int64_t seq, int64_t k, int64_t hidden,
                 float *out) {
  if (mode != RegisterMode::Prepend && seq < k)
    return Status::error("sequence of " + std::to_string(seq) +
                         " positions is shorter than the " + std::to_string(k) +
                         " registers");
  for (int64_t b = 0; b < batch; ++b) {
    switch (mode) {
    case RegisterMode::Prepend: {
      float *o = out + b * (seq + k) * hidden;
      std::copy(regs, regs + k * hidden, o);
      std::copy(x + b * seq * hidden, x + (b + 1) * seq * hidden,
                o + k * hidden);
      break;
    }
    case RegisterMode::Add: {
      const float *xb = x + b * seq * hidden;
      float *o = out + b * seq * hidden;
      for (int64_t i = 0; i < k * hidden; ++i)
        o[i] = xb[i] + regs[i];
      std::copy(xb + k * hidden, xb + seq * hidden, o + k * hidden);
      break;
    }
    case RegisterMode::Strip:
      std::copy(x + (b * seq + k) * hidden, x + (b + 1) * seq * hidden,
                out + b * (seq - k) * hidden);
      break;
    }
  }
  return {};
}

void quantizeRows(const float *x, int64_t rows, int64_t cols, int bits,
                  double clip, float *out) {
  // One definition of the quantizer: the integer path's codes, dequantized.
  QuantizedRows q;
  quantizeActivations(x, rows, cols, bits, clip, q);
  int bias = 1 << (bits - 1);
#pragma omp parallel for schedule(static) if (worthThreads(rows * cols))
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      out[r * cols + c] =
          static_cast<float>(int(q.codes[r * q.stride + c]) - bias) *
          q.scales[r];
}

} // namespace w4a4::rt
