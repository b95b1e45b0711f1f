//===- SymExpr.h - symbolic integer expressions for ONNX shapes -*- C++ -*-===//
//
// Dimensions and shape-arithmetic values of an ONNX graph whose batch and
// sequence axes are dynamic: integer polynomials over named symbols (one per
// dynamic graph-input dimension, e.g. `batch`, `sequence`, `past_sequence`).
// `seq + 4` (a register prefix), `batch * seq` (a flattened GEMM input) and
// `past + seq` (a KV cache) are exact. Plain C++ without MLIR or exceptions:
// the importer's stage 1 and the w4a4-normalize-onnx pass share it.
//
//===----------------------------------------------------------------------===//

#ifndef W4A4_CONVERSION_ONNXTOW4A4_SYMEXPR_H
#define W4A4_CONVERSION_ONNXTOW4A4_SYMEXPR_H

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace w4a4::onnx_import {

/// sum_k c_k * prod(symbols_k): monomials are sorted symbol names; the
/// constant term has the empty monomial. No zero coefficients are stored.
class SymExpr {
public:
  SymExpr() = default;
  SymExpr(int64_t c) { // NOLINT: implicit from constants is the point
    if (c)
      terms[{}] = c;
  }
  static SymExpr symbol(const std::string &name) {
    SymExpr e;
    e.terms[{name}] = 1;
    return e;
  }

  bool isConst() const {
    return terms.empty() || (terms.size() == 1 && terms.begin()->first.empty());
  }
  /// The value when constant.
  std::optional<int64_t> constant() const {
    if (!isConst())
      return std::nullopt;
    return terms.empty() ? 0 : terms.begin()->second;
  }
  /// The constant term.
  int64_t offset() const {
    auto it = terms.find(std::vector<std::string>());
    return it == terms.end() ? 0 : it->second;
  }
  /// The symbolic part (all terms but the constant one).
  SymExpr withoutOffset() const {
    SymExpr e = *this;
    e.terms.erase(std::vector<std::string>());
    return e;
  }

  friend SymExpr operator+(const SymExpr &a, const SymExpr &b);
  friend SymExpr operator-(const SymExpr &a, const SymExpr &b);
  friend SymExpr operator*(const SymExpr &a, const SymExpr &b);
  friend std::optional<SymExpr> symBinary(const std::string &op,
                                          const SymExpr &a, const SymExpr &b);
  bool operator==(const SymExpr &o) const { return terms == o.terms; }
  bool operator!=(const SymExpr &o) const { return terms != o.terms; }

  /// a / b when the division is exact term by term (b a monomial or a
  /// constant), else nullopt.
  std::optional<SymExpr> divExact(const SymExpr &b) const;

  /// The value with every symbol bound; nullopt when one is not.
  std::optional<int64_t>
  evaluate(const std::map<std::string, int64_t> &bindings) const {
    int64_t r = 0;
    for (const auto &[m, c] : terms) {
      int64_t t = c;
      for (const std::string &s : m) {
        auto it = bindings.find(s);
        if (it == bindings.end())
          return std::nullopt;
        t *= it->second;
      }
      r += t;
    }
    return r;
  }
  /// Names of the symbols that occur.
  std::vector<std::string> symbols() const {
    std::vector<std::string> out;
    for (const auto &[m, c] : terms)
      for (const std::string &s : m)
        out.push_back(s);
    return out;
  }

  /// "batch", "seq + 4", "2*batch*seq - 1".
  std::string str() const;
  /// Inverse of str(); nullopt on text it does not produce.
  static std::optional<SymExpr> parse(const std::string &text);

private:
  std::map<std::vector<std::string>, int64_t> terms;
};

/// Element-wise integer ops on symbolic values (ONNX semantics). nullopt
/// when the result is not representable (e.g. inexact division).
std::optional<SymExpr> symBinary(const std::string &op, const SymExpr &a,
                                 const SymExpr &b);

} // namespace w4a4::onnx_import

#endif // W4A4_CONVERSION_ONNXTOW4A4_SYMEXPR_H
