//===- GemmCases.h - the W4A4 GEMM cases the CUDA checks share ---*- C++
//-*-===//
//
// One list for the emulated tests (GemmEmulatedTest.cpp) and the device
// check (gpu/GemmCheck.cu, which adds larger shapes), so that the GPU runs
// the cases the emulator verified.
//
//===----------------------------------------------------------------------===//

#ifndef W4A4_TEST_CUDA_GEMMCASES_H
#define W4A4_TEST_CUDA_GEMMCASES_H

#include <cstdint>

namespace w4a4::cuda::test {

struct GemmCase {
  int64_t m, n, k;
  int weightBits;
  int64_t group;
  bool bias, residual;
};

constexpr GemmCase kGemmCases[] = {
    // One row, one output tile.
    {1, 8, 64, 4, 0, false, false},
    // Ragged: m, n not multiples of the tile, k padded 200 -> 256 (a
    // partial last k step), bias.
    {37, 72, 200, 4, 0, true, false},
    // Several blocks both ways, more k steps than pipeline stages,
    // residual, 3-bit weights.
    {130, 136, 320, 3, 0, false, true},
    // Weight groups of 64 and 128 inputs.
    {70, 64, 256, 4, 64, true, true},
    {65, 128, 384, 4, 128, false, false},
};

} // namespace w4a4::cuda::test

#endif // W4A4_TEST_CUDA_GEMMCASES_H
