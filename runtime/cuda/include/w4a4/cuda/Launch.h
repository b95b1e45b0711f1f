//===- Launch.h - host entry points of the CUDA W4A4 kernels -----*- C++
//-*-===//
//
// Launchers of the kernels in Gemm.cuh, compiled by nvcc (lib/GemmSm80.cu
// for sm_80/86/89, lib/GemmSm90.cu for sm_90a). Shapes and pointers as in
// GemmParams; every pointer is device memory.
//
//===----------------------------------------------------------------------===//

#ifndef W4A4_CUDA_LAUNCH_H
#define W4A4_CUDA_LAUNCH_H

#include "w4a4/cuda/Attention.cuh"
#include "w4a4/cuda/Gemm.cuh"
#include "w4a4/cuda/Producers.cuh"
#include "w4a4/cuda/Rows.cuh"

#include <cuda_runtime.h>

namespace w4a4::cuda {

/// mma.sync m16n8k64 s4 (sm_80, sm_86, sm_89).
cudaError_t launchGemmSm80(const GemmParams &p, cudaStream_t stream);
/// 4-bit codes unpacked to s8, mma.sync m16n8k32 s8 (sm_90; runs on sm_80
/// and later).
cudaError_t launchGemmSm90(const GemmParams &p, cudaStream_t stream);

/// One block per row (lib/Blocks.cu, every target).
cudaError_t launchRmsNormQuantize(const RmsNormQuantizeParams &p,
                                  cudaStream_t stream);
cudaError_t launchSwigluQuantize(const SwigluQuantizeParams &p,
                                 cudaStream_t stream);
cudaError_t launchHadamardQuantize(const SwigluQuantizeParams &p,
                                   cudaStream_t stream);
cudaError_t launchRope(const RopeParams &p, cudaStream_t stream);
/// One block per (query row, head).
cudaError_t launchAttention(const AttentionParams &p, cudaStream_t stream);
/// This call's K or V rows into a layer's cache (before a cached attention).
cudaError_t launchKvAppend(const KvAppendParams &p, int batch,
                           cudaStream_t stream);
/// fp32 variants of the producers (p.rowsOut set) and fake quantization.
cudaError_t launchRmsNorm(const RmsNormQuantizeParams &p, cudaStream_t stream);
cudaError_t launchHadamardRows(const SwigluQuantizeParams &p,
                               cudaStream_t stream);
cudaError_t launchFakeQuant(const FakeQuantParams &p, cudaStream_t stream);
/// Rows.cuh: embedding, the row-wise tail, the fp32 linear.
cudaError_t launchEmbedding(const EmbeddingParams &p, cudaStream_t stream);
cudaError_t launchTailRows(const TailRowsParams &p, int batch,
                           cudaStream_t stream);
cudaError_t launchLinearF32(const LinearF32Params &p, cudaStream_t stream);

} // namespace w4a4::cuda

#endif // W4A4_CUDA_LAUNCH_H
