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

/// One layer's K or V cache for decoding, [batch, kvHeads, capacity,
/// headDim] by position: fp32 values, or (codes set) the 4-bit KV cache of
/// a model whose K and V are quantized per (token, KV head) (w4a4
/// quantize-kv with group = head_dim): s4 codes two per byte (the even
/// element in the low nibble) and one float scale per (batch, KV head,
/// position). An element reads as float(code) * scale: exactly the value
/// the CPU's fake quantization (rt::quantizeRows) gives, so the cache holds
/// what the CPU's fp32 cache holds, in an eighth of the bytes.
struct KvCacheView {
  float *values = nullptr;
  uint8_t *codes = nullptr;
  float *scales = nullptr;
  int capacity = 0;
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
  /// Decoding (cached): keys and values after the prefix come from the
  /// caches, which already hold this call's tokens at positions past ..
  /// past + seq - 1 (kvAppend ran first); k and v are unused. Token t of
  /// the sequence sees the prefix and cache positions 0 .. past + t.
  bool cached = false;
  int past = 0;
  KvCacheView cacheK, cacheV;
};

struct KvAppendParams {
  const float *x = nullptr; // [batch * seq, kvHeads * headDim]
  KvCacheView cache;
  int seq = 0, kvHeads = 0, headDim = 0, past = 0;
  /// The 4-bit cache's quantizer (rt::quantizeRows over each head's
  /// headDim values).
  int bits = 4;
  float clip = 1.0f;
};

namespace attn {
constexpr int kThreads = 128;
/// Shared bytes of attention for `keys` = prefix + seq (+ past).
constexpr int sharedBytes(int keys) {
  return ((keys + 1) & ~1) * 4 + kThreads * 8;
}
constexpr int kAppendThreads = 32;

/// A key or value row as attention reads it: floats, or 4-bit codes (two
/// per byte, the even element low) with their scale.
struct KvRow {
  const float *f;
  const uint8_t *c;
  float s;
};
W4A4_DEVICE float element(const KvRow &r, int d) {
  if (r.f)
    return r.f[d];
  uint8_t byte = r.c[d / 2];
  int nibble = (d & 1) ? byte >> 4 : byte & 0xf;
  return dev::mulRn(static_cast<float>(nibble >= 8 ? nibble - 16 : nibble),
                    r.s);
}

/// Row `pos` of (batch b, KV head g) of a cache.
W4A4_DEVICE KvRow cacheRow(const KvCacheView &c, int kvHeads, int headDim,
                           int b, int g, int pos) {
  int64_t slot = (static_cast<int64_t>(b) * kvHeads + g) * c.capacity + pos;
  if (c.codes)
    return {nullptr, c.codes + slot * (headDim / 2), c.scales[slot]};
  return {c.values + slot * headDim, nullptr, 0.0f};
}
} // namespace attn

/// Writes this call's K (or V) rows into the cache at positions past ..
/// past + seq - 1: a copy, or per (token, KV head) 4-bit codes and a scale
/// with quantizeActivations' operations. Grid (batch * seq, kvHeads), 32
/// threads.
template <int Dummy = 0>
W4A4_KERNEL void W4A4_LAUNCH_BOUNDS(attn::kAppendThreads)
    kvAppend(KvAppendParams p) {
  using namespace producers;
  int row = dev::blockX(), g = dev::blockY(), tid = dev::threadX();
  int threads = dev::blockThreads();
  int b = row / p.seq, pos = p.past + row % p.seq;
  const float *x =
      p.x + static_cast<int64_t>(row) * p.kvHeads * p.headDim + g * p.headDim;
  int64_t slot =
      (static_cast<int64_t>(b) * p.kvHeads + g) * p.cache.capacity + pos;
  if (!p.cache.codes) {
    for (int d = tid; d < p.headDim; d += threads)
      p.cache.values[slot * p.headDim + d] = x[d];
    return;
  }
  // The producers' row quantizer on a row of headDim codes (slot's).
  auto *scratch = reinterpret_cast<float *>(dev::sharedBase());
  QuantizedOut out{p.cache.codes + slot * (p.headDim / 2),
                   p.cache.scales + slot, p.headDim, p.bits, p.clip};
  writeCodes(out, 0, p.headDim, blockAbsMax(x, p.headDim, scratch),
             [&](int d) { return x[d]; });
}

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
  int keysMax = p.prefix + (p.cached ? p.past : 0) + p.seq;
  auto *scratch = reinterpret_cast<double *>(scores + ((keysMax + 1) & ~1));
  int row = dev::blockX(), h = dev::blockY();
  int b = row / p.seq, t = row % p.seq;
  int g = h / (p.heads / p.kvHeads);
  int qWidth = p.heads * p.headDim, kvWidth = p.kvHeads * p.headDim;
  const bool cached = p.cached;
  const int kvHeads = p.kvHeads;
  int keys = p.prefix + (cached ? p.past : 0) + t + 1;
  const float *q = p.q + static_cast<int64_t>(row) * qWidth + h * p.headDim;
  // Key (or value) j: a prefix row, a row of this sequence, or (cached)
  // cache position j - prefix: a float row, or 4-bit codes and a scale.
  const int prefix = p.prefix, headDim = p.headDim, seqLen = p.seq;
  auto rowOf = [=](const float *seqRows, const float *prefixRows,
                   const KvCacheView &cache, int j) {
    attn::KvRow r{nullptr, nullptr, 0.0f};
    if (j < prefix) {
      r.f = prefixRows + static_cast<int64_t>(j) * kvWidth + g * headDim;
    } else if (!cached) {
      r.f = seqRows +
            (static_cast<int64_t>(b) * seqLen + j - prefix) * kvWidth +
            g * headDim;
    } else {
      r = attn::cacheRow(cache, kvHeads, headDim, b, g, j - prefix);
    }
    return r;
  };
  int tid = dev::threadX(), threads = dev::blockThreads();
  for (int j = tid; j < keys; j += threads) {
    attn::KvRow r = rowOf(p.k, p.kp, p.cacheK, j);
    float dot = 0;
    for (int d = 0; d < headDim; ++d)
      dot = dev::addRn(dot, dev::mulRn(q[d], attn::element(r, d)));
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
  for (int d = tid; d < headDim; d += threads) {
    float acc = 0;
    for (int j = 0; j < keys; ++j)
      acc = dev::addRn(
          acc, dev::mulRn(dev::mulRn(scores[j], inv),
                          attn::element(rowOf(p.v, p.vp, p.cacheV, j), d)));
    out[d] = acc;
  }
}

} // namespace w4a4::cuda

#endif // W4A4_CUDA_ATTENTION_CUH
