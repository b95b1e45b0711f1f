//===- HadamardTest.cpp - Hadamard construction and transform tests -------===//

#include "w4a4/runtime/Hadamard.h"

#include <gtest/gtest.h>

#include <bitset>
#include <cmath>
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
