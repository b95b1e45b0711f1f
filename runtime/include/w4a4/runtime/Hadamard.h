//===- Hadamard.h - Hadamard matrices and transforms ------------*- C++ -*-===//
//
// Construction of the Hadamard matrices that w4a4 rotations use (DESIGN.md,
// "Sizes that are not a power of two"): Sylvester (Walsh) matrices of order
// 2^k, Paley I/II matrices of order m built over GF(q) for prime powers q, and
// their Kronecker products H_m (x) H_(2^k). Also the O(n log n) fast
// Walsh-Hadamard transform.
//
// This header is part of the runtime and does not depend on MLIR; the w4a4
// dialect's verifier uses it so that the IR only accepts sizes the runtime can
// build.
//
//===----------------------------------------------------------------------===//

#ifndef W4A4_RUNTIME_HADAMARD_H
#define W4A4_RUNTIME_HADAMARD_H

#include <cstdint>
#include <optional>
#include <vector>

namespace w4a4::rt {

/// Largest base order m (not a power of two) that the Paley constructions
/// here provide.
constexpr int64_t kMaxHadamardBaseOrder = 256;

/// True for n = 2^k, k >= 0.
bool isPowerOfTwo(int64_t n);

/// n = base * 2^log2Factor with a Hadamard matrix of order `base` available
/// (base == 1 means a pure Walsh/Sylvester matrix).
struct HadamardFactors {
  int64_t base = 1;
  int64_t log2Factor = 0;
};

/// Factors n as base * 2^k, choosing the smallest base order this runtime can
/// build (1, or a Paley order). Returns std::nullopt if no Hadamard matrix of
/// order n can be constructed here.
std::optional<HadamardFactors> factorHadamardOrder(int64_t n);

/// Base orders (not powers of two) that have a Paley construction here, in
/// increasing order, up to kMaxHadamardBaseOrder.
const std::vector<int64_t> &knownHadamardBaseOrders();

/// The +-1 Hadamard matrix of order n, row-major, with H * H^T = n * I: the
/// Kronecker product H_base (x) H_(2^k) of factorHadamardOrder(n). Returns an
/// empty vector when n is not supported.
std::vector<int8_t> buildHadamardMatrix(int64_t n);

/// Unnormalized fast Walsh-Hadamard transform of x[0..n), in place: x <- x H_n
/// with H_n the Sylvester matrix. n must be a power of two.
void fastWalshHadamard(float *x, int64_t n);

/// Signs from a seed (DESIGN.md's randomized Hadamard): s_i = -1 when the
/// (i+1)-th output of SplitMix64 started at state `seed` has its top bit set,
/// else +1. The reference evaluator uses the same generator.
std::vector<float> seededSigns(uint64_t seed, int64_t n);

/// y = x Q per row of x [rows, width], Q = diag(signs) blockdiag(H) /
/// sqrt(size) with H the Hadamard matrix of order `size` (which divides
/// width); `inverse` applies Q^T: y = (x blockdiag(H^T) / sqrt(size)) * signs.
/// `signs` (length width) may be null (all +1). With stride k > 1 each
/// transform acts on the elements j + k*i (i < size) of a run of size * k
/// elements (the cross-head Hadamard H_heads (x) I for k = head_dim).
/// Returns false when no Hadamard matrix of order `size` exists or the
/// width is not a multiple of size * stride. x and y may alias.
bool hadamardRows(const float *x, int64_t rows, int64_t width, int64_t size,
                  const float *signs, bool inverse, float *y,
                  int64_t stride = 1);

/// hadamardRows() one row at a time (fused producers): made once for a
/// width, size and stride, then applied to rows with caller-owned scratch.
/// Each row's values are those hadamardRows() computes. x and y may alias.
class HadamardRowTransform {
public:
  /// std::nullopt where hadamardRows() would return false.
  static std::optional<HadamardRowTransform> create(int64_t width, int64_t size,
                                                    int64_t stride);
  void apply(const float *x, const float *signs, bool inverse, float *y,
             std::vector<float> &t, std::vector<float> &u) const;

private:
  int64_t width = 0, size = 0, stride = 1, m = 1, w = 1;
  std::vector<int8_t> base;
  float norm = 1.0f;
};

} // namespace w4a4::rt

#endif // W4A4_RUNTIME_HADAMARD_H
