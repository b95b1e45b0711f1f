//===- Blocks.cu - the fp32 and producer kernels, compiled by nvcc --------===//

#include "w4a4/cuda/Launch.h"

namespace w4a4::cuda {

template __global__ void rmsNormQuantize<0>(RmsNormQuantizeParams);
template __global__ void swigluQuantize<0>(SwigluQuantizeParams);
template __global__ void hadamardQuantize<0>(SwigluQuantizeParams);
template __global__ void rope<0>(RopeParams);
template __global__ void attention<0>(AttentionParams);
template __global__ void kvAppend<0>(KvAppendParams);
template __global__ void rmsNorm<0>(RmsNormQuantizeParams);
template __global__ void hadamardRows<0>(SwigluQuantizeParams);
template __global__ void fakeQuant<0>(FakeQuantParams);
template __global__ void embedding<0>(EmbeddingParams);
template __global__ void tailRows<0>(TailRowsParams);
template __global__ void linearF32<0>(LinearF32Params);

cudaError_t launchRmsNormQuantize(const RmsNormQuantizeParams &p,
                                  cudaStream_t stream) {
  rmsNormQuantize<0><<<p.rows, producers::kThreads,
                       producers::rmsNormSharedBytes(), stream>>>(p);
  return cudaGetLastError();
}

cudaError_t launchSwigluQuantize(const SwigluQuantizeParams &p,
                                 cudaStream_t stream) {
  int shared = producers::swigluSharedBytes(p.cols);
  if (shared > 48 * 1024)
    return cudaErrorInvalidValue; // rows wider than 6,016: not yet
  swigluQuantize<0><<<p.rows, producers::kThreads, shared, stream>>>(p);
  return cudaGetLastError();
}

cudaError_t launchHadamardQuantize(const SwigluQuantizeParams &p,
                                   cudaStream_t stream) {
  int shared = producers::swigluSharedBytes(p.cols);
  if (shared > 48 * 1024)
    return cudaErrorInvalidValue;
  hadamardQuantize<0><<<p.rows, producers::kThreads, shared, stream>>>(p);
  return cudaGetLastError();
}

cudaError_t launchRope(const RopeParams &p, cudaStream_t stream) {
  rope<0><<<p.rows, 128, 0, stream>>>(p);
  return cudaGetLastError();
}

cudaError_t launchAttention(const AttentionParams &p, cudaStream_t stream) {
  int shared = attn::sharedBytes(p.prefix + (p.cached ? p.past : 0) + p.seq);
  if (shared > 48 * 1024)
    return cudaErrorInvalidValue;
  dim3 grid(static_cast<unsigned>(p.batch * p.seq),
            static_cast<unsigned>(p.heads));
  attention<0><<<grid, attn::kThreads, shared, stream>>>(p);
  return cudaGetLastError();
}

cudaError_t launchKvAppend(const KvAppendParams &p, int batch,
                           cudaStream_t stream) {
  if (p.headDim % 2 != 0 || p.past + p.seq > p.cache.capacity)
    return cudaErrorInvalidValue;
  dim3 grid(static_cast<unsigned>(batch * p.seq),
            static_cast<unsigned>(p.kvHeads));
  kvAppend<0>
      <<<grid, attn::kAppendThreads, attn::kAppendThreads * 4, stream>>>(p);
  return cudaGetLastError();
}

cudaError_t launchRmsNorm(const RmsNormQuantizeParams &p, cudaStream_t stream) {
  if (!p.rowsOut)
    return cudaErrorInvalidValue;
  rmsNorm<0><<<p.rows, producers::kThreads, producers::rmsNormSharedBytes(),
               stream>>>(p);
  return cudaGetLastError();
}

cudaError_t launchHadamardRows(const SwigluQuantizeParams &p,
                               cudaStream_t stream) {
  int shared = producers::swigluSharedBytes(p.cols);
  if (!p.rowsOut || shared > 48 * 1024)
    return cudaErrorInvalidValue;
  hadamardRows<0><<<p.rows, producers::kThreads, shared, stream>>>(p);
  return cudaGetLastError();
}

cudaError_t launchFakeQuant(const FakeQuantParams &p, cudaStream_t stream) {
  fakeQuant<0>
      <<<p.rows, producers::kThreads, producers::kThreads * 4, stream>>>(p);
  return cudaGetLastError();
}

cudaError_t launchEmbedding(const EmbeddingParams &p, cudaStream_t stream) {
  embedding<0><<<p.rows, 128, 0, stream>>>(p);
  return cudaGetLastError();
}

cudaError_t launchTailRows(const TailRowsParams &p, int batch,
                           cudaStream_t stream) {
  tailRows<0><<<batch * p.scored, 128, 0, stream>>>(p);
  return cudaGetLastError();
}

cudaError_t launchLinearF32(const LinearF32Params &p, cudaStream_t stream) {
  dim3 grid(static_cast<unsigned>(p.rows),
            static_cast<unsigned>((p.out + rows::kLinearThreads - 1) /
                                  rows::kLinearThreads));
  linearF32<0><<<grid, rows::kLinearThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

} // namespace w4a4::cuda
