//===- Attention.cuh - RoPE and causal attention ------------------*- C++
//-*-===//
//
// fp32 kernels of the attention block:
//  - rope: rotary embedding with the CPU runtime's cos/sin tables
//    (rt::ropeTables: float64 angles rounded to float, made on the host) and
//    rotateHeads' operations, so the result equals rt::rope bit for bit;
//  - attention: causal, grouped-query (heads / kvHeads queries per KV head),
//    with the Depth Registers' constant KV prefix that every token sees.
//    One block per (query, head): scores q . k_j * scale in shared memory,
//    softmax with the CPU's expPoly and its 16-lane summation order, then
//    out[d] = sum_j p_j v_j[d]. The CPU computes the two products with
//    OpenBLAS, whose blocking orders the sums differently: equal within
//    float rounding, not bit for bit.
//
//===----------------------------------------------------------------------===//

#ifndef W4A4_CUDA_ATTENTION_CUH
#define W4A4_CUDA_ATTENTION_CUH

#include "w4a4/cuda/Producers.cuh"

namespace w4a4::cuda {

struct RopeParams {
  const float *x = nullptr; // [rows = batch * seq, heads * headDim]
  float *out = nullptr;     // may alias x
  int rows = 0, seq = 0, heads = 0, headDim = 0;
  /// Tables [positions, headDim / 2]; row r (token s = r % seq) uses
  /// entry s + offset.
  const float *cosT = nullptr, *sinT = nullptr;
  int offset = 0;
  bool interleaved = false;
};

struct AttentionParams {
  const float *q = nullptr;  // [batch * seq, heads * headDim]
  const float *k = nullptr;  // [batch * seq, kvHeads * headDim]
  const float *v = nullptr;  // same
  const float *kp = nullptr; // [prefix, kvHeads * headDim] or null
  const float *vp = nullptr;
  float *out = nullptr; // [batch * seq, heads * headDim]
  int batch = 0, seq = 0, heads = 0, kvHeads = 0, headDim = 0, prefix = 0;
  float scale = 1.0f;
};

namespace attn {
constexpr int kThreads = 128;
/// Shared bytes of attention for `keys` = prefix + seq.
constexpr int sharedBytes(int keys) {
  return ((keys + 1) & ~1) * 4 + kThreads * 8;
}
} // namespace attn

template <int Dummy = 0>
W4A4_KERNEL void W4A4_LAUNCH_BOUNDS(128) rope(RopeParams p) {
  int row = dev::blockX(), half = p.headDim / 2;
  int s = row % p.seq, width = p.heads * p.headDim;
  const float *c = p.cosT + static_cast<int64_t>(s + p.offset) * half;
  const float *sn = p.sinT + static_cast<int64_t>(s + p.offset) * half;
  const float *x = p.x + static_cast<int64_t>(row) * width;
  float *o = p.out + static_cast<int64_t>(row) * width;
  for (int e = dev::threadX(); e < p.heads * half; e += dev::blockThreads()) {
    int h = e / half, i = e % half;
    int a = h * p.headDim + (p.interleaved ? 2 * i : i);
    int b = h * p.headDim + (p.interleaved ? 2 * i + 1 : i + half);
    float xa = x[a], xb = x[b];
    float ya = dev::subRn(dev::mulRn(xa, c[i]), dev::mulRn(xb, sn[i]));
    float yb = dev::addRn(dev::mulRn(xb, c[i]), dev::mulRn(xa, sn[i]));
    // Every thread read its pair before writing it (in place is safe: the
    // pairs are disjoint).
    o[a] = ya;
    o[b] = yb;
  }
}

template <int Dummy = 0>
W4A4_KERNEL void W4A4_LAUNCH_BOUNDS(attn::kThreads)
    attention(AttentionParams p) {
  using namespace producers;
  float *scores = reinterpret_cast<float *>(dev::sharedBase());
  int keysMax = p.prefix + p.seq;
  auto *scratch = reinterpret_cast<double *>(scores + ((keysMax + 1) & ~1));
  int row = dev::blockX(), h = dev::blockY();
  int b = row / p.seq, t = row % p.seq;
  int g = h / (p.heads / p.kvHeads);
  int qWidth = p.heads * p.headDim, kvWidth = p.kvHeads * p.headDim;
  int keys = p.prefix + t + 1;
  const float *q = p.q + static_cast<int64_t>(row) * qWidth + h * p.headDim;
  auto keyRow = [&](const float *seqRows, const float *prefixRows, int j) {
    return j < p.prefix
               ? prefixRows + static_cast<int64_t>(j) * kvWidth + g * p.headDim
               : seqRows +
                     (static_cast<int64_t>(b) * p.seq + j - p.prefix) *
                         kvWidth +
                     g * p.headDim;
  };
  int tid = dev::threadX(), threads = dev::blockThreads();
  for (int j = tid; j < keys; j += threads) {
    const float *k = keyRow(p.k, p.kp, j);
    float dot = 0;
    for (int d = 0; d < p.headDim; ++d)
      dot = dev::addRn(dot, dev::mulRn(q[d], k[d]));
    scores[j] = dev::mulRn(p.scale, dot);
  }
  dev::syncThreads();
  float mx = dev::bitsToFloat(static_cast<int32_t>(0xff800000u)); // -inf
  for (int j = tid; j < keys; j += threads)
    mx = scores[j] > mx ? scores[j] : mx;
  mx = blockMax(mx, reinterpret_cast<float *>(scratch));
  for (int j = tid; j < keys; j += threads)
    scores[j] = expPoly(dev::subRn(scores[j], mx));
  dev::syncThreads();
  // softmaxInPlace's sum: 16 lanes over the blocks of 16 (the tail into
  // the first lanes), then the lanes in order.
  auto *lanes = reinterpret_cast<float *>(scratch);
  if (tid < 16) {
    float s = 0;
    for (int j = tid; j < keys; j += 16)
      s = dev::addRn(s, scores[j]);
    lanes[tid] = s;
  }
  dev::syncThreads();
  float sum = 0;
  for (int l = 0; l < 16; ++l)
    sum = dev::addRn(sum, lanes[l]);
  float inv = dev::divRn(1.0f, sum);
  float *out = p.out + static_cast<int64_t>(row) * qWidth + h * p.headDim;
  for (int d = tid; d < p.headDim; d += threads) {
    float acc = 0;
    for (int j = 0; j < keys; ++j)
      acc = dev::addRn(
          acc, dev::mulRn(dev::mulRn(scores[j], inv), keyRow(p.v, p.vp, j)[d]));
    out[d] = acc;
  }
}

} // namespace w4a4::cuda

#endif // W4A4_CUDA_ATTENTION_CUH
