//===- VecMath.h - vectorizable elementwise math for the kernels -*- C++
//-*-===//
//
// Private to the runtime's kernels. Plain float arithmetic without calls or
// branches, so that the compiler vectorizes the loops that use it; the
// kernels that do are compiled once per instruction set
// (W4A4_VECTOR_CLONES) and pick theirs when the library is loaded. The
// code is -ffp-contract=off IEEE arithmetic, so every clone computes the
// same bits.
//
//===----------------------------------------------------------------------===//

#ifndef W4A4_RUNTIME_LIB_VECMATH_H
#define W4A4_RUNTIME_LIB_VECMATH_H

#include <cstdint>
#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define W4A4_VECTOR_CLONES                                                     \
  __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define W4A4_VECTOR_CLONES
#endif
/// Helpers called from the clones are inlined into each of them (compiled
/// for that clone's instruction set).
#define W4A4_INLINE inline __attribute__((always_inline))

namespace w4a4::rt::detail {

/// exp(x) in float: Cody-Waite range reduction x = n ln2 + r, |r| <= ln2/2,
/// a degree-6 polynomial for e^r (Cephes' expf coefficients), then the
/// exponent bits of 2^n. Inputs are clamped to [-87, 88] (the normal float
/// range); NaN stays NaN. Largest relative error seen over [-87, 88] in
/// steps of 1e-3 against double exp: 7.9e-8 (KernelsTest checks it).
W4A4_INLINE float expPoly(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  const float shifter = 12582912.0f; // 1.5 * 2^23: rounds to nearest
  float n = (x * 1.44269504088896341f + shifter) - shifter;
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  float y = p * (r * r) + r + 1.0f;
  int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return y * scale;
}

/// 16 floats (GCC/Clang vector extensions: one zmm register under
/// AVX-512, split into narrower registers elsewhere; the arithmetic is the
/// same IEEE lane by lane).
typedef float F16 __attribute__((vector_size(64)));
typedef int32_t I16 __attribute__((vector_size(64)));
typedef double D16 __attribute__((vector_size(128)));

W4A4_INLINE F16 splat(float v) { return F16{} + v; }
W4A4_INLINE F16 load16(const float *p) {
  F16 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
W4A4_INLINE void store16(float *p, F16 v) { std::memcpy(p, &v, sizeof(v)); }

/// expPoly on 16 lanes: the scalar version's operations, lane by lane.
W4A4_INLINE F16 expPoly(F16 x) {
  const F16 lo = splat(-87.0f), hi = splat(88.0f);
  x = x < lo ? lo : x;
  x = x > hi ? hi : x;
  const F16 shifter = splat(12582912.0f);
  F16 n = (x * 1.44269504088896341f + shifter) - shifter;
  F16 r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  F16 p = splat(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  F16 y = p * (r * r) + r + 1.0f;
  I16 bits = (__builtin_convertvector(n, I16) + 127) << 23;
  F16 scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return y * scale;
}

} // namespace w4a4::rt::detail

#endif // W4A4_RUNTIME_LIB_VECMATH_H
