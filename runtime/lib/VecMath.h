//===- VecMath.h - vectorizable math for the kernels ------------*- C++ -*-===//
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

/// 16 floats (GCC/Clang vector extensions: one zmm register under
/// AVX-512, split into narrower registers elsewhere; the arithmetic is the
/// same IEEE lane by lane).
typedef float F16 __attribute__((vector_size(64)));
typedef int32_t I16 __attribute__((vector_size(64)));
typedef double D16 __attribute__((vector_size(128)));

W4A4_INLINE F16 load16(const float *p) {
  F16 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
W4A4_INLINE void store16(float *p, F16 v) { std::memcpy(p, &v, sizeof(v)); }

/// A float or F16 with every lane v.
template <typename T> W4A4_INLINE T splat(float v) { return T{} + v; }
/// Truncation to int32, lane by lane.
W4A4_INLINE int32_t toInt32(float v) { return static_cast<int32_t>(v); }
W4A4_INLINE I16 toInt32(F16 v) { return __builtin_convertvector(v, I16); }

/// exp(x) in float, for one value (T = float) or 16 lanes (T = F16) with
/// the same operations: Cody-Waite range reduction x = n ln2 + r,
/// |r| <= ln2/2, a degree-6 polynomial for e^r (Cephes' expf
/// coefficients), then the exponent bits of 2^n. Inputs are clamped to
/// [-87, 88] (the normal float range); NaN stays NaN. Largest relative error
/// seen over [-87, 88] in steps of 1e-3 against double exp: 7.9e-8
/// (KernelsTest checks the kernels that use it against float64).
template <typename T> W4A4_INLINE T expPoly(T x) {
  const T lo = splat<T>(-87.0f), hi = splat<T>(88.0f);
  x = x < lo ? lo : x;
  x = x > hi ? hi : x;
  const T shifter = splat<T>(12582912.0f); // 1.5 * 2^23: rounds to nearest
  T n = (x * 1.44269504088896341f + shifter) - shifter;
  T r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  T p = splat<T>(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  T y = p * (r * r) + r + 1.0f;
  auto bits = (toInt32(n) + 127) << 23;
  T scale;
  static_assert(sizeof(bits) == sizeof(scale), "lane widths match");
  std::memcpy(&scale, &bits, sizeof(scale));
  return y * scale;
}

} // namespace w4a4::rt::detail

#endif // W4A4_RUNTIME_LIB_VECMATH_H
