//===- WeightQuant.h - RTN and GPTQ weight quantization ---------*- C++ -*-===//
//
// Compile-time weight quantizers (DESIGN.md "Quantization"): symmetric b-bit
// RTN per output row or per group of input columns, optionally with a clip
// ratio searched per row/group to minimise the output error e^T H e (H the
// calibration Hessian X^T X), and GPTQ (Frantar et al.) with damping and
// act-order. Plain C++ (no MLIR), so they are unit-tested alone.
//
//===----------------------------------------------------------------------===//

#ifndef W4A4_RUNTIME_WEIGHTQUANT_H
#define W4A4_RUNTIME_WEIGHTQUANT_H

#include <cstdint>
#include <string>
#include <vector>

namespace w4a4::rt {

struct WeightQuantOptions {
  int bits = 4;
  /// Input columns per scale; 0: one scale per output row.
  int64_t group = 0;
  /// Clip ratio in (0, 1]; with clipSearch, the largest ratio tried.
  double clip = 1.0;
  /// Try clip * (1 - 0.025 k), k = 0..19, per row/group; keep the one with
  /// the smallest e^T H e (needs a Hessian).
  bool clipSearch = false;
  /// GPTQ: dampening added to H's diagonal, as a fraction of its mean.
  double damp = 0.01;
  /// GPTQ: process columns by decreasing H[j][j] (not with groups).
  bool actOrder = false;
};

/// Quantized weights: codes [out, in] in [-2^(b-1), 2^(b-1) - 1] and fp32
/// scales [out, groups]; the dequantized weight is codes * scale.
struct QuantizedWeights {
  std::vector<int> codes;
  std::vector<float> scales;
};

/// RTN of w [out, in] (DESIGN.md), in fp32 arithmetic: s = c max|w| / qmax,
/// q = clamp(round_half_even(w / s)). `hessian` [in, in] is needed only for
/// clipSearch (else may be null).
QuantizedWeights quantizeRtn(const std::vector<double> &w, int64_t out,
                             int64_t in, const WeightQuantOptions &options,
                             const double *hessian);

/// GPTQ of w [out, in] with the Hessian [in, in] (sum of x^T x over the
/// calibration positions), in float64. Columns are processed in blocks of
/// `group` (or 128 with per-row scales); a group's scale comes from its
/// columns as updated when its block starts, per-row scales from the rows.
/// Returns false with `error` set when H + damping is not positive definite
/// or options conflict.
bool quantizeGptq(const std::vector<double> &w, int64_t out, int64_t in,
                  const std::vector<double> &hessian,
                  const WeightQuantOptions &options, QuantizedWeights &result,
                  std::string &error);

/// Output error sum_o (w_o - q_o)^T H (w_o - q_o) of a quantized weight.
double outputError(const std::vector<double> &w, int64_t out, int64_t in,
                   const QuantizedWeights &q, int64_t group,
                   const std::vector<double> &hessian);

} // namespace w4a4::rt

#endif // W4A4_RUNTIME_WEIGHTQUANT_H
