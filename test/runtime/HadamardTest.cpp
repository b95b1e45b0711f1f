//===- HadamardTest.cpp - Hadamard construction and transform tests -------===//

#include "w4a4/runtime/Hadamard.h"

#include <gtest/gtest.h>

#include <bitset>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

using namespace w4a4::rt;

namespace {

/// Checks H * H^T == n * I in exact integer arithmetic and that every entry
/// is +-1.
void expectHadamard(int64_t n, const std::vector<int8_t> &h) {
  ASSERT_EQ(static_cast<int64_t>(h.size()), n * n) << "order " << n;
  for (int8_t v : h)
    ASSERT_TRUE(v == 1 || v == -1) << "order " << n;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      int64_t dot = 0;
      for (int64_t k = 0; k < n; ++k)
        dot += int64_t{h[i * n + k]} * h[j * n + k];
      ASSERT_EQ(dot, i == j ? n : 0)
          << "order " << n << " rows " << i << ", " << j;
    }
}

TEST(Hadamard, PowersOfTwoAreSylvester) {
  for (int64_t n = 1; n <= 256; n *= 2) {
    std::vector<int8_t> h = buildHadamardMatrix(n);
    expectHadamard(n, h);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) {
        int expected = std::bitset<64>(i & j).count() % 2 ? -1 : 1;
        ASSERT_EQ(h[i * n + j], expected) << n << ": " << i << ", " << j;
      }
  }
}

TEST(Hadamard, PaleyOrdersFromDesignDoc) {
  // The orders DESIGN.md names: Paley I over prime fields (12, 20, 44, 60),
  // Paley II over prime fields (28, 36) and over GF(25) (52), and doubled
  // ones (24, 40).
  for (int64_t n : {12, 20, 24, 28, 36, 40, 44, 52, 60}) {
    SCOPED_TRACE(n);
    ASSERT_TRUE(factorHadamardOrder(n).has_value());
    expectHadamard(n, buildHadamardMatrix(n));
  }
}

TEST(Hadamard, EveryKnownBaseOrderIsHadamard) {
  const std::vector<int64_t> &orders = knownHadamardBaseOrders();
  ASSERT_FALSE(orders.empty());
  for (int64_t m : orders) {
    SCOPED_TRACE(m);
    EXPECT_EQ(m % 4, 0);
    EXPECT_FALSE(isPowerOfTwo(m));
    expectHadamard(m, buildHadamardMatrix(m));
  }
}

TEST(Hadamard, KroneckerSizesOfCommonWidths) {
  // FFN width 768 = 12 * 64 and hidden 192 = 12 * 16: the smallest base wins.
  auto f768 = factorHadamardOrder(768);
  ASSERT_TRUE(f768.has_value());
  EXPECT_EQ(f768->base, 12);
  EXPECT_EQ(f768->log2Factor, 6);
  auto f320 = factorHadamardOrder(320);
  ASSERT_TRUE(f320.has_value());
  EXPECT_EQ(f320->base * (int64_t{1} << f320->log2Factor), 320);
  for (int64_t n : {192, 320, 384})
    expectHadamard(n, buildHadamardMatrix(n));
}

TEST(Hadamard, KroneckerStructure) {
  const int64_t m = 12, w = 8, n = m * w;
  std::vector<int8_t> h = buildHadamardMatrix(n), hm = buildHadamardMatrix(m),
                      hw = buildHadamardMatrix(w);
  for (int64_t a = 0; a < m; ++a)
    for (int64_t b = 0; b < w; ++b)
      for (int64_t c = 0; c < m; ++c)
        for (int64_t d = 0; d < w; ++d)
          ASSERT_EQ(h[(a * w + b) * n + c * w + d],
                    hm[a * m + c] * hw[b * w + d]);
}

TEST(Hadamard, UnsupportedOrdersAreRefused) {
  // No Hadamard matrix exists for orders 3, 6, 10 (n > 2 needs n = 0 mod 4);
  // 92 = 4 * 23 has none of the constructions here.
  for (int64_t n : {0, -4, 3, 6, 10, 14, 92}) {
    EXPECT_FALSE(factorHadamardOrder(n).has_value()) << n;
    EXPECT_TRUE(buildHadamardMatrix(n).empty()) << n;
  }
}

TEST(Hadamard, FastWalshMatchesFloat64Reference) {
  std::mt19937_64 rng(20261122);
  std::normal_distribution<double> normal;
  for (int64_t n : {1, 2, 8, 64, 512, 2048}) {
    SCOPED_TRACE(n);
    std::vector<int8_t> h = buildHadamardMatrix(n);
    std::vector<float> x(n);
    for (float &v : x)
      v = static_cast<float>(normal(rng));
    std::vector<double> ref(n, 0.0);
    for (int64_t j = 0; j < n; ++j)
      for (int64_t i = 0; i < n; ++i)
        ref[j] += static_cast<double>(x[i]) * h[i * n + j];
    fastWalshHadamard(x.data(), n);
    double err = 0.0, norm = 0.0;
    for (int64_t j = 0; j < n; ++j) {
      err += (x[j] - ref[j]) * (x[j] - ref[j]);
      norm += ref[j] * ref[j];
    }
    EXPECT_LE(std::sqrt(err / norm), 1e-6);
  }
}

} // namespace

namespace {

/// x Q with Q = diag(s) blockdiag(H) / sqrt(size), in float64, densely.
std::vector<double> denseRotate(const std::vector<float> &x, int64_t rows,
                                int64_t width, int64_t size,
                                const std::vector<float> &signs, bool inverse) {
  std::vector<int8_t> h = buildHadamardMatrix(size);
  std::vector<double> y(rows * width, 0.0);
  double norm = 1.0 / std::sqrt(double(size));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t b = 0; b < width / size; ++b)
      for (int64_t j = 0; j < size; ++j) {
        double acc = 0;
        for (int64_t i = 0; i < size; ++i) {
          double xi = x[r * width + b * size + i];
          if (!inverse)
            acc += xi * signs[b * size + i] * h[i * size + j];
          else
            acc += xi * h[j * size + i]; // H^T
        }
        y[r * width + b * size + j] =
            inverse ? acc * norm * signs[b * size + j] : acc * norm;
      }
  return y;
}

TEST(Hadamard, RotateRowsMatchesDenseFloat64) {
  std::mt19937_64 rng(std::random_device{}());
  std::normal_distribution<float> normal;
  struct Case {
    int64_t width, size;
  };
  for (Case c : {Case{64, 64}, Case{192, 64}, Case{192, 192}, Case{768, 768},
                 Case{40, 20}}) {
    SCOPED_TRACE(c.width);
    int64_t rows = 3;
    std::vector<float> x(rows * c.width);
    for (float &v : x)
      v = normal(rng);
    std::vector<float> signs = seededSigns(11, c.width);
    for (bool inverse : {false, true}) {
      std::vector<float> y(x.size(), std::numeric_limits<float>::quiet_NaN());
      ASSERT_TRUE(hadamardRows(x.data(), rows, c.width, c.size, signs.data(),
                               inverse, y.data()));
      std::vector<double> ref =
          denseRotate(x, rows, c.width, c.size, signs, inverse);
      double err = 0, norm = 0;
      for (size_t i = 0; i < y.size(); ++i) {
        err += (y[i] - ref[i]) * (y[i] - ref[i]);
        norm += ref[i] * ref[i];
      }
      EXPECT_LE(std::sqrt(err / norm), 1e-6);
    }
    // Q then Q^T is the identity.
    std::vector<float> y(x.size()), z(x.size());
    hadamardRows(x.data(), rows, c.width, c.size, signs.data(), false,
                 y.data());
    hadamardRows(y.data(), rows, c.width, c.size, signs.data(), true, z.data());
    for (size_t i = 0; i < x.size(); ++i)
      EXPECT_NEAR(z[i], x[i], 1e-5);
  }
  std::vector<float> x(92);
  EXPECT_FALSE(hadamardRows(x.data(), 1, 92, 92, nullptr, false, x.data()));
}

TEST(Hadamard, SeededSignsAreSplitMix64TopBits) {
  // SplitMix64 from state 0: first outputs 0xE220A8397B1DCDAF (top bit set),
  // 0x6E789E6AA1B965F4 (clear), 0x06C45D188009454F (clear).
  std::vector<float> s = seededSigns(0, 3);
  EXPECT_EQ(s[0], -1.0f);
  EXPECT_EQ(s[1], 1.0f);
  EXPECT_EQ(s[2], 1.0f);
}

} // namespace

namespace {

TEST(Hadamard, StridedIsCrossHeadKronecker) {
  // Stride k, size h: x (H_h (x) I_k) / sqrt(h) on each run of h * k.
  std::mt19937_64 rng(std::random_device{}());
  std::normal_distribution<float> normal;
  int64_t heads = 4, k = 16, width = 2 * heads * k;
  std::vector<float> x(width);
  for (float &v : x)
    v = normal(rng);
  std::vector<float> y(width, std::numeric_limits<float>::quiet_NaN());
  ASSERT_TRUE(
      hadamardRows(x.data(), 1, width, heads, nullptr, false, y.data(), k));
  std::vector<int8_t> h = buildHadamardMatrix(heads);
  for (int64_t run = 0; run < 2; ++run)
    for (int64_t c = 0; c < heads; ++c)
      for (int64_t d = 0; d < k; ++d) {
        double acc = 0;
        for (int64_t a = 0; a < heads; ++a)
          acc += double(x[run * heads * k + a * k + d]) * h[a * heads + c];
        EXPECT_NEAR(y[run * heads * k + c * k + d],
                    acc / std::sqrt(double(heads)), 1e-5);
      }
  EXPECT_FALSE(
      hadamardRows(x.data(), 1, width, heads, nullptr, false, y.data(), 3));
}

// The fused producers apply the transform in place, row by row: the same
// values as hadamardRows() out of place, for each order, stride, sign
// vector and direction; impossible shapes are refused.
TEST(Hadamard, RowTransformInPlaceEqualsRows) {
  std::mt19937_64 rng(7);
  std::normal_distribution<float> normal;
  struct Case {
    int64_t width, size, stride;
  };
  for (Case c : {Case{64, 64, 1}, Case{192, 192, 1}, Case{96, 12, 1},
                 Case{128, 4, 32}, Case{40, 20, 2}}) {
    std::vector<float> x(3 * c.width), signs(c.width);
    for (float &v : x)
      v = normal(rng);
    for (float &v : signs)
      v = normal(rng) < 0 ? -1.0f : 1.0f;
    auto h = HadamardRowTransform::create(c.width, c.size, c.stride);
    ASSERT_TRUE(h.has_value()) << c.width << " " << c.size;
    for (bool inverse : {false, true}) {
      std::vector<float> ref(x.size());
      ASSERT_TRUE(hadamardRows(x.data(), 3, c.width, c.size, signs.data(),
                               inverse, ref.data(), c.stride));
      std::vector<float> y = x, t, u;
      for (int64_t r = 0; r < 3; ++r)
        h->apply(y.data() + r * c.width, signs.data(), inverse,
                 y.data() + r * c.width, t, u);
      EXPECT_EQ(0, std::memcmp(y.data(), ref.data(), sizeof(float) * y.size()))
          << c.width << " " << c.size << " " << c.stride << " " << inverse;
    }
  }
  EXPECT_FALSE(HadamardRowTransform::create(12, 8, 1).has_value());
  EXPECT_FALSE(HadamardRowTransform::create(64, 64, 2).has_value());
  EXPECT_FALSE(HadamardRowTransform::create(64, 0, 1).has_value());
}

} // namespace
