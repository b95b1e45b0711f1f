//===- Gemm.cuh - W4A4 GEMM on tensor cores ----------------------*- C++
//-*-===//
//
// Y[t, o] = s_x[t] * sum_g s_w[g, o] * sum_(k in g) qx[t, k] * qw[o, k]
//           (+ bias[o]) (+ residual[t, o])
// with 4-bit codes in memory and int32 accumulation, in two variants:
//  - Sm80S4 (sm_80, sm_86, sm_89): mma.sync m16n8k64 on s4 codes.
//  - Sm90S8 (sm_90: no 4-bit tensor cores; an s4 MMA there is a software
//    helper): the same 4-bit codes unpacked to int8 in registers, mma.sync
//    m16n8k32 s8. Never an s4 MMA.
// The epilogue is the CPU runtime's (runtime/lib/IntGemm.cpp) operation for
// operation: sum = 0; per group sum = sum + float(acc_g) * s_w; y = sum *
// s_x; y = y + bias; y = y + residual, each rounded to nearest even and never
// contracted, so the result equals rt::intGemm bit for bit.
//
// Block tile 64 x 64 outputs, 128 threads (4 warps of 32 x 32: 2 x 4 MMA
// tiles of 16 x 8), k steps of 64. Activation tiles stream through shared
// memory in a kStages-deep cp.async pipeline (rows padded to 48 bytes: the
// fragment loads of a warp hit 32 distinct banks); weights come pre-packed
// in each variant's fragment order (Pack.h), so a lane loads its B
// registers for one MMA tile with one 8-byte load.
//
//===----------------------------------------------------------------------===//

#ifndef W4A4_CUDA_GEMM_CUH
#define W4A4_CUDA_GEMM_CUH

#include "w4a4/cuda/Platform.cuh"

#include <type_traits>
#if !defined(__CUDACC__)
#include <cstring>
#endif

namespace w4a4::cuda {

struct Sm80S4 {};
struct Sm90S8 {};

struct GemmParams {
  int m = 0, n = 0;
  /// Inputs padded with zero codes to a multiple of 64.
  int kPadded = 0;
  /// k steps of 64 per weight group (kPadded / 64 per channel), and groups.
  int groupSteps = 0, groups = 0;
  /// Outputs padded to a multiple of 64 (the weights' and scales' width).
  int nPadded = 0;
  /// [m, kPadded / 2]: s4 codes, two per byte, the even input in the low
  /// nibble.
  const uint8_t *a = nullptr;
  const float *aScale = nullptr; // [m]
  /// Weights in the variant's fragment order (packWeights, Pack.h).
  const uint8_t *b = nullptr;
  const float *bScale = nullptr;   // [groups, nPadded]
  const float *bias = nullptr;     // [n] or null
  const float *residual = nullptr; // [m, n] or null
  float *y = nullptr;              // [m, n]
};

namespace gemm {
constexpr int kBlockM = 64, kBlockN = 64, kThreads = 128, kStages = 3;
/// Bytes of one shared-memory activation row: 32 bytes of codes + 16 pad.
constexpr int kRowBytes = 48;
constexpr int kSharedBytes = kStages * kBlockM * kRowBytes;
/// Bytes of one (8 outputs x 64 inputs) weight tile in fragment order.
constexpr int kTileBytes = 256;

/// Four s4 codes (16 bits) as four s8 bytes: each nibble moves to its own
/// byte, then bit 3 of each byte is copied into bits 4-7 (x 0x1e: 8 * 30 =
/// 0xf0 stays inside its byte).
W4A4_DEVICE uint32_t s4x4ToS8x4(uint32_t v) {
  uint32_t t = (v & 0x000fu) | ((v & 0x00f0u) << 4) | ((v & 0x0f00u) << 8) |
               ((v & 0xf000u) << 12);
  return t | ((t & 0x08080808u) * 0x1eu);
}

W4A4_DEVICE uint32_t load32(const unsigned char *p) {
#if defined(__CUDACC__)
  return *reinterpret_cast<const uint32_t *>(p);
#else
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
#endif
}
W4A4_DEVICE uint32_t load16(const unsigned char *p) {
#if defined(__CUDACC__)
  return *reinterpret_cast<const uint16_t *>(p);
#else
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
#endif
}

/// Stage s of the activation pipeline: rows [row0, row0 + 64) of k step ks
/// (32 bytes each), one 16-byte cp.async per thread; rows past m are zeros.
W4A4_DEVICE void loadA(const GemmParams &p, unsigned char *shared, int stage,
                       int row0, int ks) {
  int t = dev::threadX(), row = t >> 1, chunk = t & 1;
  int r = row0 + row;
  bool valid = r < p.m;
  const uint8_t *src = valid ? p.a + static_cast<int64_t>(r) * (p.kPadded / 2) +
                                   ks * 32 + chunk * 16
                             : p.a;
  dev::cpAsync16(shared + (stage * kBlockM + row) * kRowBytes + chunk * 16, src,
                 valid);
}
} // namespace gemm

template <class Arch>
W4A4_KERNEL void W4A4_LAUNCH_BOUNDS(gemm::kThreads) w4a4Gemm(GemmParams p) {
  using namespace gemm;
  unsigned char *shared = dev::sharedBase();
  const int lane = dev::laneId(), warp = dev::warpId();
  const int gid = lane >> 2, tig = lane & 3;
  const int wm = warp >> 1, wn = warp & 1;
  const int row0 = dev::blockY() * kBlockM, col0 = dev::blockX() * kBlockN;
  const int kSteps = p.kPadded / 64;
  // The warp's first n8 weight tile; tiles of one output block are kSteps
  // apart in k.
  const int tile0 = (col0 + wn * 32) / 8;

  int32_t acc[2][4][4];
  float sums[2][4][4];
  W4A4_UNROLL
  for (int mi = 0; mi < 2; ++mi)
    W4A4_UNROLL
  for (int ni = 0; ni < 4; ++ni)
    W4A4_UNROLL
  for (int r = 0; r < 4; ++r) {
    acc[mi][ni][r] = 0;
    sums[mi][ni][r] = 0.0f;
  }

  W4A4_UNROLL
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < kSteps)
      loadA(p, shared, s, row0, s);
    dev::cpAsyncCommit();
  }
  for (int ks = 0; ks < kSteps; ++ks) {
    dev::cpAsyncWait<kStages - 2>();
    dev::syncThreads();
    // The stage computed in the previous step is free (every thread passed
    // the barrier): refill it.
    int next = ks + kStages - 1;
    if (next < kSteps)
      loadA(p, shared, next % kStages, row0, next);
    dev::cpAsyncCommit();

    const unsigned char *sA = shared + (ks % kStages) * kBlockM * kRowBytes;
    uint32_t bFrag[4][2];
    W4A4_UNROLL
    for (int ni = 0; ni < 4; ++ni) {
      const unsigned char *src =
          p.b + (static_cast<int64_t>(tile0 + ni) * kSteps + ks) * kTileBytes +
          lane * 8;
      bFrag[ni][0] = load32(src);
      bFrag[ni][1] = load32(src + 4);
    }
    W4A4_UNROLL
    for (int mi = 0; mi < 2; ++mi) {
      const unsigned char *rowLo = sA + (wm * 32 + mi * 16 + gid) * kRowBytes;
      const unsigned char *rowHi = rowLo + 8 * kRowBytes;
      if constexpr (std::is_same_v<Arch, Sm80S4>) {
        uint32_t a[4] = {load32(rowLo + tig * 4), load32(rowHi + tig * 4),
                         load32(rowLo + 16 + tig * 4),
                         load32(rowHi + 16 + tig * 4)};
        W4A4_UNROLL
        for (int ni = 0; ni < 4; ++ni)
          dev::mmaS4(acc[mi][ni], a, bFrag[ni], acc[mi][ni]);
      } else {
        // Two k32 halves; per half a lane holds 4 codes (16 bits) per A
        // register and per B register.
        W4A4_UNROLL
        for (int h = 0; h < 2; ++h) {
          int off = h * 16 + tig * 2;
          uint32_t a[4] = {s4x4ToS8x4(load16(rowLo + off)),
                           s4x4ToS8x4(load16(rowHi + off)),
                           s4x4ToS8x4(load16(rowLo + off + 8)),
                           s4x4ToS8x4(load16(rowHi + off + 8))};
          W4A4_UNROLL
          for (int ni = 0; ni < 4; ++ni) {
            uint32_t half = h ? bFrag[ni][1] : bFrag[ni][0];
            uint32_t b[2] = {s4x4ToS8x4(half & 0xffffu),
                             s4x4ToS8x4(half >> 16)};
            dev::mmaS8(acc[mi][ni], a, b, acc[mi][ni]);
          }
        }
      }
    }
    if ((ks + 1) % p.groupSteps == 0) {
      // The group's int32 sums join the float sums (the CPU's order).
      int g = ks / p.groupSteps;
      W4A4_UNROLL
      for (int ni = 0; ni < 4; ++ni)
        W4A4_UNROLL
      for (int j = 0; j < 2; ++j) {
        int col = col0 + wn * 32 + ni * 8 + tig * 2 + j;
        float scale = p.bScale[static_cast<int64_t>(g) * p.nPadded + col];
        W4A4_UNROLL
        for (int mi = 0; mi < 2; ++mi)
          W4A4_UNROLL
        for (int hi = 0; hi < 2; ++hi) {
          int r = hi * 2 + j;
          sums[mi][ni][r] =
              dev::addRn(sums[mi][ni][r],
                         dev::mulRn(dev::int2Float(acc[mi][ni][r]), scale));
          acc[mi][ni][r] = 0;
        }
      }
    }
  }

  W4A4_UNROLL
  for (int mi = 0; mi < 2; ++mi)
    W4A4_UNROLL
  for (int hi = 0; hi < 2; ++hi) {
    int row = row0 + wm * 32 + mi * 16 + gid + hi * 8;
    if (row >= p.m)
      continue;
    float xs = p.aScale[row];
    W4A4_UNROLL
    for (int ni = 0; ni < 4; ++ni)
      W4A4_UNROLL
    for (int j = 0; j < 2; ++j) {
      int col = col0 + wn * 32 + ni * 8 + tig * 2 + j;
      if (col >= p.n)
        continue;
      float v = dev::mulRn(sums[mi][ni][hi * 2 + j], xs);
      if (p.bias)
        v = dev::addRn(v, p.bias[col]);
      int64_t at = static_cast<int64_t>(row) * p.n + col;
      if (p.residual)
        v = dev::addRn(v, p.residual[at]);
      p.y[at] = v;
    }
  }
}

} // namespace w4a4::cuda

#endif // W4A4_CUDA_GEMM_CUH
