//===- WeightQuant.cpp - RTN and GPTQ weight quantization -----------------===//

#include "w4a4/runtime/WeightQuant.h"

#include <algorithm>
#include <cblas.h>
#include <cmath>
#include <numeric>

namespace w4a4::rt {
namespace {

constexpr int kClipSteps = 20;
constexpr double kClipStep = 0.025;

/// RTN code of one value in fp32 arithmetic (DESIGN.md).
inline int rtnCode(float v, float s, float qmax) {
  if (s == 0)
    return 0;
  float q = std::nearbyint(v / s);
  return static_cast<int>(std::min(std::max(q, -qmax - 1), qmax));
}

inline float rtnScale(double clip, float maxAbs, float qmax) {
  return static_cast<float>(clip) * maxAbs / qmax;
}

/// Per row of W[:, c0:c0+len] (leading dimension ldw), the clip ratio to use:
/// options.clip, or with clipSearch the ratio of the grid whose RTN error e
/// has the smallest e^T H_gg e (H_gg = H[c0:, c0:], leading dimension ldh).
std::vector<double> chooseClips(const double *w, int64_t ldw, int64_t out,
                                int64_t c0, int64_t len, const double *h,
                                int64_t ldh, const WeightQuantOptions &o) {
  std::vector<double> clips(out, o.clip);
  if (!o.clipSearch)
    return clips;
  float qmax = static_cast<float>((1 << (o.bits - 1)) - 1);
  std::vector<float> maxAbs(out, 0.0f);
  for (int64_t r = 0; r < out; ++r)
    for (int64_t i = 0; i < len; ++i)
      maxAbs[r] = std::max(maxAbs[r],
                           std::fabs(static_cast<float>(w[r * ldw + c0 + i])));
  std::vector<double> best(out, 0.0), err(out * len), eh(out * len);
  for (int k = 0; k < kClipSteps; ++k) {
    double c = o.clip * (1.0 - kClipStep * k);
    for (int64_t r = 0; r < out; ++r) {
      float s = rtnScale(c, maxAbs[r], qmax);
      for (int64_t i = 0; i < len; ++i) {
        float v = static_cast<float>(w[r * ldw + c0 + i]);
        err[r * len + i] = static_cast<double>(w[r * ldw + c0 + i]) -
                           static_cast<double>(rtnCode(v, s, qmax)) * s;
      }
    }
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, out, len, len, 1.0,
                err.data(), len, h + c0 * ldh + c0, ldh, 0.0, eh.data(), len);
    for (int64_t r = 0; r < out; ++r) {
      double obj = 0;
      for (int64_t i = 0; i < len; ++i)
        obj += eh[r * len + i] * err[r * len + i];
      if (k == 0 || obj < best[r]) {
        best[r] = obj;
        clips[r] = c;
      }
    }
  }
  return clips;
}

/// In-place lower Cholesky factor of the symmetric n x n matrix a (upper
/// part zeroed); false when a is not positive definite.
bool cholesky(std::vector<double> &a, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    double *rj = &a[j * n];
    double s = rj[j];
    for (int64_t k = 0; k < j; ++k)
      s -= rj[k] * rj[k];
    if (!(s > 0))
      return false;
    rj[j] = std::sqrt(s);
    for (int64_t i = j + 1; i < n; ++i) {
      double *ri = &a[i * n];
      double t = ri[j];
      for (int64_t k = 0; k < j; ++k)
        t -= ri[k] * rj[k];
      ri[j] = t / rj[j];
    }
    for (int64_t k = j + 1; k < n; ++k)
      rj[k] = 0;
  }
  return true;
}

/// U upper with U^T U = H^-1 (GPTQ's "Hinv"), from H positive definite.
bool inverseCholeskyUpper(const std::vector<double> &h, int64_t n,
                          std::vector<double> &u) {
  std::vector<double> l = h;
  if (!cholesky(l, n))
    return false;
  // Y = (L^-1)^T, upper: row j of Y is column j of L^-1.
  std::vector<double> y(n * n, 0.0);
  for (int64_t j = 0; j < n; ++j) {
    double *yj = &y[j * n];
    yj[j] = 1.0 / l[j * n + j];
    for (int64_t i = j + 1; i < n; ++i) {
      const double *li = &l[i * n];
      double t = 0;
      for (int64_t k = j; k < i; ++k)
        t += li[k] * yj[k];
      yj[i] = -t / li[i];
    }
  }
  // H^-1 = L^-T L^-1 = Y Y^T.
  std::vector<double> inv(n * n, 0.0);
  cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, n, n, 1.0, y.data(), n,
              0.0, inv.data(), n);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < i; ++j)
      inv[i * n + j] = inv[j * n + i];
  if (!cholesky(inv, n))
    return false;
  u.assign(n * n, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i; j < n; ++j)
      u[i * n + j] = inv[j * n + i];
  return true;
}

} // namespace

QuantizedWeights quantizeRtn(const std::vector<double> &w, int64_t out,
                             int64_t in, const WeightQuantOptions &o,
                             const double *hessian) {
  int64_t glen = o.group ? o.group : in, groups = in / glen;
  float qmax = static_cast<float>((1 << (o.bits - 1)) - 1);
  QuantizedWeights q;
  q.codes.assign(out * in, 0);
  q.scales.assign(out * groups, 0.0f);
  for (int64_t g = 0; g < groups; ++g) {
    std::vector<double> clips =
        chooseClips(w.data(), in, out, g * glen, glen, hessian, in, o);
    for (int64_t r = 0; r < out; ++r) {
      float mx = 0;
      for (int64_t i = g * glen; i < (g + 1) * glen; ++i)
        mx = std::max(mx, std::fabs(static_cast<float>(w[r * in + i])));
      float s = rtnScale(clips[r], mx, qmax);
      q.scales[r * groups + g] = s;
      for (int64_t i = g * glen; i < (g + 1) * glen; ++i)
        q.codes[r * in + i] =
            rtnCode(static_cast<float>(w[r * in + i]), s, qmax);
    }
  }
  return q;
}

bool quantizeGptq(const std::vector<double> &w0, int64_t out, int64_t n,
                  const std::vector<double> &hessian,
                  const WeightQuantOptions &o, QuantizedWeights &result,
                  std::string &error) {
  if (o.actOrder && o.group) {
    error = "GPTQ act-order with groups is not supported";
    return false;
  }
  if (static_cast<int64_t>(hessian.size()) != n * n ||
      static_cast<int64_t>(w0.size()) != out * n) {
    error = "Hessian or weight size does not match the weight's input width";
    return false;
  }
  std::vector<double> w = w0, h = hessian;
  double qmax = (1 << (o.bits - 1)) - 1;
  for (int64_t j = 0; j < n; ++j)
    if (h[j * n + j] == 0) { // a dead input channel
      h[j * n + j] = 1;
      for (int64_t r = 0; r < out; ++r)
        w[r * n + j] = 0;
    }
  std::vector<int64_t> perm(n);
  std::iota(perm.begin(), perm.end(), 0);
  if (o.actOrder) {
    std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) {
      return h[a * n + a] > h[b * n + b];
    });
    std::vector<double> pw(out * n), ph(n * n);
    for (int64_t r = 0; r < out; ++r)
      for (int64_t j = 0; j < n; ++j)
        pw[r * n + j] = w[r * n + perm[j]];
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j)
        ph[i * n + j] = h[perm[i] * n + perm[j]];
    w.swap(pw);
    h.swap(ph);
  }
  double mean = 0;
  for (int64_t j = 0; j < n; ++j)
    mean += h[j * n + j];
  mean /= n;
  for (int64_t j = 0; j < n; ++j)
    h[j * n + j] += o.damp * mean;
  std::vector<double> u;
  if (!inverseCholeskyUpper(h, n, u)) {
    error = "the damped Hessian is not positive definite (raise damp)";
    return false;
  }
  int64_t groups = o.group ? n / o.group : 1;
  int64_t block = o.group ? o.group : 128;
  std::vector<double> scale(out, 0.0);
  std::vector<int> codes(out * n, 0);
  result.scales.assign(out * groups, 0.0f);
  auto setScales = [&](int64_t c0, int64_t len, int64_t g) {
    std::vector<double> clips =
        chooseClips(w.data(), n, out, c0, len, h.data(), n, o);
    for (int64_t r = 0; r < out; ++r) {
      double mx = 0;
      for (int64_t i = c0; i < c0 + len; ++i)
        mx = std::max(mx, std::fabs(w[r * n + i]));
      scale[r] = clips[r] * mx / qmax;
      result.scales[r * groups + g] = static_cast<float>(scale[r]);
    }
  };
  if (!o.group)
    setScales(0, n, 0);
  std::vector<double> err;
  for (int64_t i1 = 0; i1 < n; i1 += block) {
    int64_t i2 = std::min(i1 + block, n), bl = i2 - i1;
    if (o.group)
      setScales(i1, bl, i1 / o.group);
    err.assign(out * bl, 0.0);
    for (int64_t i = i1; i < i2; ++i) {
      const double *ui = &u[i * n];
      for (int64_t r = 0; r < out; ++r) {
        double *wr = &w[r * n];
        double col = wr[i], q = 0;
        int code = 0;
        if (scale[r] != 0) {
          code = static_cast<int>(std::min(
              std::max(std::nearbyint(col / scale[r]), -qmax - 1), qmax));
          q = code * scale[r];
        }
        codes[r * n + i] = code;
        double e = (col - q) / ui[i];
        for (int64_t j = i; j < i2; ++j)
          wr[j] -= e * ui[j];
        err[r * bl + (i - i1)] = e;
      }
    }
    if (i2 < n)
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, out, n - i2, bl,
                  -1.0, err.data(), bl, &u[i1 * n + i2], n, 1.0, &w[i2], n);
  }
  result.codes.assign(out * n, 0);
  for (int64_t r = 0; r < out; ++r)
    for (int64_t j = 0; j < n; ++j)
      result.codes[r * n + perm[j]] = codes[r * n + j];
  return true;
}

double outputError(const std::vector<double> &w, int64_t out, int64_t in,
                   const QuantizedWeights &q, int64_t group,
                   const std::vector<double> &hessian) {
  int64_t glen = group ? group : in, groups = in / glen;
  std::vector<double> e(in), eh(in);
  double total = 0;
  for (int64_t r = 0; r < out; ++r) {
    for (int64_t i = 0; i < in; ++i)
      e[i] = w[r * in + i] -
             static_cast<double>(q.codes[r * in + i]) *
                 static_cast<double>(q.scales[r * groups + i / glen]);
    cblas_dsymv(CblasRowMajor, CblasUpper, in, 1.0, hessian.data(), in,
                e.data(), 1, 0.0, eh.data(), 1);
    for (int64_t i = 0; i < in; ++i)
      total += e[i] * eh[i];
  }
  return total;
}

} // namespace w4a4::rt
