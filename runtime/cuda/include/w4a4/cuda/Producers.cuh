//===- Producers.cuh - fused producers of 4-bit activations ------*- C++
//-*-===//
//
// The kernels that write the W4A4 GEMM's activation operand (Gemm.cuh:
// s4 codes two per byte, one scale per row) straight from the fp32 values
// that produce it, the fp32 row never leaving the block:
//  - rmsNormQuantize: rms_norm (+ gain) -> per-token quantize;
//  - swigluQuantize: silu(gate) * up -> QuaRot's online Hadamard (optional:
//    sizes m * 2^k with the runtime's H_m, signs, inverse, stride) ->
//    per-token quantize.
// One block per row. Every float operation is the CPU runtime's
// (runtime/lib: rmsNormRow, swigluRow with expPoly, HadamardRowTransform,
// quantizeActivations) in its order, rounded to nearest and never
// contracted; reductions are exact (max) or in float64 (the sum of squares:
// per-thread partial sums combined in thread order, which equals the CPU's
// sequential float64 sum after rounding to float unless the two float64
// sums straddle a float rounding boundary).
//
//===----------------------------------------------------------------------===//

#ifndef W4A4_CUDA_PRODUCERS_CUH
#define W4A4_CUDA_PRODUCERS_CUH

#include "w4a4/cuda/Platform.cuh"

#include <type_traits>

namespace w4a4::cuda {

struct QuantizedOut {
  /// [rows, kPadded / 2]: s4 codes, two per byte (the even input low);
  /// codes past `cols` are 0.
  uint8_t *codes = nullptr;
  float *scales = nullptr; // [rows]
  int kPadded = 0;
  int bits = 4;
  float clip = 1.0f;
};

struct RmsNormQuantizeParams {
  const float *x = nullptr;    // [rows, cols]
  const float *gain = nullptr; // [cols] or null
  int rows = 0, cols = 0;
  float eps = 0;
  QuantizedOut out;
  /// Set: the normed rows [rows, cols] are written here in fp32 and `out`
  /// is unused (rmsNorm: the final norm before the fp LM head).
  float *rowsOut = nullptr;
};

struct SwigluQuantizeParams {
  const float *gate = nullptr, *up = nullptr; // [rows, cols] each
  int rows = 0, cols = 0;
  /// The Hadamard (hadamardSize 0: none): H_m (x) H_w with w = 2^k, m the
  /// order of `base` (m x m, +-1), applied per vector of size m * w taken
  /// with `stride`; y = x diag(signs) H / sqrt(size) (inverse: the
  /// transpose, signs after).
  int hadamardSize = 0, m = 1, w = 1, stride = 1;
  const int8_t *base = nullptr;
  const float *signs = nullptr;
  bool inverse = false;
  float norm = 1.0f;
  QuantizedOut out;
  /// Set: the transformed rows [rows, cols] are written here in fp32 and
  /// `out` is unused (hadamardRows).
  float *rowsOut = nullptr;
};

namespace producers {
constexpr int kThreads = 128;

/// Shared bytes of rmsNormQuantize (the reduction scratch).
constexpr int rmsNormSharedBytes() { return kThreads * 8; }
/// Shared bytes of swigluQuantize for rows of `cols` (two row buffers and
/// the reduction scratch).
constexpr int swigluSharedBytes(int cols) {
  return 2 * cols * 4 + kThreads * 8;
}

/// exp(x) with runtime/lib/VecMath.h's expPoly operations in its order.
W4A4_DEVICE float expPoly(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  const float shifter = 12582912.0f;
  float n = dev::subRn(dev::addRn(dev::mulRn(x, 1.44269504088896341f), shifter),
                       shifter);
  float r = dev::subRn(x, dev::mulRn(n, 0.693359375f));
  r = dev::subRn(r, dev::mulRn(n, -2.12194440e-4f));
  float p = 1.9875691500e-4f;
  p = dev::addRn(dev::mulRn(p, r), 1.3981999507e-3f);
  p = dev::addRn(dev::mulRn(p, r), 8.3334519073e-3f);
  p = dev::addRn(dev::mulRn(p, r), 4.1665795894e-2f);
  p = dev::addRn(dev::mulRn(p, r), 1.6666665459e-1f);
  p = dev::addRn(dev::mulRn(p, r), 5.0000001201e-1f);
  float y = dev::addRn(dev::addRn(dev::mulRn(p, dev::mulRn(r, r)), r), 1.0f);
  int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  return dev::mulRn(y, dev::bitsToFloat(bits));
}

/// The block's maximum of v (exact in any order); all threads get it.
W4A4_DEVICE float blockMax(float v, float *scratch) {
  int t = dev::threadX();
  scratch[t] = v;
  dev::syncThreads();
  if (t == 0) {
    float m = scratch[0];
    for (int i = 1; i < dev::blockThreads(); ++i)
      m = scratch[i] > m ? scratch[i] : m;
    scratch[0] = m;
  }
  dev::syncThreads();
  float m = scratch[0];
  dev::syncThreads();
  return m;
}

/// The block's sum of v in thread order, in float64; all threads get it.
W4A4_DEVICE double blockSum(double v, double *scratch) {
  int t = dev::threadX();
  scratch[t] = v;
  dev::syncThreads();
  if (t == 0) {
    double s = 0;
    for (int i = 0; i < dev::blockThreads(); ++i)
      s = dev::daddRn(s, scratch[i]);
    scratch[0] = s;
  }
  dev::syncThreads();
  double s = scratch[0];
  dev::syncThreads();
  return s;
}

/// max |x| of the n values x[0..n) spread over the block (exact in any
/// order); all threads get it.
W4A4_DEVICE float blockAbsMax(const float *x, int n, float *scratch) {
  float mx = 0;
  for (int c = dev::threadX(); c < n; c += dev::blockThreads()) {
    float a = x[c] < 0 ? -x[c] : x[c];
    mx = a > mx ? a : mx;
  }
  return blockMax(mx, scratch);
}

/// quantizeActivations' scale of a row whose max |value| is mx.
W4A4_DEVICE float scaleOf(float clip, float mx, float qmax) {
  return dev::divRn(dev::mulRn(clip, mx), qmax);
}

/// The code of y at scale s != 0 (quantizeActivations: nearest even,
/// clamped to [-qmax - 1, qmax]).
W4A4_DEVICE int code(float y, float s, float qmax) {
  float v = dev::rintRn(dev::divRn(y, s));
  float lo = -qmax - 1.0f;
  v = v < lo ? lo : v;
  v = qmax < v ? qmax : v;
  return static_cast<int>(v);
}

/// Row `row` of the output from `value(c)` (the producer's float for
/// column c, recomputed per pass) with the row's maximum |value| `mx`.
template <class Value>
W4A4_DEVICE void writeCodes(const QuantizedOut &out, int row, int cols,
                            float mx, Value value) {
  float qmax = static_cast<float>((1 << (out.bits - 1)) - 1);
  float s = scaleOf(out.clip, mx, qmax);
  if (dev::threadX() == 0)
    out.scales[row] = s;
  uint8_t *codes = out.codes + static_cast<int64_t>(row) * (out.kPadded / 2);
  for (int pair = dev::threadX(); pair < out.kPadded / 2;
       pair += dev::blockThreads()) {
    int c0 = 2 * pair, c1 = c0 + 1;
    int q0 = s != 0.0f && c0 < cols ? code(value(c0), s, qmax) : 0;
    int q1 = s != 0.0f && c1 < cols ? code(value(c1), s, qmax) : 0;
    codes[pair] = static_cast<uint8_t>((q0 & 0xf) | ((q1 & 0xf) << 4));
  }
}
} // namespace producers

namespace producers {
/// rmsNormQuantize and rmsNorm (p.rowsOut set).
W4A4_DEVICE void rmsNormRows(const RmsNormQuantizeParams &p) {
  auto *scratch = reinterpret_cast<double *>(dev::sharedBase());
  int row = dev::blockX(), t = dev::threadX(), threads = dev::blockThreads();
  const float *x = p.x + static_cast<int64_t>(row) * p.cols;
  double ss = 0;
  for (int c = t; c < p.cols; c += threads)
    ss = dev::daddRn(ss, dev::dmulRn(static_cast<double>(x[c]), x[c]));
  ss = blockSum(ss, scratch);
  float denom = dev::sqrtRn(dev::addRn(
      static_cast<float>(dev::ddivRn(ss, static_cast<double>(p.cols))), p.eps));
  auto value = [&](int c) {
    float y = dev::divRn(x[c], denom);
    return p.gain ? dev::mulRn(y, p.gain[c]) : y;
  };
  if (p.rowsOut) {
    float *y = p.rowsOut + static_cast<int64_t>(row) * p.cols;
    for (int c = t; c < p.cols; c += threads)
      y[c] = value(c);
    return;
  }
  float mx = 0;
  for (int c = t; c < p.cols; c += threads) {
    float a = value(c);
    a = a < 0 ? -a : a;
    mx = a > mx ? a : mx;
  }
  mx = blockMax(mx, reinterpret_cast<float *>(scratch));
  writeCodes(p.out, row, p.cols, mx, value);
}
} // namespace producers

template <int Dummy = 0>
W4A4_KERNEL void W4A4_LAUNCH_BOUNDS(producers::kThreads)
    rmsNormQuantize(RmsNormQuantizeParams p) {
  producers::rmsNormRows(p);
}

namespace producers {
/// swigluQuantize (Swiglu) and hadamardQuantize (the row as it is, in
/// p.gate): the row into shared memory, the optional Hadamard, quantize.
template <bool Swiglu>
W4A4_DEVICE void rowHadamardQuantize(const SwigluQuantizeParams &p) {
  float *tRow = reinterpret_cast<float *>(dev::sharedBase());
  float *uRow = tRow + p.cols;
  auto *scratch = reinterpret_cast<double *>(uRow + p.cols);
  int row = dev::blockX(), t = dev::threadX(), threads = dev::blockThreads();
  const float *gate = p.gate + static_cast<int64_t>(row) * p.cols;
  for (int c = t; c < p.cols; c += threads) {
    if constexpr (Swiglu) {
      float g = gate[c];
      tRow[c] = dev::mulRn(dev::divRn(g, dev::addRn(1.0f, expPoly(-g))),
                           p.up[static_cast<int64_t>(row) * p.cols + c]);
    } else {
      tRow[c] = gate[c];
    }
  }
  dev::syncThreads();
  if (p.hadamardSize > 0) {
    int size = p.hadamardSize;
    // Element i of vector v (HadamardRowTransform::apply's `at`).
    auto at = [&](int v, int i) {
      return (v / p.stride) * size * p.stride + v % p.stride + i * p.stride;
    };
    // Gather into vector order (signs first unless inverse).
    for (int e = t; e < p.cols; e += threads) {
      int v = e / size, i = e % size, src = at(v, i);
      float xv = tRow[src];
      uRow[e] = !p.inverse && p.signs ? dev::mulRn(xv, p.signs[src]) : xv;
    }
    dev::syncThreads();
    // Sylvester butterflies on each run of w (fastWalshHadamard's stages).
    for (int len = 1; len < p.w; len <<= 1) {
      for (int b = t; b < p.cols / 2; b += threads) {
        int run = b / (p.w / 2), k = b % (p.w / 2);
        int j = run * p.w + (k / len) * 2 * len + k % len;
        float a = uRow[j], c = uRow[j + len];
        uRow[j] = dev::addRn(a, c);
        uRow[j + len] = dev::subRn(a, c);
      }
      dev::syncThreads();
    }
    // H_m across the runs of each vector, sums in the CPU's order.
    float *src = uRow, *dst = tRow;
    if (p.m > 1) {
      for (int e = t; e < p.cols; e += threads) {
        int v = e / size, i = e % size, c = i / p.w, d = i % p.w;
        float acc = 0;
        for (int a = 0; a < p.m; ++a) {
          int h = p.inverse ? p.base[c * p.m + a] : p.base[a * p.m + c];
          acc = dev::addRn(acc, dev::mulRn(static_cast<float>(h),
                                           src[v * size + a * p.w + d]));
        }
        dst[e] = acc;
      }
      dev::syncThreads();
      float *swap = src;
      src = dst;
      dst = swap;
    }
    // Scale (signs after, for the inverse) and scatter back to row order.
    for (int e = t; e < p.cols; e += threads) {
      int v = e / size, i = e % size, to = at(v, i);
      float y = p.inverse && p.signs
                    ? dev::mulRn(dev::mulRn(src[e], p.norm), p.signs[to])
                    : dev::mulRn(src[e], p.norm);
      dst[to] = y;
    }
    dev::syncThreads();
    if (dst != tRow) {
      for (int c = t; c < p.cols; c += threads)
        tRow[c] = dst[c];
      dev::syncThreads();
    }
  }
  if (p.rowsOut) {
    float *y = p.rowsOut + static_cast<int64_t>(row) * p.cols;
    for (int c = t; c < p.cols; c += threads)
      y[c] = tRow[c];
    return;
  }
  float mx = blockAbsMax(tRow, p.cols, reinterpret_cast<float *>(scratch));
  writeCodes(p.out, row, p.cols, mx, [&](int c) { return tRow[c]; });
}
} // namespace producers

/// silu(gate) * up -> the optional Hadamard -> per-token quantize.
template <int Dummy = 0>
W4A4_KERNEL void W4A4_LAUNCH_BOUNDS(producers::kThreads)
    swigluQuantize(SwigluQuantizeParams p) {
  producers::rowHadamardQuantize<true>(p);
}

/// The row in p.gate (p.up unused) -> the optional Hadamard -> per-token
/// quantize: the o_proj input with QuaRot's cross-head Hadamard
/// (hadamardSize = heads, stride = head_dim).
template <int Dummy = 0>
W4A4_KERNEL void W4A4_LAUNCH_BOUNDS(producers::kThreads)
    hadamardQuantize(SwigluQuantizeParams p) {
  producers::rowHadamardQuantize<false>(p);
}

/// rms_norm (+ gain) in fp32 (p.rowsOut set): rmsNormQuantize's values.
template <int Dummy = 0>
W4A4_KERNEL void W4A4_LAUNCH_BOUNDS(producers::kThreads)
    rmsNorm(RmsNormQuantizeParams p) {
  producers::rmsNormRows(p);
}

/// The Hadamard of hadamardQuantize in fp32 (p.rowsOut set; hadamardSize 0
/// copies the rows): rt::hadamardRows.
template <int Dummy = 0>
W4A4_KERNEL void W4A4_LAUNCH_BOUNDS(producers::kThreads)
    hadamardRows(SwigluQuantizeParams p) {
  producers::rowHadamardQuantize<false>(p);
}

struct FakeQuantParams {
  const float *x = nullptr; // [rows, width]
  float *out = nullptr;     // may alias x
  int rows = 0, width = 0, bits = 4;
  float clip = 1.0f;
};

/// Quantize then dequantize each row of `width` values (rt::quantizeRows:
/// the KV cache's and the weight-only sites' fake quantization): y =
/// float(code) * s with quantizeActivations' scale and codes. One block per
/// row.
template <int Dummy = 0>
W4A4_KERNEL void W4A4_LAUNCH_BOUNDS(producers::kThreads)
    fakeQuant(FakeQuantParams p) {
  using namespace producers;
  auto *scratch = reinterpret_cast<float *>(dev::sharedBase());
  int row = dev::blockX(), t = dev::threadX(), threads = dev::blockThreads();
  const float *x = p.x + static_cast<int64_t>(row) * p.width;
  float qmax = static_cast<float>((1 << (p.bits - 1)) - 1);
  float s = scaleOf(p.clip, blockAbsMax(x, p.width, scratch), qmax);
  float *y = p.out + static_cast<int64_t>(row) * p.width;
  for (int c = t; c < p.width; c += threads)
    y[c] = s != 0.0f ? dev::mulRn(static_cast<float>(code(x[c], s, qmax)), s)
                     : 0.0f;
}

} // namespace w4a4::cuda

#endif // W4A4_CUDA_PRODUCERS_CUH
