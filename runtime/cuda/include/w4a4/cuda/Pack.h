//===- Pack.h - host-side layouts of the CUDA W4A4 kernels -------*- C++
//-*-===//
//
// Plain C++ (no CUDA): what the compiler and the tests use to lay out data
// for runtime/cuda's kernels.
//
// Weights (Gemm.cuh) are stored per tile of 8 outputs x 64 inputs (256
// bytes; tiles of one output block follow each other in k), lane l of the
// warp holding bytes [8 l, 8 l + 8): with g = l / 4, c = l % 4 and output
// o = 8 * tile + g,
//  - Sm80S4 (mma m16n8k64 B fragments): bytes 0-3 the codes of inputs
//    8 c .. 8 c + 7, bytes 4-7 those of 32 + 8 c .. 32 + 8 c + 7;
//  - Sm90S8 (two mma m16n8k32 B fragments, unpacked to s8 in registers):
//    for each half h of the 64 inputs, 2 bytes with inputs 32 h + 4 c ..
//    + 3 and 2 bytes with 32 h + 16 + 4 c .. + 3;
// two's complement s4 codes, the lower input in the lower nibble. Outputs
// and inputs are padded with zero codes to multiples of 64.
//
//===----------------------------------------------------------------------===//

#ifndef W4A4_CUDA_PACK_H
#define W4A4_CUDA_PACK_H

#include "w4a4/runtime/Hadamard.h"
#include "w4a4/runtime/IntGemm.h"
#include "w4a4/runtime/Status.h"

#include <cstdint>
#include <vector>

namespace w4a4::cuda {

enum class GemmTarget { Sm80S4, Sm90S8 };
/// "sm80-s4" or "sm90-s8".
const char *gemmTargetName(GemmTarget target);

struct CudaWeights {
  GemmTarget target = GemmTarget::Sm80S4;
  int64_t n = 0, k = 0, nPadded = 0, kPadded = 0;
  int64_t groups = 1, groupSteps = 0;
  std::vector<uint8_t> tiles; // [nPadded / 8, kPadded / 64] tiles of 256 B
  std::vector<float> scales;  // [groups, nPadded]
};

/// The weights of a CPU PackedWeights (its codes and scales) in the
/// target's fragment order. Codes up to 4 bits; groups per channel or a
/// multiple of 64 inputs.
rt::Status packWeights(GemmTarget target, const rt::PackedWeights &w,
                       CudaWeights &out);

/// Row-quantized activations (the CPU's biased codes) as the kernels'
/// s4 rows of kPadded / 2 bytes (zero codes past the row's width).
rt::Status packActivations(const rt::QuantizedRows &x, int64_t kPadded,
                           std::vector<uint8_t> &codes);

/// What swigluQuantize (Producers.cuh) needs of a Hadamard of order
/// `size`: size = m * w, w a power of two, H_m's +-1 entries (empty for m =
/// 1) and 1 / sqrt(size) as HadamardRowTransform rounds it.
struct HadamardSpec {
  int64_t size = 0, m = 1, w = 1;
  std::vector<int8_t> base;
  float norm = 1.0f;
};
rt::Status hadamardSpec(int64_t size, HadamardSpec &spec);

} // namespace w4a4::cuda

#endif // W4A4_CUDA_PACK_H
