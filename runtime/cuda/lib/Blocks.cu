//===- Blocks.cu - the fp32 and producer kernels, compiled by nvcc --------===//

#include "w4a4/cuda/Launch.h"

namespace w4a4::cuda {

template __global__ void rmsNormQuantize<0>(RmsNormQuantizeParams);
template __global__ void swigluQuantize<0>(SwigluQuantizeParams);
template __global__ void hadamardQuantize<0>(SwigluQuantizeParams);
template __global__ void rope<0>(RopeParams);
template __global__ void attention<0>(AttentionParams);

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
  int shared = attn::sharedBytes(p.prefix + p.seq);
  if (shared > 48 * 1024)
    return cudaErrorInvalidValue;
  dim3 grid(static_cast<unsigned>(p.batch * p.seq),
            static_cast<unsigned>(p.heads));
  attention<0><<<grid, attn::kThreads, shared, stream>>>(p);
  return cudaGetLastError();
}

} // namespace w4a4::cuda
