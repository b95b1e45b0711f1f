//===- IntGemm.cpp - W4A4 integer GEMM ------------------------------------===//

#include "w4a4/runtime/IntGemm.h"

#include <algorithm>
#include <atomic>
#if defined(__x86_64__)
#include <cpuid.h>
#endif
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace w4a4::rt {

namespace {
constexpr int64_t kAlign = 64;
int64_t padded(int64_t n) { return (n + kAlign - 1) / kAlign * kAlign; }
/// Activation rows are padded to whole AMX row tiles (two of 16 rows).
constexpr int64_t kRowAlign = 32;
int64_t paddedRows(int64_t n) {
  return (n + kRowAlign - 1) / kRowAlign * kRowAlign;
}
} // namespace

namespace {

/// DESIGN.md's activation code of one value (s != 0), stored + bias.
inline uint8_t biasedCode(float x, float s, float qmax, int bias) {
  float v = std::nearbyint(x / s);
  v = std::min(std::max(v, -qmax - 1), qmax);
  return static_cast<uint8_t>(static_cast<int>(v) + bias);
}

/// One row, portable: the definition.
void quantizeRowPortable(const float *xr, int64_t cols, float clipf, float qmax,
                         int bias, uint8_t *q, float &scale) {
  float mx = 0;
  for (int64_t c = 0; c < cols; ++c)
    mx = std::max(mx, std::fabs(xr[c]));
  float s = clipf * mx / qmax;
  scale = s;
  if (s == 0)
    return; // all codes 0 (stored as the bias)
  for (int64_t c = 0; c < cols; ++c)
    q[c] = biasedCode(xr[c], s, qmax, bias);
}

#if defined(__x86_64__) && defined(__GNUC__)
/// One row, AVX-512: the same operations on 16 lanes (max is exact in any
/// order; division and round-to-nearest-even are IEEE), so the codes and
/// the scale equal the portable path's bit for bit.
__attribute__((target("avx512f,avx512bw"))) void
quantizeRowAvx512(const float *xr, int64_t cols, float clipf, float qmax,
                  int bias, uint8_t *q, float &scale) {
  __m512 mv = _mm512_setzero_ps();
  int64_t c = 0;
  for (; c + 16 <= cols; c += 16)
    mv = _mm512_max_ps(mv, _mm512_abs_ps(_mm512_loadu_ps(xr + c)));
  float mx = _mm512_reduce_max_ps(mv);
  for (; c < cols; ++c)
    mx = std::max(mx, std::fabs(xr[c]));
  float s = clipf * mx / qmax;
  scale = s;
  if (s == 0)
    return;
  const __m512 sv = _mm512_set1_ps(s), lo = _mm512_set1_ps(-qmax - 1),
               hi = _mm512_set1_ps(qmax);
  const __m512i bv = _mm512_set1_epi32(bias);
  for (c = 0; c + 16 <= cols; c += 16) {
    __m512 v = _mm512_div_ps(_mm512_loadu_ps(xr + c), sv);
    v = _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
    __m512i code = _mm512_add_epi32(_mm512_cvtps_epi32(v), bv);
    _mm_storeu_si128(reinterpret_cast<__m128i *>(q + c),
                     _mm512_cvtepi32_epi8(code));
  }
  for (; c < cols; ++c)
    q[c] = biasedCode(xr[c], s, qmax, bias);
}

bool hasAvx512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") &&
         __builtin_cpu_supports("avx512bw");
}

/// One row, AVX2: the AVX-512 row's operations on 8 lanes (bit-identical to
/// both).
__attribute__((target("avx2"))) void quantizeRowAvx2(const float *xr,
                                                     int64_t cols, float clipf,
                                                     float qmax, int bias,
                                                     uint8_t *q, float &scale) {
  const __m256 absMask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 mv = _mm256_setzero_ps();
  int64_t c = 0;
  for (; c + 8 <= cols; c += 8)
    mv = _mm256_max_ps(mv, _mm256_and_ps(_mm256_loadu_ps(xr + c), absMask));
  float lanes[8];
  _mm256_storeu_ps(lanes, mv);
  float mx = 0;
  for (float l : lanes)
    mx = std::max(mx, l);
  for (; c < cols; ++c)
    mx = std::max(mx, std::fabs(xr[c]));
  float s = clipf * mx / qmax;
  scale = s;
  if (s == 0)
    return;
  const __m256 sv = _mm256_set1_ps(s), lo = _mm256_set1_ps(-qmax - 1),
               hi = _mm256_set1_ps(qmax);
  const __m256i bv = _mm256_set1_epi32(bias);
  for (c = 0; c + 8 <= cols; c += 8) {
    __m256 v = _mm256_div_ps(_mm256_loadu_ps(xr + c), sv);
    v = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
    __m256i code = _mm256_add_epi32(_mm256_cvtps_epi32(v), bv);
    // Codes are 0..255: pack to bytes (each 128-bit lane keeps its 4).
    __m256i packed = _mm256_packus_epi16(_mm256_packus_epi32(code, code),
                                         _mm256_setzero_si256());
    int32_t low = _mm256_extract_epi32(packed, 0),
            high = _mm256_extract_epi32(packed, 4);
    std::memcpy(q + c, &low, 4);
    std::memcpy(q + c + 4, &high, 4);
  }
  for (; c < cols; ++c)
    q[c] = biasedCode(xr[c], s, qmax, bias);
}

bool hasAvx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2");
}
#endif

} // namespace

namespace {
/// One row's quantizer: its output shape and the fastest bit-identical
/// implementation for `path`.
struct RowQuantizer {
  int bias;
  float qmax, clip;
  void (*row)(const float *, int64_t, float, float, int, uint8_t *, float &);

  RowQuantizer(int64_t rows, int64_t cols, int bits, double clipRatio,
               QuantizedRows &out, GemmPath path)
      : bias(1 << (bits - 1)), qmax(static_cast<float>(bias - 1)),
        clip(static_cast<float>(clipRatio)), row(&quantizeRowPortable) {
    out.rows = rows;
    out.cols = cols;
    out.stride = padded(cols);
    out.bits = bits;
    out.codes.assign(paddedRows(rows) * out.stride, static_cast<uint8_t>(bias));
    out.scales.assign(rows, 0.0f);
#if defined(__x86_64__) && defined(__GNUC__)
    static const bool avx512 = hasAvx512(), avx2 = hasAvx2();
    if (path != GemmPath::Portable && avx512)
      row = &quantizeRowAvx512;
    else if (path != GemmPath::Portable && avx2)
      row = &quantizeRowAvx2;
#endif
  }
  void operator()(const float *x, int64_t cols, QuantizedRows &out,
                  int64_t r) const {
    row(x, cols, clip, qmax, bias, out.codes.data() + r * out.stride,
        out.scales[r]);
  }
};
} // namespace

void quantizeActivations(const float *x, int64_t rows, int64_t cols, int bits,
                         double clip, QuantizedRows &out, GemmPath path) {
  RowQuantizer quantize(rows, cols, bits, clip, out, path);
#pragma omp parallel for schedule(static) if (rows * cols > 16384)
  for (int64_t r = 0; r < rows; ++r)
    quantize(x + r * cols, cols, out, r);
}

void quantizeProduced(int64_t rows, int64_t cols, int bits, double clip,
                      QuantizedRows &out,
                      const std::function<void(int64_t, float *)> &produce,
                      GemmPath path) {
  RowQuantizer quantize(rows, cols, bits, clip, out, path);
#pragma omp parallel if (rows * cols > 16384)
  {
    std::vector<float> buffer(static_cast<size_t>(cols));
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      produce(r, buffer.data());
      quantize(buffer.data(), cols, out, r);
    }
  }
}

std::vector<int8_t> packCodes(const int *codes, int64_t out, int64_t in,
                              int bits) {
  int64_t perByte = (bits == 2 || bits == 4) ? 8 / bits : 1;
  int64_t rowBytes = (in + perByte - 1) / perByte;
  std::vector<int8_t> packed(out * rowBytes, 0);
  for (int64_t o = 0; o < out; ++o)
    for (int64_t i = 0; i < in; ++i) {
      int c = codes[o * in + i];
      int8_t &byte = packed[o * rowBytes + i / perByte];
      if (perByte == 1) {
        byte = static_cast<int8_t>(c);
        continue;
      }
      uint8_t raw = static_cast<uint8_t>(c & ((1 << bits) - 1));
      byte = static_cast<int8_t>(static_cast<uint8_t>(byte) |
                                 (raw << ((i % perByte) * bits)));
    }
  return packed;
}

Status packWeights(const int8_t *irCodes, const float *scales, int64_t out,
                   int64_t in, int bits, int64_t group, PackedWeights &w) {
  if (bits < 2 || bits > 8)
    return Status::error("weight bits must be in [2, 8], got " +
                         std::to_string(bits));
  if (group < 0 || (group > 0 && in % group != 0))
    return Status::error("group " + std::to_string(group) +
                         " does not divide the input dimension " +
                         std::to_string(in));
  int64_t perByte = (bits == 2 || bits == 4) ? 8 / bits : 1;
  int64_t rowBytes = (in + perByte - 1) / perByte;
  w.out = out;
  w.in = in;
  w.stride = padded(in);
  w.bits = bits;
  w.group = group;
  w.groups = group ? in / group : 1;
  int64_t blocks = (out + 15) / 16, k4s = w.stride / 4;
  w.nibbles = bits <= 4;
  w.panels.assign(blocks * k4s * (w.nibbles ? 32 : 64), 0);
  w.scales.assign(scales, scales + out * w.groups);
  w.codeSums.assign(out * w.groups, 0);
  int lo = -(1 << (bits - 1)), hi = (1 << (bits - 1)) - 1;
  for (int64_t o = 0; o < out; ++o)
    for (int64_t i = 0; i < in; ++i) {
      int code;
      if (perByte == 1) {
        code = irCodes[o * rowBytes + i];
      } else {
        uint8_t byte =
            static_cast<uint8_t>(irCodes[o * rowBytes + i / perByte]);
        int shift = static_cast<int>((i % perByte) * bits);
        int raw = (byte >> shift) & ((1 << bits) - 1);
        code =
            raw >= (1 << (bits - 1)) ? raw - (1 << bits) : raw; // sign-extend
      }
      if (code < lo || code > hi)
        return Status::error("weight code " + std::to_string(code) + " at [" +
                             std::to_string(o) + ", " + std::to_string(i) +
                             "] is outside the " + std::to_string(bits) +
                             "-bit range");
      int64_t idx = w.panelIndex(o, i);
      if (!w.nibbles) {
        w.panels[idx] = static_cast<uint8_t>(static_cast<int8_t>(code));
      } else {
        int64_t within = idx % 64;
        uint8_t nibble = static_cast<uint8_t>(code) & 0x0f;
        w.panels[idx / 64 * 32 + within % 32] |=
            static_cast<uint8_t>(within < 32 ? nibble : nibble << 4);
      }
      w.codeSums[o * w.groups + (group ? i / group : 0)] += code;
    }
  w.outPadded = blocks * 16;
  w.scalesByGroup.assign(w.groups * w.outPadded, 0.0f);
  w.codeSumsByGroup.assign(w.groups * w.outPadded, 0);
  for (int64_t o = 0; o < out; ++o)
    for (int64_t g = 0; g < w.groups; ++g) {
      w.scalesByGroup[g * w.outPadded + o] = w.scales[o * w.groups + g];
      w.codeSumsByGroup[g * w.outPadded + o] = w.codeSums[o * w.groups + g];
    }
  return {};
}

int8_t PackedWeights::code(int64_t o, int64_t i) const {
  int64_t idx = panelIndex(o, i);
  if (!nibbles)
    return static_cast<int8_t>(panels[idx]);
  int64_t within = idx % 64;
  uint8_t byte = panels[idx / 64 * 32 + within % 32];
  int raw = within < 32 ? byte & 0x0f : byte >> 4;
  return static_cast<int8_t>(raw >= 8 ? raw - 16 : raw);
}

namespace {
/// Unpacks `panels` panels of nibbles (32 bytes each) to int8 codes (64
/// each): the definition.
void unpackNibblesPortable(const uint8_t *src, int64_t panels, int8_t *dst) {
  for (int64_t p = 0; p < panels; ++p, src += 32, dst += 64)
    for (int j = 0; j < 32; ++j) {
      int lo = src[j] & 0x0f, hi = src[j] >> 4;
      dst[j] = static_cast<int8_t>(lo >= 8 ? lo - 16 : lo);
      dst[j + 32] = static_cast<int8_t>(hi >= 8 ? hi - 16 : hi);
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
/// The same on 32 bytes at a time: low nibbles are codes 0-31, high
/// nibbles 32-63 (the layout is chosen so that no shuffle is needed);
/// sign extension of a nibble n is (n ^ 8) - 8.
__attribute__((target("avx2"))) void
unpackNibblesAvx2(const uint8_t *src, int64_t panels, int8_t *dst) {
  const __m256i low = _mm256_set1_epi8(0x0f), eight = _mm256_set1_epi8(8);
  for (int64_t p = 0; p < panels; ++p, src += 32, dst += 64) {
    __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(src));
    __m256i lo = _mm256_and_si256(v, low);
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
    lo = _mm256_sub_epi8(_mm256_xor_si256(lo, eight), eight);
    hi = _mm256_sub_epi8(_mm256_xor_si256(hi, eight), eight);
    _mm256_storeu_si256(reinterpret_cast<__m256i *>(dst), lo);
    _mm256_storeu_si256(reinterpret_cast<__m256i *>(dst + 32), hi);
  }
}
#endif
} // namespace

void PackedWeights::unpackBlocks(int64_t b0, int64_t nb, int8_t *dst) const {
  int64_t codes = blockCodes();
  if (!nibbles) {
    std::memcpy(dst, panels.data() + b0 * codes,
                static_cast<size_t>(nb * codes));
    return;
  }
  const uint8_t *src = panels.data() + b0 * codes / 2;
  int64_t count = nb * codes / 64;
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool avx2 = hasAvx2();
  if (avx2) {
    unpackNibblesAvx2(src, count, dst);
    return;
  }
#endif
  unpackNibblesPortable(src, count, dst);
}

size_t PackedWeights::bytes() const {
  return panels.size() +
         sizeof(float) * (scales.size() + scalesByGroup.size()) +
         sizeof(int32_t) * (codeSums.size() + codeSumsByGroup.size());
}

bool hasAvx512Vnni() {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vnni");
  }();
  return has;
#else
  return false;
#endif
}

bool hasAvx2Gemm() {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool has = hasAvx2();
  return has;
#else
  return false;
#endif
}

const char *gemmPathName(GemmPath path) {
  switch (path) {
  case GemmPath::Auto:
    return "auto";
  case GemmPath::Portable:
    return "portable";
  case GemmPath::Avx512Vnni:
    return "vnni";
  case GemmPath::AmxInt8:
    return "amx";
  case GemmPath::Avx2:
    return "avx2";
  }
  return "unknown";
}

namespace {
std::atomic<GemmPath> preferredPath{GemmPath::Auto};
} // namespace

void setPreferredGemmPath(GemmPath path) {
  preferredPath.store(path, std::memory_order_relaxed);
}

bool hasAmxInt8() {
#if defined(__x86_64__) && defined(__GNUC__) && defined(__linux__)
  static const bool has = [] {
    // CPUID leaf 7: EDX bit 24 AMX-TILE, bit 25 AMX-INT8 (read directly:
    // older compilers' __builtin_cpu_supports does not know the names).
    unsigned a, b, c, d;
    if (!hasAvx512Vnni() || !__get_cpuid_count(7, 0, &a, &b, &c, &d) ||
        !(d & (1u << 24)) || !(d & (1u << 25)))
      return false;
    // Linux hands out the tile state only to processes that ask for it
    // (ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA); refused means no AMX.
    constexpr long kReqXcompPerm = 0x1023, kXtileData = 18;
    return syscall(SYS_arch_prctl, kReqXcompPerm, kXtileData) == 0;
  }();
  return has;
#else
  return false;
#endif
}

namespace {

constexpr int64_t kMaxGroupsOnStack = 64;

/// The shared epilogue: acc holds, per group, sum_i (qx + bias) * qw; the
/// bias term is removed exactly in int32, then groups combine in order.
inline float epilogue(const int32_t *acc, const PackedWeights &w, int64_t o,
                      int32_t xBias, float xScale, const float *bias,
                      const float *residual) {
  float sum = 0.0f;
  for (int64_t g = 0; g < w.groups; ++g) {
    int32_t exact = acc[g] - xBias * w.codeSums[o * w.groups + g];
    sum += static_cast<float>(exact) * w.scales[o * w.groups + g];
  }
  float y = sum * xScale;
  if (bias)
    y = y + bias[o];
  return residual ? y + residual[o] : y;
}

void portable(const QuantizedRows &x, const PackedWeights &w, const float *bias,
              const float *residual, float *y) {
  int32_t xBias = 1 << (x.bits - 1);
  int64_t groupLen = w.group ? w.group : w.in;
  int64_t blocks = (w.out + 15) / 16;
  // Groups of whole 4-input steps read each 64-byte panel once for its 16
  // outputs; other group lengths go element by element.
  bool whole = groupLen % 4 == 0;
#pragma omp parallel if (x.rows * w.out * w.stride > (int64_t(1) << 20))
  {
    std::vector<int32_t> acc(16 * w.groups);
    std::vector<int8_t> panels(static_cast<size_t>(w.blockCodes()));
#pragma omp for schedule(static)
    for (int64_t b = 0; b < blocks; ++b) {
      w.unpackBlocks(b, 1, panels.data());
      for (int64_t t = 0; t < x.rows; ++t) {
        const uint8_t *xr = x.codes.data() + t * x.stride;
        int64_t lanes = std::min<int64_t>(16, w.out - b * 16);
        for (int64_t g = 0; g < w.groups; ++g) {
          int32_t *a = acc.data() + g * 16;
          for (int64_t l = 0; l < 16; ++l)
            a[l] = 0;
          if (whole) {
            for (int64_t k = g * groupLen / 4; k < (g + 1) * groupLen / 4;
                 ++k) {
              const int8_t *p = panels.data() + k * 64;
              const uint8_t *xk = xr + 4 * k;
              for (int64_t l = 0; l < 16; ++l)
                a[l] += static_cast<int32_t>(xk[0]) * p[4 * l] +
                        static_cast<int32_t>(xk[1]) * p[4 * l + 1] +
                        static_cast<int32_t>(xk[2]) * p[4 * l + 2] +
                        static_cast<int32_t>(xk[3]) * p[4 * l + 3];
            }
          } else {
            for (int64_t l = 0; l < lanes; ++l)
              for (int64_t i = g * groupLen; i < (g + 1) * groupLen; ++i)
                a[l] += static_cast<int32_t>(xr[i]) *
                        panels[(i / 4) * 64 + l * 4 + i % 4];
          }
        }
        int32_t one[kMaxGroupsOnStack];
        for (int64_t l = 0; l < lanes; ++l) {
          int64_t o = b * 16 + l;
          const int32_t *sums = one;
          std::vector<int32_t> many;
          if (w.groups <= kMaxGroupsOnStack) {
            for (int64_t g = 0; g < w.groups; ++g)
              one[g] = acc[g * 16 + l];
          } else {
            many.resize(w.groups);
            for (int64_t g = 0; g < w.groups; ++g)
              many[g] = acc[g * 16 + l];
            sums = many.data();
          }
          y[t * w.out + o] =
              epilogue(sums, w, o, xBias, x.scales[t], bias,
                       residual ? residual + t * w.out : nullptr);
        }
      }
    }
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
/// The epilogue of the VNNI and AMX paths on 16 outputs: group g's bias
/// correction xBias * codeSum and scales, its term
/// float(acc - xBias * codeSum) * scale added to the running sum, and the
/// final y = sum * s_x (+ bias) stored for the valid outputs. The scalar
/// epilogue's operations in its order.
__attribute__((target("avx512f,avx512bw"), always_inline)) inline void
groupTerms(const PackedWeights &w, int64_t g, int64_t o0, __m512i xBiasV,
           __m512i &corr, __m512 &scale) {
  corr =
      _mm512_mullo_epi32(xBiasV, _mm512_loadu_si512(w.codeSumsByGroup.data() +
                                                    g * w.outPadded + o0));
  scale = _mm512_loadu_ps(w.scalesByGroup.data() + g * w.outPadded + o0);
}

__attribute__((target("avx512f,avx512bw"), always_inline)) inline __m512
addGroupTerm(__m512 sum, __m512i acc, __m512i corr, __m512 scale) {
  return _mm512_add_ps(
      sum,
      _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc, corr)), scale));
}

__attribute__((target("avx512f,avx512bw"), always_inline)) inline void
storeOutputs(__m512 sum, float xScale, const float *bias, const float *resRow,
             int64_t o0, int64_t out, float *yRow) {
  int64_t valid = std::min<int64_t>(16, out - o0);
  __mmask16 m = static_cast<__mmask16>((1u << valid) - 1);
  __m512 v = _mm512_mul_ps(sum, _mm512_set1_ps(xScale));
  if (bias)
    v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, bias + o0));
  if (resRow)
    v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, resRow + o0));
  _mm512_mask_storeu_ps(yRow + o0, m, v);
}

/// Register tile: 4 rows x 64 outputs (4 panels of 16). Each step broadcasts
/// 4 activation bytes per row and multiplies them with a 64-byte panel (16
/// outputs x 4 inputs): 16 dpbusd per 8 loads, no horizontal sums. The
/// epilogue runs on 16 outputs at a time with the scalar epilogue's
/// operations in the same order (0 + terms over groups, then * s_x, then
/// + bias), so both paths are bit-identical.
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void
vnni(const QuantizedRows &x, const PackedWeights &w, const float *bias,
     const float *residual, float *y) {
  int32_t xBias = 1 << (x.bits - 1);
  int64_t groupLen = w.group ? w.group : w.stride;
  int64_t k4s = w.stride / 4, blocks = (w.out + 15) / 16;
  constexpr int64_t R = 4, C = 4;
  int64_t rowTiles = (x.rows + R - 1) / R, colTiles = (blocks + C - 1) / C;
  const __m512i xBiasV = _mm512_set1_epi32(xBias);
#pragma omp parallel if (x.rows * w.out * w.stride > (int64_t(1) << 20))
  {
    // Running float sums of one tile over the groups, [R][C] vectors.
    __m512 sums[R][C];
    // The column tile's panels, unpacked once for all row tiles.
    std::vector<int8_t> panels(static_cast<size_t>(C * w.blockCodes()));
#pragma omp for schedule(static)
    for (int64_t ct = 0; ct < colTiles; ++ct) {
      int64_t b0 = ct * C;
      int64_t nb = std::min(C, blocks - b0);
      w.unpackBlocks(b0, nb, panels.data());
      for (int64_t rt = 0; rt < rowTiles; ++rt) {
        int64_t t0 = rt * R;
        const uint8_t *xr[R];
        for (int64_t r = 0; r < R; ++r)
          xr[r] = x.codes.data() + std::min(t0 + r, x.rows - 1) * x.stride;
        for (int64_t r = 0; r < R; ++r)
          for (int64_t c = 0; c < C; ++c)
            sums[r][c] = _mm512_setzero_ps();
        for (int64_t g = 0; g < w.groups; ++g) {
          __m512i a[R][C];
          for (int64_t r = 0; r < R; ++r)
            for (int64_t c = 0; c < C; ++c)
              a[r][c] = _mm512_setzero_si512();
          int64_t k0 = g * groupLen / 4, k1 = (g + 1) * groupLen / 4;
          if (nb == C) {
            const int8_t *p0 = panels.data() + k0 * 64;
            for (int64_t k = k0; k < k1; ++k, p0 += 64) {
              __m512i xb[R];
              for (int64_t r = 0; r < R; ++r)
                xb[r] = _mm512_set1_epi32(
                    *reinterpret_cast<const int32_t *>(xr[r] + 4 * k));
              for (int64_t c = 0; c < C; ++c) {
                __m512i wv = _mm512_loadu_si512(p0 + c * k4s * 64);
                for (int64_t r = 0; r < R; ++r)
                  a[r][c] = _mm512_dpbusd_epi32(a[r][c], xb[r], wv);
              }
            }
          } else {
            for (int64_t k = k0; k < k1; ++k) {
              __m512i xb[R];
              for (int64_t r = 0; r < R; ++r)
                xb[r] = _mm512_set1_epi32(
                    *reinterpret_cast<const int32_t *>(xr[r] + 4 * k));
              for (int64_t c = 0; c < nb; ++c) {
                __m512i wv =
                    _mm512_loadu_si512(panels.data() + (c * k4s + k) * 64);
                for (int64_t r = 0; r < R; ++r)
                  a[r][c] = _mm512_dpbusd_epi32(a[r][c], xb[r], wv);
              }
            }
          }
          for (int64_t c = 0; c < nb; ++c) {
            __m512i corr;
            __m512 sc;
            groupTerms(w, g, (b0 + c) * 16, xBiasV, corr, sc);
            for (int64_t r = 0; r < R; ++r)
              sums[r][c] = addGroupTerm(sums[r][c], a[r][c], corr, sc);
          }
        }
        int64_t nr = std::min(R, x.rows - t0);
        for (int64_t r = 0; r < nr; ++r)
          for (int64_t c = 0; c < nb; ++c)
            storeOutputs(sums[r][c], x.scales[t0 + r], bias,
                         residual ? residual + (t0 + r) * w.out : nullptr,
                         (b0 + c) * 16, w.out, y + (t0 + r) * w.out);
      }
    }
  }
}
#endif

/// Whether vpmaddubsw's int16 pair sums of a-bit biased activations and
/// w-bit weights cannot saturate: 2 (2^a - 1) 2^(w-1) <= 32767.
bool avx2Exact(int actBits, int weightBits) {
  return 2 * ((int64_t{1} << actBits) - 1) * (int64_t{1} << (weightBits - 1)) <=
         32767;
}

#if defined(__x86_64__) && defined(__GNUC__)
/// The AVX2 path (CPUs without AVX-512, e.g. AMD Zen 2/3): the VNNI panels
/// read 8 outputs at a time; u8 x s8 products summed in pairs to int16
/// (vpmaddubsw) and in fours to int32 (vpmaddwd with ones). Only where the
/// pair sums cannot saturate (avx2Exact), else the caller takes another
/// path. int32 sums are exact, and the epilogue is the scalar one's
/// operations on 8 lanes, so the result is bit-identical to the other paths.

__attribute__((target("avx2"))) void avx2(const QuantizedRows &x,
                                          const PackedWeights &w,
                                          const float *bias,
                                          const float *residual, float *y) {
  int32_t xBias = 1 << (x.bits - 1);
  int64_t groupLen = w.group ? w.group : w.stride;
  int64_t blocks = (w.out + 15) / 16;
  constexpr int64_t R = 4;
  int64_t rowTiles = (x.rows + R - 1) / R;
  const __m256i xBiasV = _mm256_set1_epi32(xBias);
  const __m256i ones = _mm256_set1_epi16(1);
#pragma omp parallel if (x.rows * w.out * w.stride > (int64_t(1) << 20))
  {
    // Running float sums of one tile (R rows x 16 outputs) over the groups.
    __m256 sums[R][2];
    // The block's panels, unpacked once for all row tiles.
    std::vector<int8_t> panels(static_cast<size_t>(w.blockCodes()));
#pragma omp for schedule(static)
    for (int64_t bk = 0; bk < blocks; ++bk) {
      w.unpackBlocks(bk, 1, panels.data());
      for (int64_t rt = 0; rt < rowTiles; ++rt) {
        int64_t t0 = rt * R, o0 = bk * 16;
        const uint8_t *xr[R];
        for (int64_t r = 0; r < R; ++r)
          xr[r] = x.codes.data() + std::min(t0 + r, x.rows - 1) * x.stride;
        for (int64_t r = 0; r < R; ++r)
          sums[r][0] = sums[r][1] = _mm256_setzero_ps();
        for (int64_t g = 0; g < w.groups; ++g) {
          __m256i a[R][2];
          for (int64_t r = 0; r < R; ++r)
            a[r][0] = a[r][1] = _mm256_setzero_si256();
          int64_t k0 = g * groupLen / 4, k1 = (g + 1) * groupLen / 4;
          const int8_t *p = panels.data() + k0 * 64;
          for (int64_t k = k0; k < k1; ++k, p += 64) {
            __m256i w0 =
                _mm256_loadu_si256(reinterpret_cast<const __m256i *>(p));
            __m256i w1 =
                _mm256_loadu_si256(reinterpret_cast<const __m256i *>(p + 32));
            for (int64_t r = 0; r < R; ++r) {
              __m256i xb = _mm256_set1_epi32(
                  *reinterpret_cast<const int32_t *>(xr[r] + 4 * k));
              a[r][0] = _mm256_add_epi32(
                  a[r][0],
                  _mm256_madd_epi16(_mm256_maddubs_epi16(xb, w0), ones));
              a[r][1] = _mm256_add_epi32(
                  a[r][1],
                  _mm256_madd_epi16(_mm256_maddubs_epi16(xb, w1), ones));
            }
          }
          for (int64_t h = 0; h < 2; ++h) {
            int64_t o = o0 + 8 * h;
            __m256i corr = _mm256_mullo_epi32(
                xBiasV, _mm256_loadu_si256(reinterpret_cast<const __m256i *>(
                            w.codeSumsByGroup.data() + g * w.outPadded + o)));
            __m256 sc =
                _mm256_loadu_ps(w.scalesByGroup.data() + g * w.outPadded + o);
            for (int64_t r = 0; r < R; ++r)
              sums[r][h] = _mm256_add_ps(
                  sums[r][h],
                  _mm256_mul_ps(
                      _mm256_cvtepi32_ps(_mm256_sub_epi32(a[r][h], corr)), sc));
          }
        }
        int64_t nr = std::min(R, x.rows - t0);
        for (int64_t r = 0; r < nr; ++r)
          for (int64_t h = 0; h < 2; ++h) {
            int64_t o = o0 + 8 * h, valid = std::min<int64_t>(8, w.out - o);
            if (valid <= 0)
              continue;
            float *yRow = y + (t0 + r) * w.out;
            const float *resRow =
                residual ? residual + (t0 + r) * w.out : nullptr;
            __m256 v =
                _mm256_mul_ps(sums[r][h], _mm256_set1_ps(x.scales[t0 + r]));
            float extra[8] = {};
            if (bias) {
              std::memcpy(extra, bias + o, sizeof(float) * valid);
              v = _mm256_add_ps(v, _mm256_loadu_ps(extra));
            }
            if (resRow) {
              std::memcpy(extra, resRow + o, sizeof(float) * valid);
              v = _mm256_add_ps(v, _mm256_loadu_ps(extra));
            }
            float out[8];
            _mm256_storeu_ps(out, v);
            std::memcpy(yRow + o, out, sizeof(float) * valid);
          }
      }
    }
  }
}
#endif

#if defined(__x86_64__) && defined(__GNUC__)
#define W4A4_AMX_TARGET                                                        \
  __attribute__((target("amx-tile,amx-int8,avx512f,avx512bw")))

/// The tile configuration of palette 1: tiles 0-3 accumulate int32 C
/// (2 row tiles x 2 output blocks), 4-5 hold activations (16 rows x 64
/// bytes), 6-7 weight panels (16 rows of 4 inputs x 16 outputs = 64 bytes):
/// every tile 16 rows of 64 bytes.
struct alignas(64) TileConfig {
  uint8_t palette = 1, startRow = 0, reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

/// C tiles (NR row tiles x NB output blocks) of one group: ksteps steps of 64
/// inputs. `a` is the first activation byte of the group (rows `aStride`
/// apart), `b` the group's first panel row of the first output block (the
/// next block `blockStride` bytes on). Writes C to c[(r * 2 + n) * 256].
template <int NR, int NB>
W4A4_AMX_TARGET inline void amxGroup(const uint8_t *a, int64_t aStride,
                                     const int8_t *b, int64_t blockStride,
                                     int64_t ksteps, int32_t *c) {
  _tile_zero(0);
  if (NB > 1)
    _tile_zero(1);
  if (NR > 1)
    _tile_zero(2);
  if (NR > 1 && NB > 1)
    _tile_zero(3);
  for (int64_t s = 0; s < ksteps; ++s) {
    _tile_loadd(4, a + s * 64, aStride);
    if (NR > 1)
      _tile_loadd(5, a + 16 * aStride + s * 64, aStride);
    _tile_loadd(6, b + s * 1024, 64);
    if (NB > 1)
      _tile_loadd(7, b + blockStride + s * 1024, 64);
    _tile_dpbusd(0, 4, 6);
    if (NB > 1)
      _tile_dpbusd(1, 4, 7);
    if (NR > 1)
      _tile_dpbusd(2, 5, 6);
    if (NR > 1 && NB > 1)
      _tile_dpbusd(3, 5, 7);
  }
  _tile_stored(0, c, 64);
  if (NB > 1)
    _tile_stored(1, c + 256, 64);
  if (NR > 1)
    _tile_stored(2, c + 512, 64);
  if (NR > 1 && NB > 1)
    _tile_stored(3, c + 768, 64);
}

/// AMX-INT8: output tiles of 32 rows x 32 outputs; per group the int32 sums
/// come from TDPBUSD (u8 activations x s8 weights, the VNNI panels are
/// already AMX's B layout), then the VNNI path's epilogue, operation for
/// operation, so all paths are bit-identical.
W4A4_AMX_TARGET void amx(const QuantizedRows &x, const PackedWeights &w,
                         const float *bias, const float *residual, float *y) {
  int32_t xBias = 1 << (x.bits - 1);
  int64_t groupLen = w.group ? w.group : w.stride, ksteps = groupLen / 64;
  int64_t k4s = w.stride / 4, blocks = (w.out + 15) / 16;
  int64_t rowTiles = paddedRows(x.rows) / kRowAlign,
          colTiles = (blocks + 1) / 2;
  int64_t blockStride = k4s * 64; // bytes from one 16-output panel block on
  const __m512i xBiasV = _mm512_set1_epi32(xBias);
#pragma omp parallel if (x.rows * w.out * w.stride > (int64_t(1) << 20))
  {
    TileConfig cfg;
    for (int t = 0; t < 8; ++t) {
      cfg.rows[t] = 16;
      cfg.colsb[t] = 64;
    }
    _tile_loadconfig(&cfg);
    alignas(64) int32_t c[4 * 256];
    __m512 sums[32][2];
    // The column tile's two blocks of panels, unpacked once for all row
    // tiles (AMX's B tiles load from here).
    std::vector<int8_t> panels(static_cast<size_t>(2 * blockStride));
#pragma omp for schedule(static)
    for (int64_t ct = 0; ct < colTiles; ++ct) {
      int64_t b0 = ct * 2;
      int nb = static_cast<int>(std::min<int64_t>(2, blocks - b0));
      w.unpackBlocks(b0, nb, panels.data());
      for (int64_t rt = 0; rt < rowTiles; ++rt) {
        int64_t t0 = rt * 32;
        int nr = t0 + 16 < x.rows ? 2 : 1;
        for (int64_t r = 0; r < 32; ++r)
          sums[r][0] = sums[r][1] = _mm512_setzero_ps();
        for (int64_t g = 0; g < w.groups; ++g) {
          const uint8_t *a = x.codes.data() + t0 * x.stride + g * groupLen;
          const int8_t *b = panels.data() + (g * groupLen / 4) * 64;
          if (nr == 2 && nb == 2)
            amxGroup<2, 2>(a, x.stride, b, blockStride, ksteps, c);
          else if (nr == 2)
            amxGroup<2, 1>(a, x.stride, b, blockStride, ksteps, c);
          else if (nb == 2)
            amxGroup<1, 2>(a, x.stride, b, blockStride, ksteps, c);
          else
            amxGroup<1, 1>(a, x.stride, b, blockStride, ksteps, c);
          for (int n = 0; n < nb; ++n) {
            __m512i corr;
            __m512 sc;
            groupTerms(w, g, (b0 + n) * 16, xBiasV, corr, sc);
            for (int64_t r = 0; r < 16 * nr; ++r)
              sums[r][n] =
                  addGroupTerm(sums[r][n],
                               _mm512_load_si512(c + ((r / 16) * 2 + n) * 256 +
                                                 (r % 16) * 16),
                               corr, sc);
          }
        }
        int64_t validRows = std::min<int64_t>(32, x.rows - t0);
        for (int64_t r = 0; r < validRows; ++r)
          for (int n = 0; n < nb; ++n)
            storeOutputs(sums[r][n], x.scales[t0 + r], bias,
                         residual ? residual + (t0 + r) * w.out : nullptr,
                         (b0 + n) * 16, w.out, y + (t0 + r) * w.out);
      }
    }
    _tile_release();
  }
}
#endif

} // namespace

Status intGemm(const QuantizedRows &x, const PackedWeights &w,
               const float *bias, float *y, GemmPath path,
               const float *residual) {
  if (x.cols != w.in)
    return Status::error("activation width " + std::to_string(x.cols) +
                         " does not match the weights' " +
                         std::to_string(w.in));
  bool vnniOk = hasAvx512Vnni() && (w.group == 0 || w.group % 4 == 0);
  bool avx2Ok = hasAvx2Gemm() && (w.group == 0 || w.group % 4 == 0) &&
                avx2Exact(x.bits, w.bits);
  bool amxOk = hasAmxInt8() && (w.group == 0 || w.group % 64 == 0);
  if (path == GemmPath::Avx512Vnni && !vnniOk)
    return Status::error("the AVX-512-VNNI path is unavailable here (CPU, or "
                         "groups not a multiple of 4)");
  if (path == GemmPath::Avx2 && !avx2Ok)
    return Status::error("the AVX2 path is unavailable here (CPU, groups "
                         "not a multiple of 4, or codes whose pair sums "
                         "exceed int16)");
  if (path == GemmPath::AmxInt8 && !amxOk)
    return Status::error("the AMX-INT8 path is unavailable here (CPU, the "
                         "kernel's permission, or groups not a multiple of "
                         "64)");
  if (path == GemmPath::Auto) {
    GemmPath preferred = preferredPath.load(std::memory_order_relaxed);
    amxOk &= preferred == GemmPath::Auto || preferred == GemmPath::AmxInt8;
    vnniOk &= preferred != GemmPath::Portable && preferred != GemmPath::Avx2;
    avx2Ok &= preferred != GemmPath::Portable;
    path = amxOk    ? GemmPath::AmxInt8
           : vnniOk ? GemmPath::Avx512Vnni
           : avx2Ok ? GemmPath::Avx2
                    : GemmPath::Portable;
  }
  if (x.codes.size() < static_cast<size_t>(paddedRows(x.rows) * x.stride))
    return Status::error("quantized activations without row padding (use "
                         "quantizeActivations)");
#if defined(__x86_64__) && defined(__GNUC__)
  if (path == GemmPath::AmxInt8) {
    amx(x, w, bias, residual, y);
    return {};
  }
  if (path == GemmPath::Avx512Vnni) {
    vnni(x, w, bias, residual, y);
    return {};
  }
  if (path == GemmPath::Avx2) {
    avx2(x, w, bias, residual, y);
    return {};
  }
#endif
  portable(x, w, bias, residual, y);
  return {};
}

} // namespace w4a4::rt
