//===- Kernels.cpp - CPU kernels of the w4a4 ops --------------------------===//

#include "w4a4/runtime/Kernels.h"
#include "w4a4/runtime/IntGemm.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

extern "C" void openblas_set_num_threads(int);

namespace w4a4::rt {

void setThreads(int threads) {
#ifdef _OPENMP
  if (threads > 0)
    omp_set_num_threads(threads);
#endif
  (void)threads;
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

void rmsNorm(const float *x, const float *gain, int64_t rows, int64_t cols,
             double eps, float *out) {
  float epsf = static_cast<float>(eps);
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float *xr = x + r * cols;
    float *o = out + r * cols;
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
}

void linear(const float *x, const float *w, const float *bias, int64_t rows,
            int64_t in, int64_t out, float *y) {
  float beta = 0.0f;
  if (bias) {
    for (int64_t r = 0; r < rows; ++r)
      std::copy(bias, bias + out, y + r * out);
    beta = 1.0f;
  }
  // Split the rows over the threads; each block is one single-threaded GEMM.
#pragma omp parallel
  {
    int64_t nt = 1, t = 0;
#ifdef _OPENMP
    nt = omp_get_num_threads();
    t = omp_get_thread_num();
#endif
    int64_t chunk = (rows + nt - 1) / nt, r0 = std::min(rows, t * chunk),
            r1 = std::min(rows, r0 + chunk);
    if (r1 > r0)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r1 - r0, out, in,
                  1.0f, x + r0 * in, in, w, in, beta, y + r0 * out, out);
  }
}

void rope(const float *x, int64_t batch, int64_t seq, int64_t heads,
          int64_t headDim, double theta, int64_t offset, bool interleaved,
          float *out) {
  int64_t half = headDim / 2, width = heads * headDim;
  std::vector<float> cosT(seq * half), sinT(seq * half);
  for (int64_t s = 0; s < seq; ++s)
    for (int64_t i = 0; i < half; ++i) {
      double inv = 1.0 / std::pow(theta, static_cast<double>(2 * i) / headDim);
      double ang = static_cast<double>(s + offset) * inv;
      cosT[s * half + i] = static_cast<float>(std::cos(ang));
      sinT[s * half + i] = static_cast<float>(std::sin(ang));
    }
#pragma omp parallel for schedule(static)
  for (int64_t bs = 0; bs < batch * seq; ++bs) {
    int64_t s = bs % seq;
    for (int64_t h = 0; h < heads; ++h) {
      const float *xv = x + bs * width + h * headDim;
      float *o = out + bs * width + h * headDim;
      for (int64_t i = 0; i < half; ++i) {
        int64_t a = interleaved ? 2 * i : i,
                b = interleaved ? 2 * i + 1 : i + half;
        float c = cosT[s * half + i], sn = sinT[s * half + i];
        float xa = xv[a], xb = xv[b];
        o[a] = xa * c - xb * sn;
        o[b] = xb * c + xa * sn;
      }
    }
  }
}

void attention(const float *q, const float *k, const float *v, const float *kp,
               const float *vp, int64_t prefix, int64_t batch, int64_t seq,
               int64_t heads, int64_t kvHeads, int64_t headDim, double scale,
               float *out) {
  int64_t group = heads / kvHeads, qWidth = heads * headDim,
          kvWidth = kvHeads * headDim, n = prefix + seq;
  float sc = static_cast<float>(scale);
  // Per (batch, head): S = Q K^T (sgemm over the strided head slices), the
  // causal softmax row by row, then O = P V (sgemm).
#pragma omp parallel
  {
    std::vector<float> kh(n * headDim), vh(n * headDim), s(seq * n);
#pragma omp for collapse(2) schedule(dynamic)
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t h = 0; h < heads; ++h) {
        int64_t g = h / group;
        for (int64_t j = 0; j < n; ++j) {
          const float *ks =
              j < prefix ? kp + j * kvWidth + g * headDim
                         : k + (b * seq + j - prefix) * kvWidth + g * headDim;
          const float *vs =
              j < prefix ? vp + j * kvWidth + g * headDim
                         : v + (b * seq + j - prefix) * kvWidth + g * headDim;
          std::copy(ks, ks + headDim, kh.data() + j * headDim);
          std::copy(vs, vs + headDim, vh.data() + j * headDim);
        }
        const float *qh = q + b * seq * qWidth + h * headDim;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, seq, n, headDim,
                    sc, qh, qWidth, kh.data(), headDim, 0.0f, s.data(), n);
        for (int64_t t = 0; t < seq; ++t) {
          float *row = s.data() + t * n;
          int64_t visible = prefix + t + 1;
          float mx = -std::numeric_limits<float>::infinity();
          for (int64_t j = 0; j < visible; ++j)
            mx = std::max(mx, row[j]);
          float sum = 0;
          for (int64_t j = 0; j < visible; ++j) {
            row[j] = std::exp(row[j] - mx);
            sum += row[j];
          }
          float inv = 1.0f / sum;
          for (int64_t j = 0; j < visible; ++j)
            row[j] *= inv;
          std::fill(row + visible, row + n, 0.0f);
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, seq, headDim, n,
                    1.0f, s.data(), n, vh.data(), headDim, 0.0f,
                    out + b * seq * qWidth + h * headDim, qWidth);
      }
  }
}

void swiglu(const float *gate, const float *up, int64_t n, float *out) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void add(const float *a, const float *b, int64_t n, float *out) {
#pragma omp parallel for schedule(static)
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
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      out[r * cols + c] =
          static_cast<float>(int(q.codes[r * q.stride + c]) - bias) *
          q.scales[r];
}

} // namespace w4a4::rt
