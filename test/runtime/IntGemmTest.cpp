//===- IntGemmTest.cpp - W4A4 integer GEMM tests --------------------------===//
//
// The portable and AVX-512-VNNI paths against a naive integer reference, bit
// for bit, for shapes that are and are not multiples of the tiles; and the
// result against a float64 fake-quant reference.
//
//===----------------------------------------------------------------------===//

#include "w4a4/runtime/IntGemm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

using namespace w4a4::rt;

namespace {

std::mt19937_64 &rng() {
  static std::mt19937_64 gen(std::random_device{}());
  return gen;
}

/// Random codes in the IR's packed layout.
std::vector<int8_t> randomIrCodes(int64_t out, int64_t in, int bits,
                                  std::vector<int> &codes) {
  std::uniform_int_distribution<int> d(-(1 << (bits - 1)),
                                       (1 << (bits - 1)) - 1);
  int64_t perByte = (bits == 2 || bits == 4) ? 8 / bits : 1;
  int64_t rowBytes = (in + perByte - 1) / perByte;
  std::vector<int8_t> ir(out * rowBytes, 0);
  codes.assign(out * in, 0);
  for (int64_t o = 0; o < out; ++o)
    for (int64_t i = 0; i < in; ++i) {
      int c = d(rng());
      codes[o * in + i] = c;
      if (perByte == 1) {
        ir[o * rowBytes + i] = static_cast<int8_t>(c);
      } else {
        int shift = static_cast<int>((i % perByte) * bits);
        uint8_t raw = static_cast<uint8_t>(c & ((1 << bits) - 1));
        ir[o * rowBytes + i / perByte] = static_cast<int8_t>(
            static_cast<uint8_t>(ir[o * rowBytes + i / perByte]) |
            (raw << shift));
      }
    }
  return ir;
}

std::vector<float> randn(int64_t n) {
  std::normal_distribution<float> d;
  std::vector<float> v(n);
  for (float &x : v)
    x = d(rng());
  return v;
}

/// The spec, literally: int64 sums of signed codes per group, then
/// sum_g float(sum) * s_w, times s_x, plus bias.
std::vector<float> naive(const QuantizedRows &x, const std::vector<int> &codes,
                         const std::vector<float> &scales, int64_t out,
                         int64_t in, int64_t group, const float *bias) {
  int64_t groups = group ? in / group : 1, glen = group ? group : in;
  int xb = 1 << (x.bits - 1);
  std::vector<float> y(x.rows * out);
  for (int64_t t = 0; t < x.rows; ++t)
    for (int64_t o = 0; o < out; ++o) {
      float sum = 0.0f;
      for (int64_t g = 0; g < groups; ++g) {
        int64_t s = 0;
        for (int64_t i = g * glen; i < (g + 1) * glen; ++i)
          s += int64_t(int(x.codes[t * x.stride + i]) - xb) * codes[o * in + i];
        sum += static_cast<float>(static_cast<int32_t>(s)) *
               scales[o * groups + g];
      }
      float v = sum * x.scales[t];
      y[t * out + o] = bias ? v + bias[o] : v;
    }
  return y;
}

struct Case {
  int64_t rows, out, in, group;
  int bits;
};

TEST(IntGemm, PathsAreBitIdenticalToNaiveIntegerReference) {
  std::vector<Case> cases = {{1, 3, 33, 0, 4},
                             {5, 17, 64, 0, 4},
                             {13, 64, 200, 0, 4},
                             {4, 4, 256, 64, 4},
                             {7, 9, 256, 128, 4},
                             {6, 5, 96, 32, 4},
                             {3, 11, 70, 0, 8},
                             {9, 6, 48, 0, 2},
                             {2, 5, 40, 0, 3},
                             {10, 130, 256, 32, 4},
                             // Around AMX's tiles (32 rows x 32 outputs x 64
                             // inputs): partial row tiles, an odd number of
                             // output blocks, groups of 64 and 128.
                             {16, 16, 64, 0, 4},
                             {17, 48, 200, 0, 4},
                             {45, 40, 256, 64, 4},
                             {70, 96, 768, 128, 4},
                             {33, 33, 130, 0, 8}};
  for (const Case &c : cases) {
    SCOPED_TRACE(testing::Message() << c.rows << "x" << c.out << "x" << c.in
                                    << " g" << c.group << " b" << c.bits);
    std::vector<int> codes;
    auto ir = randomIrCodes(c.out, c.in, c.bits, codes);
    int64_t groups = c.group ? c.in / c.group : 1;
    auto scales = randn(c.out * groups);
    for (float &s : scales)
      s = std::fabs(s) * 0.01f + 1e-3f;
    PackedWeights w;
    ASSERT_TRUE(
        packWeights(ir.data(), scales.data(), c.out, c.in, c.bits, c.group, w)
            .ok());
    auto xf = randn(c.rows * c.in);
    QuantizedRows x;
    // 8-bit weights with 8-bit activations (the largest codes), else 4.
    quantizeActivations(xf.data(), c.rows, c.in, c.bits == 8 ? 8 : 4, 1.0, x);
    auto bias = randn(c.out);
    for (const float *b : {static_cast<const float *>(nullptr),
                           static_cast<const float *>(bias.data())}) {
      auto ref = naive(x, codes, scales, c.out, c.in, c.group, b);
      std::vector<GemmPath> paths = {GemmPath::Portable};
      if (hasAvx2Gemm() && (c.group == 0 || c.group % 4 == 0) &&
          2 * ((1 << x.bits) - 1) * (1 << (c.bits - 1)) <= 32767)
        paths.push_back(GemmPath::Avx2);
      if (hasAvx512Vnni() && (c.group == 0 || c.group % 4 == 0))
        paths.push_back(GemmPath::Avx512Vnni);
      if (hasAmxInt8() && (c.group == 0 || c.group % 64 == 0))
        paths.push_back(GemmPath::AmxInt8);
      for (GemmPath p : paths) {
        std::vector<float> y(c.rows * c.out,
                             std::numeric_limits<float>::quiet_NaN());
        ASSERT_TRUE(intGemm(x, w, b, y.data(), p).ok());
        ASSERT_EQ(0,
                  std::memcmp(y.data(), ref.data(), y.size() * sizeof(float)))
            << "path " << static_cast<int>(p);
        // A residual in the epilogue rounds as a separate add would.
        auto residual = randn(c.rows * c.out);
        std::vector<float> sum(y.size());
        for (size_t i = 0; i < y.size(); ++i)
          sum[i] = ref[i] + residual[i];
        ASSERT_TRUE(intGemm(x, w, b, y.data(), p, residual.data()).ok());
        ASSERT_EQ(0,
                  std::memcmp(y.data(), sum.data(), y.size() * sizeof(float)))
            << "path " << static_cast<int>(p) << " with a residual";
      }
    }
  }
}

// A fused producer (rows made one at a time into a buffer) quantizes to
// the codes and scales of producing every row first, at ragged widths.
TEST(IntGemm, QuantizeProducedEqualsQuantizeActivations) {
  for (int64_t cols : {1, 7, 64, 100, 768}) {
    for (int64_t rows : {0, 1, 5, 70}) {
      auto xf = randn(rows * cols);
      for (float &v : xf)
        v = v * 3.0f - 0.5f;
      QuantizedRows ref, fused;
      quantizeActivations(xf.data(), rows, cols, 4, 0.9, ref);
      quantizeProduced(rows, cols, 4, 0.9, fused, [&](int64_t r, float *row) {
        std::memcpy(row, xf.data() + r * cols, sizeof(float) * cols);
      });
      EXPECT_EQ(ref.rows, fused.rows);
      EXPECT_EQ(ref.stride, fused.stride);
      EXPECT_EQ(ref.codes, fused.codes) << rows << "x" << cols;
      ASSERT_EQ(ref.scales.size(), fused.scales.size());
      if (rows)
        EXPECT_EQ(0, std::memcmp(ref.scales.data(), fused.scales.data(),
                                 sizeof(float) * rows));
    }
  }
}

TEST(IntGemm, MatchesFloat64FakeQuant) {
  int64_t rows = 6, out = 24, in = 128;
  std::vector<int> codes;
  auto ir = randomIrCodes(out, in, 4, codes);
  std::vector<float> scales(out);
  for (float &s : scales)
    s = 0.02f + 0.001f * static_cast<float>(&s - scales.data());
  PackedWeights w;
  ASSERT_TRUE(packWeights(ir.data(), scales.data(), out, in, 4, 0, w).ok());
  auto xf = randn(rows * in);
  QuantizedRows x;
  quantizeActivations(xf.data(), rows, in, 4, 1.0, x);
  std::vector<float> y(rows * out, std::numeric_limits<float>::quiet_NaN());
  ASSERT_TRUE(intGemm(x, w, nullptr, y.data()).ok());
  double err = 0, norm = 0;
  for (int64_t t = 0; t < rows; ++t)
    for (int64_t o = 0; o < out; ++o) {
      double ref = 0;
      for (int64_t i = 0; i < in; ++i)
        ref += (double(x.codes[t * x.stride + i]) - 8) * x.scales[t] *
               double(codes[o * in + i]) * scales[o];
      err += (y[t * out + o] - ref) * (y[t * out + o] - ref);
      norm += ref * ref;
    }
  EXPECT_LE(std::sqrt(err / norm), 1e-5);
}

TEST(IntGemm, ActivationQuantizationFollowsTheSpec) {
  std::vector<float> x = {0.5f, 1.5f, 2.5f, -3.5f, 7.0f, -7.0f, 0.0f, 6.5f};
  QuantizedRows q;
  quantizeActivations(x.data(), 1, x.size(), 4, 1.0, q);
  EXPECT_EQ(q.scales[0], 1.0f);
  std::vector<int> expect = {0, 2, 2, -4, 7, -7, 0, 6};
  for (size_t i = 0; i < x.size(); ++i)
    EXPECT_EQ(int(q.codes[i]) - 8, expect[i]) << i;
  EXPECT_EQ(q.stride, 64);
  EXPECT_EQ(q.codes[63], 8); // padding holds the bias, i.e. code 0
}

TEST(IntGemm, ActivationQuantizationPathsAreBitIdentical) {
  if (!hasAvx512Vnni() && !hasAvx2Gemm())
    GTEST_SKIP() << "no AVX-512 or AVX2 here";
  std::normal_distribution<float> d(0.0f, 3.0f);
  for (int64_t cols : {1, 15, 16, 17, 64, 200, 768})
    for (int bits : {2, 4, 8}) {
      int64_t rows = 9;
      std::vector<float> x(rows * cols);
      for (float &v : x)
        v = d(rng());
      // Ties (x / s exactly k + 0.5), an all-zero row, -0.0 and an outlier.
      for (int64_t c = 0; c < cols; ++c) {
        x[0 * cols + c] = 0.5f * static_cast<float>(c % 15) - 3.5f;
        x[1 * cols + c] = 0.0f;
        x[2 * cols + c] = c % 2 ? -0.0f : 1e-30f;
      }
      x[3 * cols] = 1e30f;
      for (double clip : {1.0, 0.8}) {
        QuantizedRows a, b;
        quantizeActivations(x.data(), rows, cols, bits, clip, a,
                            GemmPath::Portable);
        quantizeActivations(x.data(), rows, cols, bits, clip, b,
                            GemmPath::Auto);
        ASSERT_EQ(a.codes, b.codes) << cols << " " << bits << " " << clip;
        ASSERT_EQ(0, std::memcmp(a.scales.data(), b.scales.data(),
                                 rows * sizeof(float)));
      }
    }
}

TEST(IntGemm, PackUnpackRoundTrip) {
  for (int bits : {2, 3, 4, 8}) {
    int64_t out = 3, in = 13;
    std::vector<int> codes;
    auto ir = randomIrCodes(out, in, bits, codes);
    // packCodes writes the layout randomIrCodes builds by hand.
    EXPECT_EQ(packCodes(codes.data(), out, in, bits), ir) << bits;
    std::vector<float> scales(out, 1.0f);
    PackedWeights w;
    ASSERT_TRUE(
        packWeights(ir.data(), scales.data(), out, in, bits, 0, w).ok());
    for (int64_t o = 0; o < out; ++o)
      for (int64_t i = 0; i < in; ++i)
        EXPECT_EQ(w.code(o, i), codes[o * in + i]) << bits;
  }
}

TEST(IntGemm, FourBitPanelsHoldTwoCodesPerByte) {
  // 40 outputs (3 blocks, the last partial), 200 inputs (stride 256).
  for (int bits : {2, 3, 4, 5, 8}) {
    int64_t out = 40, in = 200;
    std::vector<int> codes;
    auto ir = randomIrCodes(out, in, bits, codes);
    std::vector<float> scales(out, 1.0f);
    PackedWeights w;
    ASSERT_TRUE(
        packWeights(ir.data(), scales.data(), out, in, bits, 0, w).ok());
    int64_t blocks = 3, panelsPerBlock = w.stride / 4;
    EXPECT_EQ(w.nibbles, bits <= 4) << bits;
    EXPECT_EQ(static_cast<int64_t>(w.panels.size()),
              blocks * panelsPerBlock * (bits <= 4 ? 32 : 64))
        << bits;
    // unpackBlocks (AVX2 where available) gives every code at panelIndex,
    // and zeros in the padding; any block range.
    for (int64_t b0 = 0; b0 < blocks; ++b0)
      for (int64_t nb = 1; b0 + nb <= blocks; ++nb) {
        std::vector<int8_t> unpacked(nb * w.blockCodes(), 99);
        w.unpackBlocks(b0, nb, unpacked.data());
        for (int64_t o = b0 * 16; o < (b0 + nb) * 16; ++o)
          for (int64_t i = 0; i < w.stride; ++i) {
            int expected = o < out && i < in ? codes[o * in + i] : 0;
            ASSERT_EQ(unpacked[w.panelIndex(o, i) - b0 * w.blockCodes()],
                      expected)
                << bits << " " << o << " " << i;
          }
      }
  }
  // The extremes of the 4-bit range: -8 = 0x8 and 7 = 0x7 in one byte.
  std::vector<int> extremes = {-8, 7};
  EXPECT_EQ(packCodes(extremes.data(), 1, 2, 4), std::vector<int8_t>{0x78});
}

TEST(IntGemm, BadInputsAreErrors) {
  std::vector<int8_t> ir = {5,
                            0}; // 3-bit codes, one per byte: 5 is out of range
  std::vector<float> s = {1.0f};
  PackedWeights w;
  Status st = packWeights(ir.data(), s.data(), 1, 2, 3, 0, w);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message(), "weight code 5 at [0, 0] is outside the 3-bit range");
  EXPECT_FALSE(packWeights(ir.data(), s.data(), 1, 2, 4, 3, w).ok());
  QuantizedRows x;
  std::vector<float> xf = {1.0f, 2.0f, 3.0f};
  quantizeActivations(xf.data(), 1, 3, 4, 1.0, x);
  std::vector<int8_t> ir2 = {0x21};
  ASSERT_TRUE(packWeights(ir2.data(), s.data(), 1, 2, 4, 0, w).ok());
  float y;
  EXPECT_FALSE(intGemm(x, w, nullptr, &y).ok()); // width 3 vs 2
}

} // namespace
