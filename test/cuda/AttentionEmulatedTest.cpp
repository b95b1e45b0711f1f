//===- AttentionEmulatedTest.cpp - RoPE and attention on the emulator -----===//
//
// rope equals rt::rope bit for bit (the same tables and operations);
// attention equals rt::attention within float rounding (the CPU's products
// run in OpenBLAS, whose blocking orders the sums differently).
//
//===----------------------------------------------------------------------===//

#include "emulator/Emulator.h"

#include "w4a4/cuda/Attention.cuh"
#include "w4a4/runtime/Kernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

namespace {

using namespace w4a4;

std::vector<float> randomValues(int64_t n, float sigma, unsigned seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, sigma);
  std::vector<float> v(n);
  for (float &x : v)
    x = d(g);
  return v;
}

TEST(CudaAttentionEmulated, RopeEqualsTheCpuRuntimeBitForBit) {
  for (bool interleaved : {false, true})
    for (int offset : {0, 5}) {
      int batch = 2, seq = 9, heads = 3, d = 64, width = heads * d;
      auto x = randomValues(int64_t{batch} * seq * width, 1.0f, 3);
      std::vector<float> expected(x.size()), got(x.size());
      rt::rope(x.data(), batch, seq, heads, d, 10000.0, offset, interleaved,
               expected.data());
      std::vector<float> c((seq + offset) * d / 2), s(c.size());
      rt::ropeTables(10000.0, d, 0, seq + offset, c.data(), s.data());
      cuda::RopeParams p;
      p.x = x.data();
      p.out = got.data();
      p.rows = batch * seq;
      p.seq = seq;
      p.heads = heads;
      p.headDim = d;
      p.cosT = c.data();
      p.sinT = s.data();
      p.offset = offset;
      p.interleaved = interleaved;
      cuda::emu::LaunchConfig cfg;
      cfg.gridX = p.rows;
      cfg.threads = 128;
      ASSERT_EQ(cuda::emu::launch(cfg, [&] { cuda::rope(p); }), "");
      EXPECT_EQ(0, std::memcmp(got.data(), expected.data(),
                               got.size() * sizeof(float)))
          << interleaved << " " << offset;
    }
}

struct AttnCase {
  int batch, seq, heads, kvHeads, headDim, prefix;
};

TEST(CudaAttentionEmulated, CausalGqaWithPrefixMatchesTheCpuRuntime) {
  for (AttnCase c : {AttnCase{2, 37, 4, 2, 64, 3}, AttnCase{1, 20, 4, 4, 32, 0},
                     AttnCase{1, 70, 6, 1, 16, 8}}) {
    SCOPED_TRACE("seq " + std::to_string(c.seq) + " prefix " +
                 std::to_string(c.prefix));
    int64_t rows = int64_t{c.batch} * c.seq, qw = c.heads * c.headDim,
            kvw = c.kvHeads * c.headDim;
    auto q = randomValues(rows * qw, 1.0f, 11),
         k = randomValues(rows * kvw, 1.0f, 12),
         v = randomValues(rows * kvw, 1.0f, 13),
         kp = randomValues(int64_t{c.prefix} * kvw, 2.0f, 14),
         vp = randomValues(int64_t{c.prefix} * kvw, 2.0f, 15);
    double scale = 1.0 / std::sqrt(static_cast<double>(c.headDim));
    std::vector<float> expected(rows * qw), got(rows * qw, NAN);
    rt::attention(q.data(), k.data(), v.data(), c.prefix ? kp.data() : nullptr,
                  c.prefix ? vp.data() : nullptr, c.prefix, c.batch, c.seq,
                  c.heads, c.kvHeads, c.headDim, scale, expected.data());
    cuda::AttentionParams p;
    p.q = q.data();
    p.k = k.data();
    p.v = v.data();
    p.kp = c.prefix ? kp.data() : nullptr;
    p.vp = c.prefix ? vp.data() : nullptr;
    p.out = got.data();
    p.batch = c.batch;
    p.seq = c.seq;
    p.heads = c.heads;
    p.kvHeads = c.kvHeads;
    p.headDim = c.headDim;
    p.prefix = c.prefix;
    p.scale = static_cast<float>(scale);
    cuda::emu::LaunchConfig cfg;
    cfg.gridX = static_cast<int>(rows);
    cfg.gridY = c.heads;
    cfg.threads = cuda::attn::kThreads;
    cfg.sharedBytes = cuda::attn::sharedBytes(c.prefix + c.seq);
    ASSERT_EQ(cuda::emu::launch(cfg, [&] { cuda::attention(p); }), "");
    // Outputs are convex combinations of v rows (|v| ~ 1): an absolute
    // bound of a few float roundings of the sums (seen: up to 1.9e-6).
    double worst = 0;
    for (size_t i = 0; i < got.size(); ++i)
      worst = std::max(worst, std::fabs(double(got[i]) - expected[i]));
    EXPECT_LT(worst, 1e-5) << "largest difference " << worst;
    // And the causal mask: the first token sees only the prefix and itself.
    if (c.prefix == 0) {
      for (int h = 0; h < c.heads; ++h)
        for (int d = 0; d < c.headDim; ++d)
          EXPECT_NEAR(got[h * c.headDim + d],
                      v[(h / (c.heads / c.kvHeads)) * c.headDim + d], 1e-6);
    }
    std::printf("[ figures  ] attention seq %d prefix %d: largest |GPU - CPU| "
                "%.3g\n",
                c.seq, c.prefix, worst);
  }
}

} // namespace
