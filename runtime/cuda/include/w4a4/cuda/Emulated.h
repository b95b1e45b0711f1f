//===- Emulated.h - the GPU a kernel sees when compiled as host C++ -*- C++
//-*-===//
//
// What Platform.cuh calls when the kernels are compiled as host C++: the
// interface of a SIMT emulator. The test tree implements it
// (test/cuda/emulator: blocks of fibers, barriers, warp collectives, exact
// models of the MMA fragment layouts and of cp.async's commit/wait groups);
// the runtime itself never links it.
//
//===----------------------------------------------------------------------===//

#ifndef W4A4_CUDA_EMULATED_H
#define W4A4_CUDA_EMULATED_H

#include <cstdint>

namespace w4a4::cuda::emu {

int threadX();
int blockX();
int blockY();
int blockThreads();
/// __syncthreads: every thread of the block reaches it before any goes on.
void syncThreads();
/// The block's dynamic shared memory (poisoned when the block starts).
unsigned char *sharedBase();
/// __shfl_xor_sync over the full warp.
float shflXor(float v, int mask);
/// cp.async 16 bytes (zeros when !valid): the destination is poisoned at
/// issue and written when a cpAsyncWait retires the copy's group.
void cpAsync16(void *sharedDst, const void *globalSrc, bool valid);
void cpAsyncCommit();
void cpAsyncWait(int pending);
/// mma.sync.m16n8k64.row.col.s32.s4.s4.s32 and m16n8k32 ... s8.s8: each lane
/// passes its fragment registers; the product is computed once all 32 lanes
/// of the warp have arrived, with the PTX ISA's fragment layouts.
void mmaS4(int32_t d[4], const uint32_t a[4], const uint32_t b[2],
           const int32_t c[4]);
void mmaS8(int32_t d[4], const uint32_t a[4], const uint32_t b[2],
           const int32_t c[4]);

} // namespace w4a4::cuda::emu

#endif // W4A4_CUDA_EMULATED_H
