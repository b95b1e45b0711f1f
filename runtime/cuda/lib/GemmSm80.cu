//===- GemmSm80.cu - the Sm80S4 W4A4 GEMM, compiled by nvcc ---------------===//

#include "w4a4/cuda/Launch.h"

namespace w4a4::cuda {

template __global__ void w4a4Gemm<Sm80S4>(GemmParams);

cudaError_t launchGemmSm80(const GemmParams &p, cudaStream_t stream) {
  dim3 grid(static_cast<unsigned>(p.nPadded / gemm::kBlockN),
            static_cast<unsigned>((p.m + gemm::kBlockM - 1) / gemm::kBlockM));
  w4a4Gemm<Sm80S4><<<grid, gemm::kThreads, gemm::kSharedBytes, stream>>>(p);
  return cudaGetLastError();
}

} // namespace w4a4::cuda
