//===- Pack.cpp - host-side layouts of the CUDA W4A4 kernels --------------===//

#include "w4a4/cuda/Pack.h"

#include <cmath>
#include <optional>
#include <string>

namespace w4a4::cuda {

const char *gemmTargetName(GemmTarget target) {
  return target == GemmTarget::Sm80S4 ? "sm80-s4" : "sm90-s8";
}

namespace {
int64_t roundUp(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

/// Four or eight codes of output o from input k0 on (zeros past the
/// weight), as nibbles, the first in the lowest bits.
uint32_t nibbles(const rt::PackedWeights &w, int64_t o, int64_t k0, int count) {
  uint32_t v = 0;
  for (int i = 0; i < count; ++i) {
    int64_t k = k0 + i;
    int code = o < w.out && k < w.in ? w.code(o, k) : 0;
    v |= (static_cast<uint32_t>(code) & 0xfu) << (4 * i);
  }
  return v;
}

void put(std::vector<uint8_t> &bytes, int64_t at, uint32_t v, int count) {
  for (int i = 0; i < count; ++i)
    bytes[at + i] = static_cast<uint8_t>(v >> (8 * i));
}
} // namespace

rt::Status packWeights(GemmTarget target, const rt::PackedWeights &w,
                       CudaWeights &out) {
  if (w.bits > 4)
    return rt::Status::error("the CUDA W4A4 GEMM takes weight codes of at "
                             "most 4 bits, got " +
                             std::to_string(w.bits));
  if (w.group != 0 && w.group % 64 != 0)
    return rt::Status::error("the CUDA W4A4 GEMM takes weight groups of a "
                             "multiple of 64 inputs, got " +
                             std::to_string(w.group));
  out.target = target;
  out.n = w.out;
  out.k = w.in;
  out.nPadded = roundUp(w.out, 64);
  out.kPadded = roundUp(w.in, 64);
  out.groups = w.groups;
  out.groupSteps = (w.group ? w.group : out.kPadded) / 64;
  int64_t nTiles = out.nPadded / 8, kSteps = out.kPadded / 64;
  out.tiles.assign(nTiles * kSteps * 256, 0);
  for (int64_t t = 0; t < nTiles; ++t)
    for (int64_t ks = 0; ks < kSteps; ++ks)
      for (int lane = 0; lane < 32; ++lane) {
        int64_t o = t * 8 + lane / 4, c = lane % 4, k = ks * 64;
        int64_t at = ((t * kSteps + ks) * 32 + lane) * 8;
        if (target == GemmTarget::Sm80S4) {
          put(out.tiles, at, nibbles(w, o, k + 8 * c, 8), 4);
          put(out.tiles, at + 4, nibbles(w, o, k + 32 + 8 * c, 8), 4);
        } else {
          for (int h = 0; h < 2; ++h) {
            put(out.tiles, at + 4 * h, nibbles(w, o, k + 32 * h + 4 * c, 4), 2);
            put(out.tiles, at + 4 * h + 2,
                nibbles(w, o, k + 32 * h + 16 + 4 * c, 4), 2);
          }
        }
      }
  out.scales.assign(out.groups * out.nPadded, 0.0f);
  for (int64_t g = 0; g < out.groups; ++g)
    for (int64_t o = 0; o < w.out; ++o)
      out.scales[g * out.nPadded + o] = w.scales[o * w.groups + g];
  return {};
}

rt::Status packActivations(const rt::QuantizedRows &x, int64_t kPadded,
                           std::vector<uint8_t> &codes) {
  if (x.bits > 4)
    return rt::Status::error("the CUDA W4A4 GEMM takes activation codes of "
                             "at most 4 bits, got " +
                             std::to_string(x.bits));
  if (kPadded < x.cols || kPadded % 64 != 0)
    return rt::Status::error("padded width " + std::to_string(kPadded) +
                             " is not a multiple of 64 covering " +
                             std::to_string(x.cols));
  int bias = 1 << (x.bits - 1);
  codes.assign(x.rows * kPadded / 2, 0);
  for (int64_t r = 0; r < x.rows; ++r)
    for (int64_t c = 0; c < x.cols; ++c) {
      int code = x.codes[r * x.stride + c] - bias;
      codes[r * kPadded / 2 + c / 2] |= static_cast<uint8_t>(
          (static_cast<unsigned>(code) & 0xfu) << (4 * (c % 2)));
    }
  return {};
}

rt::Status hadamardSpec(int64_t size, HadamardSpec &spec) {
  std::optional<rt::HadamardFactors> f = rt::factorHadamardOrder(size);
  if (!f)
    return rt::Status::error("no Hadamard matrix of order " +
                             std::to_string(size));
  spec.size = size;
  spec.m = f->base;
  spec.w = int64_t{1} << f->log2Factor;
  spec.base =
      spec.m > 1 ? rt::buildHadamardMatrix(spec.m) : std::vector<int8_t>{};
  spec.norm = static_cast<float>(1.0 / std::sqrt(static_cast<double>(size)));
  return {};
}

} // namespace w4a4::cuda
