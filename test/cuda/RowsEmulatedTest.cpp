//===- RowsEmulatedTest.cpp - fp32 row kernels on the SIMT emulator -------===//
//
// fakeQuant (the KV cache's fake quantization) equals rt::quantizeRows bit
// for bit, per row and per group, at 4 and 8 bits; embedding copies table
// rows and flags ids outside the vocabulary; linearF32 (the fp LM head)
// agrees with rt::linear (OpenBLAS) within float rounding of a dot product.
// The whole-model chain is test/cuda/model/model-on-emulator.test.
//
//===----------------------------------------------------------------------===//

#include "TestValues.h"
#include "emulator/Emulator.h"

#include "w4a4/cuda/Producers.cuh"
#include "w4a4/cuda/Rows.cuh"
#include "w4a4/runtime/Kernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

namespace {

using namespace w4a4;

using cuda::test::randomValues;

TEST(CudaRowsEmulated, FakeQuantEqualsTheCpuRuntimeBitForBit) {
  struct Case {
    int rows, cols, group, bits;
    float clip;
  };
  for (Case c : {Case{5, 64, 0, 4, 1.0f}, Case{3, 96, 32, 4, 1.0f},
                 Case{2, 300, 0, 8, 0.9f}, Case{4, 128, 64, 8, 1.0f},
                 Case{1, 40, 0, 3, 1.0f}}) {
    SCOPED_TRACE("cols " + std::to_string(c.cols) + " group " +
                 std::to_string(c.group) + " bits " + std::to_string(c.bits));
    int width = c.group > 0 ? c.group : c.cols;
    auto x = randomValues(int64_t{c.rows} * c.cols, 2.0f, 21);
    std::fill(x.begin(), x.begin() + width, 0.0f); // a zero group: scale 0
    std::vector<float> expected(x.size()), got(x.size(), NAN);
    rt::quantizeRows(x.data(), int64_t{c.rows} * (c.cols / width), width,
                     c.bits, c.clip, expected.data());
    cuda::FakeQuantParams p;
    p.x = x.data();
    p.out = got.data();
    p.rows = c.rows * (c.cols / width);
    p.width = width;
    p.bits = c.bits;
    p.clip = c.clip;
    cuda::emu::LaunchConfig cfg;
    cfg.gridX = p.rows;
    cfg.threads = cuda::producers::kThreads;
    cfg.sharedBytes = cuda::producers::kThreads * 4;
    ASSERT_EQ(cuda::emu::launch(cfg, [&] { cuda::fakeQuant(p); }), "");
    EXPECT_EQ(0, std::memcmp(got.data(), expected.data(),
                             got.size() * sizeof(float)));
  }
}

TEST(CudaRowsEmulated, EmbeddingCopiesRowsAndFlagsBadIds) {
  int64_t vocab = 50;
  int hidden = 200;
  auto table = randomValues(vocab * hidden, 1.0f, 22);
  std::vector<int64_t> ids = {3, 49, 0, 3};
  std::vector<float> expected(ids.size() * hidden), got(expected.size(), NAN);
  ASSERT_TRUE(rt::embedding(table.data(), vocab, hidden, ids.data(),
                            static_cast<int64_t>(ids.size()), expected.data())
                  .ok());
  int bad = 0;
  cuda::EmbeddingParams p;
  p.table = table.data();
  p.ids = ids.data();
  p.out = got.data();
  p.vocab = vocab;
  p.rows = static_cast<int>(ids.size());
  p.hidden = hidden;
  p.badId = &bad;
  cuda::emu::LaunchConfig cfg;
  cfg.gridX = p.rows;
  cfg.threads = 128;
  ASSERT_EQ(cuda::emu::launch(cfg, [&] { cuda::embedding(p); }), "");
  EXPECT_EQ(bad, 0);
  EXPECT_EQ(
      0, std::memcmp(got.data(), expected.data(), got.size() * sizeof(float)));
  // Ids outside the vocabulary: NaN rows and the flag, never a read
  // outside the table.
  for (int64_t id : {int64_t{-1}, vocab, int64_t{1} << 40}) {
    ids = {1, id};
    bad = 0;
    p.ids = ids.data();
    p.rows = 2;
    ASSERT_EQ(cuda::emu::launch(cfg, [&] { cuda::embedding(p); }), "");
    EXPECT_EQ(bad, 1) << id;
    EXPECT_TRUE(std::isnan(got[hidden])) << id;
    EXPECT_EQ(got[0], table[hidden]) << id;
  }
}

TEST(CudaRowsEmulated, LinearF32MatchesTheCpuRuntime) {
  for (bool bias : {false, true}) {
    int rows = 3, in = 70, out = 300;
    auto x = randomValues(int64_t{rows} * in, 1.0f, 23),
         w = randomValues(int64_t{out} * in, 0.2f, 24),
         b = randomValues(out, 1.0f, 25);
    std::vector<float> expected(int64_t{rows} * out), got(expected.size(), NAN);
    rt::linear(x.data(), w.data(), bias ? b.data() : nullptr, rows, in, out,
               expected.data());
    cuda::LinearF32Params p;
    p.x = x.data();
    p.w = w.data();
    p.bias = bias ? b.data() : nullptr;
    p.y = got.data();
    p.rows = rows;
    p.in = in;
    p.out = out;
    cuda::emu::LaunchConfig cfg;
    cfg.gridX = rows;
    cfg.gridY =
        (out + cuda::rows::kLinearThreads - 1) / cuda::rows::kLinearThreads;
    cfg.threads = cuda::rows::kLinearThreads;
    ASSERT_EQ(cuda::emu::launch(cfg, [&] { cuda::linearF32(p); }), "");
    // |y| ~ 2; a float dot product of 70 terms in another order: a few
    // ulps of the partial sums.
    double worst = 0;
    for (size_t i = 0; i < got.size(); ++i)
      worst = std::max(worst, std::fabs(double(got[i]) - expected[i]));
    EXPECT_LT(worst, 1e-5) << "bias " << bias;
  }
}

} // namespace
