//===- Emulator.h - a SIMT emulator for runtime/cuda's kernels ---*- C++
//-*-===//
//
// Runs a kernel compiled as host C++ (Platform.cuh without nvcc) on the
// CPU: every block of the grid in turn, each thread of a block as a fiber
// (ucontext), switched only at the points where threads interact:
// __syncthreads (a barrier over the block), warp collectives (shuffles and
// mma.sync: computed once all lanes of the warp arrived, with the PTX ISA's
// fragment layouts) and cp.async waits. Shared memory is poisoned when a
// block starts and cp.async destinations when a copy is issued, so a kernel
// that reads before the data is there computes garbage. Misuse (a barrier
// some threads never reach, lanes of a warp at different collectives, a
// thread leaving while others wait) is an error, never a hang.
//
//===----------------------------------------------------------------------===//

#ifndef W4A4_TEST_CUDA_EMULATOR_H
#define W4A4_TEST_CUDA_EMULATOR_H

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace w4a4::cuda::emu {

struct LaunchConfig {
  int gridX = 1, gridY = 1;
  int threads = 32;
  size_t sharedBytes = 0;
};

/// Runs `kernel` (the kernel call, arguments bound) on every thread of every
/// block. Returns an empty string, or what went wrong.
std::string launch(const LaunchConfig &config,
                   const std::function<void()> &kernel);

/// The byte every shared-memory byte and every pending cp.async destination
/// holds until written.
constexpr unsigned char kPoison = 0xff;

/// The fragment layouts the MMA models use (PTX ISA, "Matrix Fragments for
/// mma.m16n8k64" with .s4 and "for mma.m16n8k32" with .s8): for lane l,
/// register r and element e of that register, the row and column of A
/// (16 x K), of B (K x 8) and of C/D (16 x 8).
struct Coord {
  int row, col;
};
Coord fragA(int k, int lane, int reg, int elem);
Coord fragB(int k, int lane, int reg, int elem);
Coord fragC(int lane, int reg);

} // namespace w4a4::cuda::emu

#endif // W4A4_TEST_CUDA_EMULATOR_H
