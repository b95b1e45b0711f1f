//===- WeightQuantTest.cpp - RTN, GPTQ and clip-search tests --------------===//
//
// RTN against DESIGN.md's definition written as a scalar loop; GPTQ against
// properties that pin it down: with a diagonal Hessian there is no error to
// feed back, so GPTQ (in any column order) equals RTN; on correlated inputs
// its output error e^T H e is below RTN's; clip search never loses to the
// plain clip it starts from. The end-to-end oracle (GPTQ perplexity against
// the PyTorch reference) is models/reference/check_runtime.py.
//
//===----------------------------------------------------------------------===//

#include "w4a4/runtime/WeightQuant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

using namespace w4a4::rt;

namespace {

std::mt19937_64 &rng() {
  static std::mt19937_64 gen(std::random_device{}());
  return gen;
}

std::vector<double> randomWeights(int64_t out, int64_t in) {
  std::normal_distribution<double> d(0.0, 0.05);
  std::vector<double> w(out * in);
  for (double &v : w)
    v = d(rng());
  return w;
}

/// H = X^T X for X [rows, in] with correlated, outlier-heavy columns.
std::vector<double> correlatedHessian(int64_t in, int64_t rows) {
  std::normal_distribution<double> d(0.0, 1.0);
  std::vector<double> mix(in * in), x(rows * in, 0.0), h(in * in, 0.0);
  for (double &v : mix)
    v = d(rng()) / std::sqrt(static_cast<double>(in));
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<double> z(in);
    for (double &v : z)
      v = d(rng());
    for (int64_t i = 0; i < in; ++i) {
      double s = 0;
      for (int64_t k = 0; k < in; ++k)
        s += z[k] * mix[k * in + i];
      x[r * in + i] = s * (i % 7 == 0 ? 8.0 : 1.0);
    }
  }
  for (int64_t i = 0; i < in; ++i)
    for (int64_t j = 0; j < in; ++j) {
      double s = 0;
      for (int64_t r = 0; r < rows; ++r)
        s += x[r * in + i] * x[r * in + j];
      h[i * in + j] = s;
    }
  return h;
}

std::vector<double> diagonalHessian(int64_t in) {
  std::uniform_real_distribution<double> d(0.5, 4.0);
  std::vector<double> h(in * in, 0.0);
  for (int64_t i = 0; i < in; ++i)
    h[i * in + i] = d(rng());
  return h;
}

TEST(WeightQuant, RtnMatchesDefinition) {
  for (int bits : {2, 3, 4, 8})
    for (int64_t group : {0, 16}) {
      int64_t out = 9, in = 48;
      std::vector<double> w = randomWeights(out, in);
      w[5] = 0.0;
      for (int64_t i = 0; i < 16; ++i) // an all-zero group: s = 0, q = 0
        w[2 * in + i] = 0.0;
      WeightQuantOptions o;
      o.bits = bits;
      o.group = group;
      o.clip = 0.9;
      QuantizedWeights q = quantizeRtn(w, out, in, o, nullptr);
      int64_t glen = group ? group : in, groups = in / glen;
      ASSERT_EQ(q.scales.size(), static_cast<size_t>(out * groups));
      float qmax = static_cast<float>((1 << (bits - 1)) - 1);
      for (int64_t r = 0; r < out; ++r)
        for (int64_t g = 0; g < groups; ++g) {
          float mx = 0;
          for (int64_t i = g * glen; i < (g + 1) * glen; ++i)
            mx = std::max(mx, std::fabs(static_cast<float>(w[r * in + i])));
          float s = 0.9f * mx / qmax;
          ASSERT_EQ(q.scales[r * groups + g], s);
          for (int64_t i = g * glen; i < (g + 1) * glen; ++i) {
            float v = static_cast<float>(w[r * in + i]);
            int expect =
                s == 0 ? 0
                       : static_cast<int>(std::min(
                             std::max(std::nearbyint(v / s), -qmax - 1), qmax));
            ASSERT_EQ(q.codes[r * in + i], expect)
                << "bits " << bits << " group " << group << " at " << r << ","
                << i;
          }
        }
    }
}

TEST(WeightQuant, GptqWithDiagonalHessianIsRtn) {
  for (int64_t group : {0, 32})
    for (bool actOrder : {false, true}) {
      if (group && actOrder)
        continue;
      int64_t out = 24, in = 160; // 160: a last block shorter than 128
      std::vector<double> w = randomWeights(out, in);
      std::vector<double> h = diagonalHessian(in);
      WeightQuantOptions o;
      o.group = group;
      o.actOrder = actOrder;
      QuantizedWeights g, r = quantizeRtn(w, out, in, o, nullptr);
      std::string error;
      ASSERT_TRUE(quantizeGptq(w, out, in, h, o, g, error)) << error;
      EXPECT_EQ(g.codes, r.codes)
          << "group " << group << " act-order " << actOrder;
      for (size_t i = 0; i < r.scales.size(); ++i)
        EXPECT_NEAR(g.scales[i], r.scales[i], 1e-6 * r.scales[i]);
    }
}

TEST(WeightQuant, GptqBeatsRtnOnCorrelatedInputs) {
  int64_t out = 32, in = 96;
  std::vector<double> w = randomWeights(out, in);
  std::vector<double> h = correlatedHessian(in, 400);
  for (int64_t group : {0, 32})
    for (bool actOrder : {false, true}) {
      if (group && actOrder)
        continue;
      WeightQuantOptions o;
      o.group = group;
      o.actOrder = actOrder;
      QuantizedWeights g, r = quantizeRtn(w, out, in, o, nullptr);
      std::string error;
      ASSERT_TRUE(quantizeGptq(w, out, in, h, o, g, error)) << error;
      double eg = outputError(w, out, in, g, group, h),
             er = outputError(w, out, in, r, group, h);
      EXPECT_LT(eg, 0.8 * er) << "group " << group << " act-order " << actOrder;
    }
}

TEST(WeightQuant, ClipSearchNeverLosesToThePlainClip) {
  int64_t out = 40, in = 64;
  std::vector<double> w = randomWeights(out, in);
  for (int64_t i = 0; i < out; ++i)
    w[i * in + (i % in)] *= 12.0; // one outlier per row: clipping pays
  std::vector<double> h = correlatedHessian(in, 300);
  WeightQuantOptions plain, search;
  search.clipSearch = true;
  QuantizedWeights a = quantizeRtn(w, out, in, plain, h.data()),
                   b = quantizeRtn(w, out, in, search, h.data());
  double ea = outputError(w, out, in, a, 0, h),
         eb = outputError(w, out, in, b, 0, h);
  EXPECT_LT(eb, ea);
  // Row by row as well: the search keeps clip = 1 when nothing is better.
  for (int64_t r = 0; r < out; ++r) {
    QuantizedWeights ra, rb;
    std::vector<double> row(w.begin() + r * in, w.begin() + (r + 1) * in);
    ra.codes.assign(a.codes.begin() + r * in, a.codes.begin() + (r + 1) * in);
    ra.scales = {a.scales[r]};
    rb.codes.assign(b.codes.begin() + r * in, b.codes.begin() + (r + 1) * in);
    rb.scales = {b.scales[r]};
    EXPECT_LE(outputError(row, 1, in, rb, 0, h),
              outputError(row, 1, in, ra, 0, h) * (1 + 1e-12));
  }
}

TEST(WeightQuant, GptqRejectsBadInput) {
  int64_t out = 4, in = 8;
  std::vector<double> w = randomWeights(out, in), h = diagonalHessian(in);
  QuantizedWeights q;
  std::string error;
  WeightQuantOptions o;
  o.actOrder = true;
  o.group = 4;
  EXPECT_FALSE(quantizeGptq(w, out, in, h, o, q, error));
  EXPECT_NE(error.find("act-order"), std::string::npos);
  o = WeightQuantOptions();
  h[3 * in + 3] = -50.0; // not positive definite even after damping
  EXPECT_FALSE(quantizeGptq(w, out, in, h, o, q, error));
  EXPECT_NE(error.find("positive definite"), std::string::npos);
  EXPECT_FALSE(quantizeGptq(w, out, in, std::vector<double>(3), o, q, error));
}

} // namespace
