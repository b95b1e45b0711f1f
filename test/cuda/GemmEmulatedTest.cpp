//===- GemmEmulatedTest.cpp - CUDA W4A4 GEMM on the SIMT emulator ---------===//
//
// The kernels of runtime/cuda compiled as host C++ and run by the emulator
// (test/cuda/emulator), against the CPU runtime (rt::intGemm): the same
// quantized codes in, the same float bits out.
//
//===----------------------------------------------------------------------===//

#include "GemmCases.h"
#include "emulator/Emulator.h"

#include "w4a4/cuda/Gemm.cuh"
#include "w4a4/cuda/Pack.h"
#include "w4a4/runtime/IntGemm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

namespace {

using namespace w4a4;
using cuda::emu::LaunchConfig;

std::mt19937 &rng() {
  static std::mt19937 g(20261201);
  return g;
}

// ---------------------------------------------------------------------------
// The MMA models against the PTX ISA's fragment tables, written here in the
// ISA's own form (element index i over all of a lane's registers), not the
// emulator's (register, element) form.

struct MmaCase {
  int k, bits;
};

/// Row and column of a lane's i-th A element (PTX ISA "Matrix Fragments
/// for mma.m16n8k64" .s4: 32 elements in a0..a3; "for mma.m16n8k32" .s8:
/// 16 elements).
std::pair<int, int> isaA(const MmaCase &c, int lane, int i) {
  int groupID = lane >> 2, tig = lane % 4;
  if (c.k == 64)
    return {(i < 8 || (i >= 16 && i < 24)) ? groupID : groupID + 8,
            i < 16 ? tig * 8 + (i & 7) : tig * 8 + (i & 7) + 32};
  return {(i < 4 || (i >= 8 && i < 12)) ? groupID : groupID + 8,
          i < 8 ? tig * 4 + (i & 3) : tig * 4 + (i & 3) + 16};
}
std::pair<int, int> isaB(const MmaCase &c, int lane, int i) {
  int groupID = lane >> 2, tig = lane % 4;
  if (c.k == 64)
    return {i < 8 ? tig * 8 + (i & 7) : tig * 8 + (i & 7) + 32, groupID};
  return {i < 4 ? tig * 4 + (i & 3) : tig * 4 + (i & 3) + 16, groupID};
}
std::pair<int, int> isaC(int lane, int i) {
  return {i < 2 ? (lane >> 2) : (lane >> 2) + 8, (lane % 4) * 2 + (i & 1)};
}

/// Runs one warp's MMA on the emulator with A, B, C distributed by the
/// ISA's tables (B's optionally transposed: a wrong layout), gathering D.
std::vector<int64_t> emulatedMma(const MmaCase &c, const std::vector<int> &a,
                                 const std::vector<int> &b,
                                 const std::vector<int> &acc,
                                 bool transposeB = false) {
  int per = 32 / c.bits, mask = (1 << c.bits) - 1;
  std::vector<int64_t> d(16 * 8);
  auto body = [&] {
    int lane = cuda::dev::laneId();
    uint32_t ra[4] = {}, rb[2] = {};
    int32_t rc[4], rd[4];
    for (int i = 0; i < 4 * per; ++i) {
      auto [r, k] = isaA(c, lane, i);
      ra[i / per] |= static_cast<uint32_t>(a[r * c.k + k] & mask)
                     << (c.bits * (i % per));
    }
    for (int i = 0; i < 2 * per; ++i) {
      auto [k, n] = isaB(c, lane, i);
      // The transposed variant reads B's 8 x 8 corner the wrong way round.
      if (transposeB && k < 8)
        std::swap(k, n);
      rb[i / per] |= static_cast<uint32_t>(b[k * 8 + n] & mask)
                     << (c.bits * (i % per));
    }
    for (int i = 0; i < 4; ++i) {
      auto [r, n] = isaC(lane, i);
      rc[i] = acc[r * 8 + n];
    }
    if (c.k == 64)
      cuda::dev::mmaS4(rd, ra, rb, rc);
    else
      cuda::dev::mmaS8(rd, ra, rb, rc);
    for (int i = 0; i < 4; ++i) {
      auto [r, n] = isaC(lane, i);
      d[r * 8 + n] = rd[i];
    }
  };
  LaunchConfig cfg;
  cfg.threads = 32;
  std::string error = cuda::emu::launch(cfg, body);
  EXPECT_EQ(error, "");
  return d;
}

TEST(CudaEmulator, MmaModelsFollowThePtxFragmentTables) {
  for (MmaCase c : {MmaCase{64, 4}, MmaCase{32, 8}}) {
    int lo = -(1 << (c.bits - 1)), hi = (1 << (c.bits - 1)) - 1;
    std::uniform_int_distribution<int> code(lo, hi), accD(-1000, 1000);
    std::vector<int> a(16 * c.k), b(c.k * 8), acc(16 * 8);
    for (int &v : a)
      v = code(rng());
    for (int &v : b)
      v = code(rng());
    for (int &v : acc)
      v = accD(rng());
    std::vector<int64_t> expected(16 * 8);
    for (int i = 0; i < 16; ++i)
      for (int j = 0; j < 8; ++j) {
        int64_t s = acc[i * 8 + j];
        for (int p = 0; p < c.k; ++p)
          s += static_cast<int64_t>(a[i * c.k + p]) * b[p * 8 + j];
        expected[i * 8 + j] = s;
      }
    EXPECT_EQ(emulatedMma(c, a, b, acc), expected) << c.k;
    // The random matrices are asymmetric: a transposed B fragment gives a
    // different product, so the comparison above can fail.
    EXPECT_NE(emulatedMma(c, a, b, acc, /*transposeB=*/true), expected) << c.k;
    // The extremes of the code range (-8 * -8 summed 64 times).
    std::fill(a.begin(), a.end(), lo);
    std::fill(b.begin(), b.end(), lo);
    std::fill(acc.begin(), acc.end(), 0);
    std::vector<int64_t> extreme(16 * 8, static_cast<int64_t>(lo) * lo * c.k);
    EXPECT_EQ(emulatedMma(c, a, b, acc), extreme) << c.k;
  }
}

// ---------------------------------------------------------------------------
// The emulator catches what a GPU would get wrong silently.

TEST(CudaEmulator, CpAsyncDataArrivesOnlyAfterTheWait) {
  alignas(16) unsigned char src[16];
  for (int i = 0; i < 16; ++i)
    src[i] = static_cast<unsigned char>(i + 1);
  for (bool wait : {true, false}) {
    unsigned char seen[16] = {};
    auto body = [&] {
      unsigned char *shared = cuda::dev::sharedBase();
      if (cuda::dev::threadX() == 0) {
        cuda::dev::cpAsync16(shared, src, true);
        cuda::dev::cpAsyncCommit();
        if (wait)
          cuda::dev::cpAsyncWait<0>();
      }
      cuda::dev::syncThreads();
      if (cuda::dev::threadX() == 1)
        std::memcpy(seen, shared, 16);
    };
    LaunchConfig cfg;
    cfg.threads = 64;
    cfg.sharedBytes = 64;
    ASSERT_EQ(cuda::emu::launch(cfg, body), "");
    if (wait) {
      EXPECT_EQ(0, std::memcmp(seen, src, 16));
    } else {
      for (unsigned char v : seen)
        EXPECT_EQ(v, cuda::emu::kPoison);
    }
  }
}

TEST(CudaEmulator, MisuseIsAnErrorNotAHang) {
  LaunchConfig cfg;
  cfg.threads = 64;
  // Thread 0 skips the barrier.
  std::string e = cuda::emu::launch(cfg, [] {
    if (cuda::dev::threadX() != 0)
      cuda::dev::syncThreads();
  });
  EXPECT_NE(e.find("exited"), std::string::npos) << e;
  // Lane 0 of warp 1 shuffles, the others take an MMA.
  e = cuda::emu::launch(cfg, [] {
    if (cuda::dev::threadX() == 32) {
      cuda::dev::shflXor(1.0f, 1);
    } else if (cuda::dev::warpId() == 1) {
      uint32_t a[4] = {}, b[2] = {};
      int32_t c[4] = {}, d[4];
      cuda::dev::mmaS4(d, a, b, c);
    }
  });
  EXPECT_NE(e.find("different collectives"), std::string::npos) << e;
  // Two barriers on one side, one on the other: a deadlock, reported.
  e = cuda::emu::launch(cfg, [] {
    cuda::dev::syncThreads();
    if (cuda::dev::warpId() == 0)
      cuda::dev::shflXor(1.0f, 1);
    else
      cuda::dev::syncThreads();
    cuda::dev::syncThreads();
  });
  EXPECT_FALSE(e.empty());
  cfg.threads = 0;
  EXPECT_NE(cuda::emu::launch(cfg, [] {}).find("bad launch configuration"),
            std::string::npos);
}

TEST(CudaEmulator, ShuffleXorButterfly) {
  std::vector<float> out(64);
  LaunchConfig cfg;
  cfg.threads = 64;
  ASSERT_EQ(cuda::emu::launch(cfg,
                              [&] {
                                int t = cuda::dev::threadX();
                                out[t] = cuda::dev::shflXor(
                                    static_cast<float>(t), 5);
                              }),
            "");
  for (int t = 0; t < 64; ++t)
    EXPECT_EQ(out[t], static_cast<float>(t ^ 5));
}

// ---------------------------------------------------------------------------
// The W4A4 GEMM kernel against rt::intGemm.

using cuda::test::GemmCase;

std::vector<int8_t> randomWeights(int64_t out, int64_t in, int bits) {
  std::uniform_int_distribution<int> d(-(1 << (bits - 1)),
                                       (1 << (bits - 1)) - 1);
  std::vector<int> codes(out * in);
  for (int &c : codes)
    c = d(rng());
  return rt::packCodes(codes.data(), out, in, bits);
}

void runGemmCase(cuda::GemmTarget target, const GemmCase &c) {
  SCOPED_TRACE(std::string(cuda::gemmTargetName(target)) +
               " m=" + std::to_string(c.m) + " n=" + std::to_string(c.n) +
               " k=" + std::to_string(c.k) +
               " group=" + std::to_string(c.group) +
               " bits=" + std::to_string(c.weightBits));
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(c.m * c.k);
  for (float &v : x)
    v = nd(rng());
  // One all-zero row: scale 0, every code 0.
  if (c.m > 2)
    std::fill(x.begin() + c.k, x.begin() + 2 * c.k, 0.0f);
  rt::QuantizedRows qx;
  rt::quantizeActivations(x.data(), c.m, c.k, 4, 1.0, qx,
                          rt::GemmPath::Portable);
  int64_t groups = c.group ? c.k / c.group : 1;
  std::vector<float> scales(c.n * groups);
  std::uniform_real_distribution<float> sd(0.001f, 0.1f);
  for (float &s : scales)
    s = sd(rng());
  auto ir = randomWeights(c.n, c.k, c.weightBits);
  rt::PackedWeights w;
  ASSERT_TRUE(rt::packWeights(ir.data(), scales.data(), c.n, c.k, c.weightBits,
                              c.group, w)
                  .ok());
  std::vector<float> bias(c.n), residual(c.m * c.n);
  for (float &v : bias)
    v = nd(rng());
  for (float &v : residual)
    v = nd(rng());
  std::vector<float> expected(c.m * c.n);
  ASSERT_TRUE(rt::intGemm(qx, w, c.bias ? bias.data() : nullptr,
                          expected.data(), rt::GemmPath::Portable,
                          c.residual ? residual.data() : nullptr)
                  .ok());

  cuda::CudaWeights cw;
  ASSERT_TRUE(cuda::packWeights(target, w, cw).ok());
  std::vector<uint8_t> codes;
  ASSERT_TRUE(cuda::packActivations(qx, cw.kPadded, codes).ok());
  std::vector<float> y(c.m * c.n, std::numeric_limits<float>::quiet_NaN());
  cuda::GemmParams p;
  p.m = static_cast<int>(c.m);
  p.n = static_cast<int>(c.n);
  p.kPadded = static_cast<int>(cw.kPadded);
  p.groupSteps = static_cast<int>(cw.groupSteps);
  p.groups = static_cast<int>(cw.groups);
  p.nPadded = static_cast<int>(cw.nPadded);
  p.a = codes.data();
  p.aScale = qx.scales.data();
  p.b = cw.tiles.data();
  p.bScale = cw.scales.data();
  p.bias = c.bias ? bias.data() : nullptr;
  p.residual = c.residual ? residual.data() : nullptr;
  p.y = y.data();
  LaunchConfig cfg;
  cfg.gridX = static_cast<int>(cw.nPadded / cuda::gemm::kBlockN);
  cfg.gridY =
      static_cast<int>((c.m + cuda::gemm::kBlockM - 1) / cuda::gemm::kBlockM);
  cfg.threads = cuda::gemm::kThreads;
  cfg.sharedBytes = cuda::gemm::kSharedBytes;
  std::string error = cuda::emu::launch(cfg, [&] {
    if (target == cuda::GemmTarget::Sm80S4)
      cuda::w4a4Gemm<cuda::Sm80S4>(p);
    else
      cuda::w4a4Gemm<cuda::Sm90S8>(p);
  });
  ASSERT_EQ(error, "");
  // Every output written (no NaN left), each equal to the CPU's bits.
  int64_t mismatches = 0;
  for (int64_t i = 0; i < c.m * c.n; ++i) {
    uint32_t got, want;
    std::memcpy(&got, &y[i], 4);
    std::memcpy(&want, &expected[i], 4);
    if (got != want && mismatches++ < 5)
      ADD_FAILURE() << "y[" << i / c.n << ", " << i % c.n << "] = " << y[i]
                    << ", the CPU runtime's " << expected[i];
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(CudaGemmEmulated, Sm80S4EqualsTheCpuRuntimeBitForBit) {
  for (const GemmCase &c : cuda::test::kGemmCases)
    runGemmCase(cuda::GemmTarget::Sm80S4, c);
}

TEST(CudaGemmEmulated, Sm90S8EqualsTheCpuRuntimeBitForBit) {
  for (const GemmCase &c : cuda::test::kGemmCases)
    runGemmCase(cuda::GemmTarget::Sm90S8, c);
}

TEST(CudaGemmEmulated, PackingRefusesWhatTheKernelsCannotRun) {
  std::vector<float> s(64, 1.0f);
  auto ir = randomWeights(8, 96, 8);
  rt::PackedWeights w;
  ASSERT_TRUE(rt::packWeights(ir.data(), s.data(), 8, 96, 8, 0, w).ok());
  cuda::CudaWeights cw;
  EXPECT_NE(cuda::packWeights(cuda::GemmTarget::Sm80S4, w, cw)
                .message()
                .find("at most 4 bits"),
            std::string::npos);
  auto ir4 = randomWeights(8, 96, 4);
  ASSERT_TRUE(rt::packWeights(ir4.data(), s.data(), 8, 96, 4, 32, w).ok());
  EXPECT_NE(cuda::packWeights(cuda::GemmTarget::Sm90S8, w, cw)
                .message()
                .find("multiple of 64"),
            std::string::npos);
}

} // namespace
