//===- AttentionEmulatedTest.cpp - RoPE and attention on the emulator -----===//
//
// rope equals rt::rope bit for bit (the same tables and operations);
// attention equals rt::attention within float rounding (the CPU's products
// run in OpenBLAS, whose blocking orders the sums differently).
//
//===----------------------------------------------------------------------===//

#include "TestValues.h"
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

using cuda::test::randomValues;

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

TEST(CudaAttentionEmulated, DecodingThroughTheKvCacheMatchesTheCpuRuntime) {
  // Two calls (past 0 then past = the first call's length) through
  // kvAppend + cached attention, fp32 and 4-bit caches, GQA, a prefix;
  // against rt::attentionCached on the CPU's fp32 cache of the same
  // (for 4 bits: fake-quantized per token and KV head) rows.
  struct Case {
    int batch, first, second, heads, kvHeads, headDim, prefix;
  };
  for (bool fourBit : {false, true})
    for (Case c : {Case{2, 9, 1, 4, 2, 32, 3}, Case{1, 5, 7, 6, 1, 16, 0}}) {
      SCOPED_TRACE(std::string(fourBit ? "4-bit" : "fp32") + " heads " +
                   std::to_string(c.heads) + "/" + std::to_string(c.kvHeads));
      int qw = c.heads * c.headDim, kvw = c.kvHeads * c.headDim;
      int capacity = c.first + c.second + 2;
      auto kp = randomValues(int64_t{c.prefix} * kvw, 2.0f, 31),
           vp = randomValues(int64_t{c.prefix} * kvw, 2.0f, 32);
      // The caches: CPU [batch, kvHeads, past, d] fp32; emulator views.
      std::vector<float> cpuK, cpuV;
      size_t slots = static_cast<size_t>(c.batch) * c.kvHeads * capacity;
      std::vector<float> values[2], scales[2];
      std::vector<uint8_t> codes[2];
      cuda::KvCacheView view[2];
      for (int i = 0; i < 2; ++i) {
        view[i].capacity = capacity;
        if (fourBit) {
          codes[i].assign(slots * c.headDim / 2, 0xee);
          scales[i].assign(slots, NAN);
          view[i].codes = codes[i].data();
          view[i].scales = scales[i].data();
        } else {
          values[i].assign(slots * c.headDim, NAN);
          view[i].values = values[i].data();
        }
      }
      int past = 0;
      for (int seq : {c.first, c.second}) {
        int64_t rows = int64_t{c.batch} * seq;
        auto q = randomValues(rows * qw, 1.0f, 40 + past),
             k = randomValues(rows * kvw, 1.0f, 41 + past),
             v = randomValues(rows * kvw, 1.0f, 42 + past);
        // The CPU sees the fake-quantized rows (what quantize-kv emits).
        std::vector<float> kq = k, vq = v;
        if (fourBit) {
          rt::quantizeRows(k.data(), rows * c.kvHeads, c.headDim, 4, 1.0,
                           kq.data());
          rt::quantizeRows(v.data(), rows * c.kvHeads, c.headDim, 4, 1.0,
                           vq.data());
        }
        double scale = 1.0 / std::sqrt(static_cast<double>(c.headDim));
        size_t present =
            static_cast<size_t>(c.batch) * c.kvHeads * (past + seq) * c.headDim;
        std::vector<float> expected(rows * qw), nextK(present), nextV(present);
        rt::attentionCached(
            q.data(), kq.data(), vq.data(), c.prefix ? kp.data() : nullptr,
            c.prefix ? vp.data() : nullptr, c.prefix,
            past ? cpuK.data() : nullptr, past ? cpuV.data() : nullptr, past,
            c.batch, seq, c.heads, c.kvHeads, c.headDim, scale, expected.data(),
            nextK.data(), nextV.data());
        cpuK = nextK;
        cpuV = nextV;
        // The emulator appends the raw rows (quantizing them itself).
        for (int i = 0; i < 2; ++i) {
          cuda::KvAppendParams a;
          a.x = i == 0 ? k.data() : v.data();
          a.cache = view[i];
          a.seq = seq;
          a.kvHeads = c.kvHeads;
          a.headDim = c.headDim;
          a.past = past;
          cuda::emu::LaunchConfig cfg;
          cfg.gridX = static_cast<int>(rows);
          cfg.gridY = c.kvHeads;
          cfg.threads = cuda::attn::kAppendThreads;
          cfg.sharedBytes = cuda::attn::kAppendThreads * 4;
          ASSERT_EQ(cuda::emu::launch(cfg, [&] { cuda::kvAppend(a); }), "");
        }
        std::vector<float> got(rows * qw, NAN);
        cuda::AttentionParams p;
        p.q = q.data();
        p.kp = c.prefix ? kp.data() : nullptr;
        p.vp = c.prefix ? vp.data() : nullptr;
        p.out = got.data();
        p.batch = c.batch;
        p.seq = seq;
        p.heads = c.heads;
        p.kvHeads = c.kvHeads;
        p.headDim = c.headDim;
        p.prefix = c.prefix;
        p.scale = static_cast<float>(scale);
        p.cached = true;
        p.past = past;
        p.cacheK = view[0];
        p.cacheV = view[1];
        cuda::emu::LaunchConfig cfg;
        cfg.gridX = static_cast<int>(rows);
        cfg.gridY = c.heads;
        cfg.threads = cuda::attn::kThreads;
        cfg.sharedBytes = cuda::attn::sharedBytes(c.prefix + past + seq);
        ASSERT_EQ(cuda::emu::launch(cfg, [&] { cuda::attention(p); }), "");
        double worst = 0;
        for (size_t i = 0; i < got.size(); ++i)
          worst = std::max(worst, std::fabs(double(got[i]) - expected[i]));
        EXPECT_LT(worst, 1e-5) << "past " << past;
        // The 4-bit cache holds exactly the fake-quantized values.
        if (fourBit)
          for (int b = 0; b < c.batch; ++b)
            for (int g = 0; g < c.kvHeads; ++g)
              for (int t = 0; t < past + seq; ++t)
                for (int d = 0; d < c.headDim; ++d) {
                  size_t cpu =
                      ((static_cast<size_t>(b) * c.kvHeads + g) * (past + seq) +
                       t) *
                          c.headDim +
                      d;
                  ASSERT_EQ(cuda::attn::element(
                                cuda::attn::cacheRow(view[0], c.kvHeads,
                                                     c.headDim, b, g, t),
                                d),
                            cpuK[cpu])
                      << b << " " << g << " " << t << " " << d;
                }
        past += seq;
      }
    }
}

} // namespace
