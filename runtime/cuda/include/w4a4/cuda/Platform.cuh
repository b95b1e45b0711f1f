//===- Platform.cuh - what the CUDA kernels use of the GPU -------*- C++
//-*-===//
//
// The W4A4 CUDA kernels (runtime/cuda) are written against this header only:
// thread and block indices, barriers, warp shuffles, dynamic shared memory,
// cp.async, the tensor-core MMAs and exactly rounded float operations. Under
// nvcc each is the CUDA builtin or one inline-PTX instruction; compiled as
// host C++ (W4A4_CUDA_EMULATED, the test tree's SIMT emulator) each calls the
// emulator's model of that instruction (Emulated.h), so the same kernel
// source runs bit-exactly on the CPU.
//
//===----------------------------------------------------------------------===//

#ifndef W4A4_CUDA_PLATFORM_CUH
#define W4A4_CUDA_PLATFORM_CUH

#include <cstdint>

#if defined(__CUDACC__)
#define W4A4_DEVICE __device__ __forceinline__
#define W4A4_KERNEL __global__
#define W4A4_LAUNCH_BOUNDS(n) __launch_bounds__(n)
/// Loops over register arrays must unroll (else the arrays live in local
/// memory).
#define W4A4_UNROLL _Pragma("unroll")
#else
#include "w4a4/cuda/Emulated.h"

#include <cmath>
#include <cstring>
#define W4A4_DEVICE inline
#define W4A4_KERNEL
#define W4A4_LAUNCH_BOUNDS(n)
#define W4A4_UNROLL
#endif

namespace w4a4::cuda::dev {

#if defined(__CUDACC__)

W4A4_DEVICE int threadX() { return static_cast<int>(threadIdx.x); }
W4A4_DEVICE int blockX() { return static_cast<int>(blockIdx.x); }
W4A4_DEVICE int blockY() { return static_cast<int>(blockIdx.y); }
W4A4_DEVICE int blockThreads() { return static_cast<int>(blockDim.x); }
W4A4_DEVICE int laneId() { return static_cast<int>(threadIdx.x) & 31; }
W4A4_DEVICE int warpId() { return static_cast<int>(threadIdx.x) >> 5; }
W4A4_DEVICE void syncThreads() { __syncthreads(); }

/// The block's dynamic shared memory (the launch's shared-memory size).
W4A4_DEVICE unsigned char *sharedBase() {
  extern __shared__ __align__(16) unsigned char w4a4Shared[];
  return w4a4Shared;
}

W4A4_DEVICE float shflXor(float v, int mask) {
  return __shfl_xor_sync(0xffffffffu, v, mask);
}

/// Round-to-nearest-even float operations that are never contracted into
/// an FMA (the CPU runtime's epilogue, operation for operation).
W4A4_DEVICE float mulRn(float a, float b) { return __fmul_rn(a, b); }
W4A4_DEVICE float addRn(float a, float b) { return __fadd_rn(a, b); }
W4A4_DEVICE float divRn(float a, float b) { return __fdiv_rn(a, b); }
W4A4_DEVICE float subRn(float a, float b) { return __fsub_rn(a, b); }
W4A4_DEVICE float sqrtRn(float a) { return __fsqrt_rn(a); }
/// Round to the nearest integer, ties to even (std::nearbyint's default).
W4A4_DEVICE float rintRn(float a) { return rintf(a); }
W4A4_DEVICE float int2Float(int32_t v) { return __int2float_rn(v); }
W4A4_DEVICE float bitsToFloat(int32_t v) { return __int_as_float(v); }
W4A4_DEVICE double dmulRn(double a, double b) { return __dmul_rn(a, b); }
W4A4_DEVICE double daddRn(double a, double b) { return __dadd_rn(a, b); }
W4A4_DEVICE double ddivRn(double a, double b) { return __ddiv_rn(a, b); }
/// Natural log in float64: CUDA's log (within 1 ulp; glibc's on the host).
W4A4_DEVICE double dlog(double a) { return log(a); }

/// cp.async of 16 bytes from global to shared memory, zero-filled when
/// !valid; visible only after cpAsyncWait.
W4A4_DEVICE void cpAsync16(void *sharedDst, const void *globalSrc, bool valid) {
  unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(sharedDst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst),
               "l"(globalSrc), "r"(valid ? 16 : 0));
}
W4A4_DEVICE void cpAsyncCommit() { asm volatile("cp.async.commit_group;\n"); }
/// Waits until at most `Pending` committed groups are outstanding.
template <int Pending> W4A4_DEVICE void cpAsyncWait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(Pending));
}

/// D = A B + C, m16n8k64, A row-major s4, B column-major s4, int32 (sm_80,
/// sm_86, sm_89: native).
W4A4_DEVICE void mmaS4(int32_t d[4], const uint32_t a[4], const uint32_t b[2],
                       const int32_t c[4]) {
  asm volatile("mma.sync.aligned.m16n8k64.row.col.s32.s4.s4.s32 "
               "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};\n"
               : "=r"(d[0]), "=r"(d[1]), "=r"(d[2]), "=r"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]),
                 "r"(b[1]), "r"(c[0]), "r"(c[1]), "r"(c[2]), "r"(c[3]));
}

/// D = A B + C, m16n8k32, A row-major s8, B column-major s8, int32 (sm_80
/// and later; Hopper's integer tensor-core path).
W4A4_DEVICE void mmaS8(int32_t d[4], const uint32_t a[4], const uint32_t b[2],
                       const int32_t c[4]) {
  asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 "
               "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};\n"
               : "=r"(d[0]), "=r"(d[1]), "=r"(d[2]), "=r"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]),
                 "r"(b[1]), "r"(c[0]), "r"(c[1]), "r"(c[2]), "r"(c[3]));
}

#else // the SIMT emulator (test/cuda/emulator)

W4A4_DEVICE int threadX() { return emu::threadX(); }
W4A4_DEVICE int blockX() { return emu::blockX(); }
W4A4_DEVICE int blockY() { return emu::blockY(); }
W4A4_DEVICE int blockThreads() { return emu::blockThreads(); }
W4A4_DEVICE int laneId() { return emu::threadX() & 31; }
W4A4_DEVICE int warpId() { return emu::threadX() >> 5; }
W4A4_DEVICE void syncThreads() { emu::syncThreads(); }
W4A4_DEVICE unsigned char *sharedBase() { return emu::sharedBase(); }
W4A4_DEVICE float shflXor(float v, int mask) { return emu::shflXor(v, mask); }
// Host float operations are IEEE round-to-nearest-even; the runtime is built
// with -ffp-contract=off, so none becomes an FMA.
W4A4_DEVICE float mulRn(float a, float b) { return a * b; }
W4A4_DEVICE float addRn(float a, float b) { return a + b; }
W4A4_DEVICE float divRn(float a, float b) { return a / b; }
W4A4_DEVICE float subRn(float a, float b) { return a - b; }
W4A4_DEVICE float sqrtRn(float a) { return std::sqrt(a); }
W4A4_DEVICE float rintRn(float a) { return std::nearbyint(a); }
W4A4_DEVICE float int2Float(int32_t v) { return static_cast<float>(v); }
W4A4_DEVICE float bitsToFloat(int32_t v) {
  float f;
  std::memcpy(&f, &v, 4);
  return f;
}
W4A4_DEVICE double dmulRn(double a, double b) { return a * b; }
W4A4_DEVICE double daddRn(double a, double b) { return a + b; }
W4A4_DEVICE double ddivRn(double a, double b) { return a / b; }
W4A4_DEVICE double dlog(double a) { return std::log(a); }
W4A4_DEVICE void cpAsync16(void *sharedDst, const void *globalSrc, bool valid) {
  emu::cpAsync16(sharedDst, globalSrc, valid);
}
W4A4_DEVICE void cpAsyncCommit() { emu::cpAsyncCommit(); }
template <int Pending> W4A4_DEVICE void cpAsyncWait() {
  emu::cpAsyncWait(Pending);
}
W4A4_DEVICE void mmaS4(int32_t d[4], const uint32_t a[4], const uint32_t b[2],
                       const int32_t c[4]) {
  emu::mmaS4(d, a, b, c);
}
W4A4_DEVICE void mmaS8(int32_t d[4], const uint32_t a[4], const uint32_t b[2],
                       const int32_t c[4]) {
  emu::mmaS8(d, a, b, c);
}

#endif

} // namespace w4a4::cuda::dev

#endif // W4A4_CUDA_PLATFORM_CUH
