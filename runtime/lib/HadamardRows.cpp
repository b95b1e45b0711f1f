//===- HadamardRows.cpp - applying Hadamard transforms to rows ------------===//
//
// The run-time half of Hadamard.h (OpenMP over rows); the constructions in
// Hadamard.cpp belong to w4a4_runtime_core, which the dialect's verifier
// links without OpenMP or BLAS.
//
//===----------------------------------------------------------------------===//

#include "w4a4/runtime/Hadamard.h"
#include <algorithm>
#include <cassert>
#include <cmath>
#include <map>

namespace w4a4::rt {

std::optional<HadamardRowTransform>
HadamardRowTransform::create(int64_t width, int64_t size, int64_t stride) {
  std::optional<HadamardFactors> f = factorHadamardOrder(size);
  if (!f || size <= 0 || stride <= 0 || width % (size * stride) != 0)
    return std::nullopt;
  HadamardRowTransform h;
  h.width = width;
  h.size = size;
  h.stride = stride;
  h.m = f->base;
  h.w = int64_t{1} << f->log2Factor;
  h.base = h.m > 1 ? buildHadamardMatrix(h.m) : std::vector<int8_t>{1};
  h.norm = static_cast<float>(1.0 / std::sqrt(static_cast<double>(size)));
  return h;
}

void HadamardRowTransform::apply(const float *xr, const float *signs,
                                 bool inverse, float *yr, std::vector<float> &t,
                                 std::vector<float> &u) const {
  t.resize(size);
  u.resize(size);
  for (int64_t blk = 0; blk < width / size; ++blk) {
    // Vector blk: run blk / stride, offset blk % stride within it.
    int64_t base0 = (blk / stride) * size * stride + blk % stride;
    auto at = [&](int64_t i) { return base0 + i * stride; };
    for (int64_t i = 0; i < size; ++i)
      t[i] = (!inverse && signs) ? xr[at(i)] * signs[at(i)] : xr[at(i)];
    // x (H_m (x) H_w): the Sylvester part on each run of w, then H_m
    // (or H_m^T for the inverse) across the runs.
    for (int64_t a = 0; a < m; ++a)
      fastWalshHadamard(t.data() + a * w, w);
    if (m > 1) {
      for (int64_t c = 0; c < m; ++c)
        for (int64_t d = 0; d < w; ++d) {
          float acc = 0;
          for (int64_t a = 0; a < m; ++a)
            acc += (inverse ? base[c * m + a] : base[a * m + c]) * t[a * w + d];
          u[c * w + d] = acc;
        }
      t.swap(u);
    }
    for (int64_t i = 0; i < size; ++i)
      yr[at(i)] = (inverse && signs) ? t[i] * norm * signs[at(i)] : t[i] * norm;
  }
}

bool hadamardRows(const float *x, int64_t rows, int64_t width, int64_t size,
                  const float *signs, bool inverse, float *y, int64_t stride) {
  std::optional<HadamardRowTransform> h =
      HadamardRowTransform::create(width, size, stride);
  if (!h)
    return false;
#pragma omp parallel if (rows * width > 16384)
  {
    std::vector<float> t, u;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r)
      h->apply(x + r * width, signs, inverse, y + r * width, t, u);
  }
  return true;
}

void fastWalshHadamard(float *x, int64_t n) {
  assert(isPowerOfTwo(n) && "fastWalshHadamard needs a power-of-two size");
  for (int64_t len = 1; len < n; len <<= 1)
    for (int64_t i = 0; i < n; i += 2 * len)
      for (int64_t j = i; j < i + len; ++j) {
        float a = x[j], b = x[j + len];
        x[j] = a + b;
        x[j + len] = a - b;
      }
}

} // namespace w4a4::rt
