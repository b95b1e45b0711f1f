//===- CheckedMath.h - overflow-checked size arithmetic ----------*- C++
//-*-===//
//
// Every size computed from input (ONNX dims, IR types, run-time shapes,
// file headers, command-line lengths) goes through these helpers: a product
// or sum that does not fit int64, or a negative extent, is an error rather
// than a wrapped value that then passes a size check. Plain C++ (no LLVM):
// the importer, the verifiers, the executor, the runtime and the tools all
// include it.
//
//===----------------------------------------------------------------------===//

#ifndef W4A4_RUNTIME_CHECKEDMATH_H
#define W4A4_RUNTIME_CHECKEDMATH_H

#include <cstdint>
#include <initializer_list>
#include <optional>

namespace w4a4 {

/// a * b, or nullopt when an operand is negative or the product overflows.
inline std::optional<int64_t> checkedMul(int64_t a, int64_t b) {
  int64_t r;
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r))
    return std::nullopt;
  return r;
}

/// a + b, or nullopt when an operand is negative or the sum overflows.
inline std::optional<int64_t> checkedAdd(int64_t a, int64_t b) {
  int64_t r;
  if (a < 0 || b < 0 || __builtin_add_overflow(a, b, &r))
    return std::nullopt;
  return r;
}

/// The product of `dims` times `scale` (an element size in bytes, or 1):
/// nullopt when a dim is negative (dynamic) or the product overflows.
template <typename Range>
std::optional<int64_t> checkedProduct(const Range &dims, int64_t scale = 1) {
  std::optional<int64_t> n =
      scale >= 0 ? std::optional<int64_t>(scale) : std::nullopt;
  for (auto d : dims) {
    if (!n)
      return std::nullopt;
    n = checkedMul(*n, static_cast<int64_t>(d));
  }
  return n;
}

inline std::optional<int64_t>
checkedProduct(std::initializer_list<int64_t> dims, int64_t scale = 1) {
  return checkedProduct<std::initializer_list<int64_t>>(dims, scale);
}

} // namespace w4a4

#endif // W4A4_RUNTIME_CHECKEDMATH_H
