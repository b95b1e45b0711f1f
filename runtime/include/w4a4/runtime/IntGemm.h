//===- IntGemm.h - W4A4 integer GEMM ----------------------------*- C++ -*-===//
//
// Y[t, o] = s_x[t] * sum_g s_w[o, g] * sum_(i in g) qx[t, i] * qw[o, i]
// with b-bit symmetric codes, int32 accumulation, and one float epilogue
// shared by every path, so that the portable, AVX-512-VNNI and AMX-INT8
// paths are bit-identical (int32 sums are exact in any order).
//
//===----------------------------------------------------------------------===//

#ifndef W4A4_RUNTIME_INTGEMM_H
#define W4A4_RUNTIME_INTGEMM_H

#include "w4a4/runtime/Status.h"

#include <cstdint>
#include <functional>
#include <vector>

namespace w4a4::rt {

/// Per-row quantized activations. Codes are stored biased by 2^(bits-1)
/// (so unsigned, as VNNI's u8 x s8 products want); columns are padded with
/// the bias value up to a multiple of 64, rows up to a multiple of 32 (whole
/// AMX tiles).
struct QuantizedRows {
  int64_t rows = 0, cols = 0, stride = 0;
  int bits = 0;
  std::vector<uint8_t> codes; // [rows padded, stride], code + 2^(bits-1)
  std::vector<float> scales;  // [rows]
};

enum class GemmPath { Auto, Portable, Avx2, Avx512Vnni, AmxInt8 };
/// "auto", "portable", "avx2", "vnni" or "amx" (w4a4-run --int-gemm's
/// spelling).
const char *gemmPathName(GemmPath path);

/// Quantizes x [rows, cols] per row: s = clip * max|x| / (2^(b-1) - 1),
/// q = clamp(round_half_even(x / s), -2^(b-1), 2^(b-1) - 1); s = 0 gives q = 0.
/// The AVX-512 path (Auto when available) is bit-identical to the portable
/// one (IEEE division, round-to-nearest-even, exact max).
void quantizeActivations(const float *x, int64_t rows, int64_t cols, int bits,
                         double clip, QuantizedRows &out,
                         GemmPath path = GemmPath::Auto);

/// Weights in VNNI panels (the only copy every path reads), with scales
/// [out, groups] and the per-group code sums VNNI's bias correction needs.
/// Panels of codes up to 4 bits are stored two codes per byte (`nibbles`);
/// the GEMM paths unpack a column tile's panels to int8 in a per-thread
/// buffer (unpackBlocks) and run on that.
struct PackedWeights {
  int64_t out = 0, in = 0, stride = 0, group = 0, groups = 1;
  int bits = 0;
  /// Two codes per byte (bits <= 4): byte j of a panel's 32 holds the
  /// panel's code j in its low and code j + 32 in its high nibble (two's
  /// complement). Otherwise one int8 code per byte.
  bool nibbles = false;
  std::vector<float> scales;
  std::vector<int32_t> codeSums; // [out, groups]
  /// For each block of 16 outputs and each 4 inputs, a panel of 64 codes
  /// (16 outputs x 4 inputs); outputs and inputs (up to `stride`) padded
  /// with zeros. 64 bytes per panel, or 32 with `nibbles`.
  std::vector<uint8_t> panels;
  /// Codes of one block of 16 outputs (unpacked: one byte per code).
  int64_t blockCodes() const { return stride / 4 * 64; }
  /// The index of output o, input i among the unpacked codes.
  int64_t panelIndex(int64_t o, int64_t i) const {
    return ((o / 16) * (stride / 4) + i / 4) * 64 + (o % 16) * 4 + i % 4;
  }
  /// The code of output o, input i.
  int8_t code(int64_t o, int64_t i) const;
  /// Writes the int8 codes of blocks [b0, b0 + nb) to dst (nb *
  /// blockCodes() bytes, the unpacked layout).
  void unpackBlocks(int64_t b0, int64_t nb, int8_t *dst) const;
  /// Scales and code sums by group, outputs padded to a multiple of 16
  /// ([groups, outPadded]): 16 consecutive outputs load as one vector.
  int64_t outPadded = 0;
  std::vector<float> scalesByGroup;
  std::vector<int32_t> codeSumsByGroup;
  /// Bytes held (panels, scales, code sums).
  size_t bytes() const;
};

/// Packs b-bit codes [out, in] in the IR's layout (`w4a4.qlinear`): two's
/// complement, 8/bits codes per byte for bits 2 and 4 (lowest bits first),
/// else one code per byte; rows of ceil(in / codes_per_byte) bytes.
std::vector<int8_t> packCodes(const int *codes, int64_t out, int64_t in,
                              int bits);

/// Unpacks the IR's weight codes (`w4a4.qlinear`: two's complement, 8/bits
/// codes per byte for bits 2 and 4, lowest bits first, else one per byte)
/// and checks that every code is in range.
Status packWeights(const int8_t *irCodes, const float *scales, int64_t out,
                   int64_t in, int bits, int64_t group, PackedWeights &w);

/// True when the CPU (and this build) can run the AVX-512-VNNI path.
bool hasAvx512Vnni();
/// True when the CPU (and this build) can run the AVX2 path (for codes
/// whose u8 x s8 pair sums fit int16: 2 (2^a - 1) 2^(w-1) <= 32767, e.g.
/// 4-bit activations with weights up to 8 bits).
bool hasAvx2Gemm();
/// True when the CPU has AMX-INT8 and the OS grants this process the tile
/// state (Linux: arch_prctl(ARCH_REQ_XCOMP_PERM), asked on the first call).
bool hasAmxInt8();

/// The path GemmPath::Auto resolves to (process-wide; default Auto = the
/// fastest available). A preferred path that cannot run a given GEMM (CPU,
/// grouping) falls back to the next slower one. For benchmarks and
/// debugging (w4a4-run --int-gemm).
void setPreferredGemmPath(GemmPath path);

/// y [rows, out] = the quantized product (+ bias[out]) (+ residual[rows,
/// out]: a residual add in the epilogue, after the bias, exactly as a
/// separate add of the result would round). Auto picks AMX-INT8
/// when available and the grouping allows it (per channel, or groups of a
/// multiple of 64), else VNNI (per channel, or groups of a multiple of 4),
/// else AVX2 (the same groups, codes as hasAvx2Gemm says), else the
/// portable loops; an explicit path that cannot run is an error. Every
/// path gives the same bits.
Status intGemm(const QuantizedRows &x, const PackedWeights &w,
               const float *bias, float *y, GemmPath path = GemmPath::Auto,
               const float *residual = nullptr);

/// quantizeActivations() of rows that `produce(r, row)` writes, one row at
/// a time into a per-thread buffer of `cols` floats (a fused producer: the
/// fp32 rows are never stored). Bit-identical to producing every row and
/// then quantizing.
void quantizeProduced(int64_t rows, int64_t cols, int bits, double clip,
                      QuantizedRows &out,
                      const std::function<void(int64_t, float *)> &produce,
                      GemmPath path = GemmPath::Auto);

} // namespace w4a4::rt

#endif // W4A4_RUNTIME_INTGEMM_H
