//===- ProducersEmulatedTest.cpp - fused producers on the SIMT emulator ---===//
//
// rmsNormQuantize and swigluQuantize (runtime/cuda/.../Producers.cuh) on the
// emulator against the CPU runtime's unfused kernels (rt::rmsNorm,
// rt::swiglu, rt::hadamardRows, rt::quantizeActivations): codes and scales
// bit for bit.
//
//===----------------------------------------------------------------------===//

#include "emulator/Emulator.h"

#include "w4a4/cuda/Pack.h"
#include "w4a4/cuda/Producers.cuh"
#include "w4a4/runtime/Hadamard.h"
#include "w4a4/runtime/IntGemm.h"
#include "w4a4/runtime/Kernels.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

namespace {

using namespace w4a4;

std::mt19937 &rng() {
  static std::mt19937 g(7);
  return g;
}

std::vector<float> randomRows(int64_t n, float sigma) {
  std::normal_distribution<float> d(0.0f, sigma);
  std::vector<float> v(n);
  for (float &x : v)
    x = d(rng());
  return v;
}

/// The CPU's quantized rows as the kernels' layout.
void expectSameCodes(const rt::QuantizedRows &qx, int64_t kPadded,
                     const std::vector<uint8_t> &codes,
                     const std::vector<float> &scales) {
  std::vector<uint8_t> expected;
  ASSERT_TRUE(cuda::packActivations(qx, kPadded, expected).ok());
  int64_t bad = 0;
  for (size_t i = 0; i < expected.size(); ++i)
    if (expected[i] != codes[i] && bad++ < 5)
      ADD_FAILURE() << "code byte " << i << " (row " << i / (kPadded / 2)
                    << "): " << int(codes[i]) << ", the CPU's "
                    << int(expected[i]);
  EXPECT_EQ(bad, 0);
  ASSERT_EQ(scales.size(), qx.scales.size());
  EXPECT_EQ(0, std::memcmp(scales.data(), qx.scales.data(),
                           scales.size() * sizeof(float)));
}

TEST(CudaProducersEmulated, SwigluValuesEqualTheCpuRuntimeBitForBit) {
  // The quantized tests below see only codes; this one sees every float of
  // silu(g) * u (expPoly included) over the whole clamped range.
  int n = 4096;
  std::vector<float> gate(n), up(n, 1.0f), cpu(n), emulated(n);
  for (int i = 0; i < n; ++i)
    gate[i] = -100.0f + 200.0f * static_cast<float>(i) / n +
              static_cast<float>(i % 7) * 1e-3f;
  rt::swigluRow(gate.data(), up.data(), n, cpu.data());
  cuda::emu::LaunchConfig cfg;
  cfg.threads = 128;
  ASSERT_EQ(
      cuda::emu::launch(
          cfg,
          [&] {
            for (int i = cuda::dev::threadX(); i < n; i += 128) {
              float g = gate[i];
              emulated[i] = cuda::dev::mulRn(
                  cuda::dev::divRn(
                      g, cuda::dev::addRn(1.0f, cuda::producers::expPoly(-g))),
                  up[i]);
            }
          }),
      "");
  EXPECT_EQ(0, std::memcmp(cpu.data(), emulated.data(), n * sizeof(float)));
}

struct RmsCase {
  int rows, cols;
  bool gain;
  float clip;
};

TEST(CudaProducersEmulated, RmsNormQuantizeEqualsTheCpuRuntime) {
  for (RmsCase c :
       {RmsCase{5, 256, true, 1.0f}, RmsCase{3, 201, false, 0.9f},
        RmsCase{2, 1000, true, 1.0f}, RmsCase{1, 64, false, 1.0f}}) {
    SCOPED_TRACE("cols " + std::to_string(c.cols));
    auto x = randomRows(int64_t{c.rows} * c.cols, 3.0f);
    // A row of zeros (scale 0) and one of large values.
    if (c.rows > 2) {
      std::fill(x.begin(), x.begin() + c.cols, 0.0f);
      for (int i = 0; i < c.cols; ++i)
        x[c.cols + i] *= 1e4f;
    }
    auto gain = randomRows(c.cols, 1.0f);
    double eps = 1e-5;
    std::vector<float> normed(x.size());
    rt::rmsNorm(x.data(), c.gain ? gain.data() : nullptr, c.rows, c.cols, eps,
                normed.data());
    rt::QuantizedRows qx;
    rt::quantizeActivations(normed.data(), c.rows, c.cols, 4, c.clip, qx,
                            rt::GemmPath::Portable);

    int kPadded = (c.cols + 63) / 64 * 64;
    std::vector<uint8_t> codes(int64_t{c.rows} * kPadded / 2, 0xee);
    std::vector<float> scales(c.rows, -1.0f);
    cuda::RmsNormQuantizeParams p;
    p.x = x.data();
    p.gain = c.gain ? gain.data() : nullptr;
    p.rows = c.rows;
    p.cols = c.cols;
    p.eps = static_cast<float>(eps);
    p.out = {codes.data(), scales.data(), kPadded, 4, c.clip};
    cuda::emu::LaunchConfig cfg;
    cfg.gridX = c.rows;
    cfg.threads = cuda::producers::kThreads;
    cfg.sharedBytes = cuda::producers::rmsNormSharedBytes();
    ASSERT_EQ(cuda::emu::launch(cfg, [&] { cuda::rmsNormQuantize(p); }), "");
    expectSameCodes(qx, kPadded, codes, scales);
  }
}

struct SwigluCase {
  int rows, cols, hadamard, stride;
  bool signs, inverse;
};

TEST(CudaProducersEmulated, SwigluHadamardQuantizeEqualsTheCpuRuntime) {
  const SwigluCase cases[] = {
      {3, 768, 768, 1, true, false}, // 12 x 64: the bundled models' w2
      {2, 256, 256, 1, false, true}, // Sylvester, inverse
      {2, 384, 64, 2, true, true},   // strided (cross-head style)
      {4, 200, 0, 1, false, false},  // no Hadamard
      {1, 160, 20, 1, true, false},  // Paley 20, no power-of-two part
  };
  for (const SwigluCase &c : cases) {
    SCOPED_TRACE("cols " + std::to_string(c.cols) + " hadamard " +
                 std::to_string(c.hadamard));
    int64_t n = int64_t{c.rows} * c.cols;
    auto gate = randomRows(n, 4.0f), up = randomRows(n, 2.0f);
    gate[0] = -120.0f; // past expPoly's clamp
    gate[1] = 95.0f;
    std::vector<float> signs(c.cols);
    for (float &s : signs)
      s = rng()() & 1 ? 1.0f : -1.0f;
    std::vector<float> h(n);
    rt::swiglu(gate.data(), up.data(), n, h.data());
    if (c.hadamard) {
      ASSERT_TRUE(rt::hadamardRows(h.data(), c.rows, c.cols, c.hadamard,
                                   c.signs ? signs.data() : nullptr, c.inverse,
                                   h.data(), c.stride));
    }
    rt::QuantizedRows qx;
    rt::quantizeActivations(h.data(), c.rows, c.cols, 4, 1.0, qx,
                            rt::GemmPath::Portable);

    int kPadded = (c.cols + 63) / 64 * 64;
    std::vector<uint8_t> codes(int64_t{c.rows} * kPadded / 2, 0xee);
    std::vector<float> scales(c.rows, -1.0f);
    cuda::HadamardSpec spec;
    if (c.hadamard) {
      ASSERT_TRUE(cuda::hadamardSpec(c.hadamard, spec).ok());
    }
    cuda::SwigluQuantizeParams p;
    p.gate = gate.data();
    p.up = up.data();
    p.rows = c.rows;
    p.cols = c.cols;
    p.hadamardSize = c.hadamard;
    p.m = static_cast<int>(spec.m);
    p.w = static_cast<int>(spec.w);
    p.stride = c.stride;
    p.base = spec.base.data();
    p.signs = c.signs ? signs.data() : nullptr;
    p.inverse = c.inverse;
    p.norm = spec.norm;
    p.out = {codes.data(), scales.data(), kPadded, 4, 1.0f};
    cuda::emu::LaunchConfig cfg;
    cfg.gridX = c.rows;
    cfg.threads = cuda::producers::kThreads;
    cfg.sharedBytes = cuda::producers::swigluSharedBytes(c.cols);
    ASSERT_EQ(cuda::emu::launch(cfg, [&] { cuda::swigluQuantize(p); }), "");
    expectSameCodes(qx, kPadded, codes, scales);
  }
}

TEST(CudaProducersEmulated, CrossHeadHadamardQuantizeEqualsTheCpuRuntime) {
  // The o_proj input: QuaRot's cross-head Hadamard H_heads (x) I_headDim
  // (size = heads, stride = head_dim), then the row's quantization.
  struct Case {
    int rows, heads, headDim;
  };
  for (Case c : {Case{3, 4, 64}, Case{2, 8, 32}, Case{1, 12, 16}}) {
    int cols = c.heads * c.headDim;
    SCOPED_TRACE("heads " + std::to_string(c.heads));
    auto x = randomRows(int64_t{c.rows} * cols, 2.0f);
    std::vector<float> h(x.size());
    ASSERT_TRUE(rt::hadamardRows(x.data(), c.rows, cols, c.heads, nullptr,
                                 false, h.data(), c.headDim));
    rt::QuantizedRows qx;
    rt::quantizeActivations(h.data(), c.rows, cols, 4, 1.0, qx,
                            rt::GemmPath::Portable);
    int kPadded = (cols + 63) / 64 * 64;
    std::vector<uint8_t> codes(int64_t{c.rows} * kPadded / 2, 0xee);
    std::vector<float> scales(c.rows, -1.0f);
    cuda::HadamardSpec spec;
    ASSERT_TRUE(cuda::hadamardSpec(c.heads, spec).ok());
    cuda::SwigluQuantizeParams p;
    p.gate = x.data();
    p.rows = c.rows;
    p.cols = cols;
    p.hadamardSize = c.heads;
    p.m = static_cast<int>(spec.m);
    p.w = static_cast<int>(spec.w);
    p.stride = c.headDim;
    p.base = spec.base.data();
    p.norm = spec.norm;
    p.out = {codes.data(), scales.data(), kPadded, 4, 1.0f};
    cuda::emu::LaunchConfig cfg;
    cfg.gridX = c.rows;
    cfg.threads = cuda::producers::kThreads;
    cfg.sharedBytes = cuda::producers::swigluSharedBytes(cols);
    ASSERT_EQ(cuda::emu::launch(cfg, [&] { cuda::hadamardQuantize(p); }), "");
    expectSameCodes(qx, kPadded, codes, scales);
  }
}

} // namespace
