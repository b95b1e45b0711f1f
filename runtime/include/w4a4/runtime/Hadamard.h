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

} // namespace w4a4::rt

#endif // W4A4_RUNTIME_HADAMARD_H
