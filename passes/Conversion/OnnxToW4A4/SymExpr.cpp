//===- SymExpr.cpp - symbolic integer expressions -------------------------===//

#include "passes/Conversion/OnnxToW4A4/SymExpr.h"

#include <algorithm>
#include <cctype>

namespace w4a4::onnx_import {

SymExpr operator+(const SymExpr &a, const SymExpr &b) {
  SymExpr r = a;
  for (const auto &[m, c] : b.terms) {
    int64_t v = (r.terms[m] += c);
    if (v == 0)
      r.terms.erase(m);
  }
  return r;
}

SymExpr operator-(const SymExpr &a, const SymExpr &b) {
  return a + b * SymExpr(-1);
}

SymExpr operator*(const SymExpr &a, const SymExpr &b) {
  SymExpr r;
  for (const auto &[ma, ca] : a.terms)
    for (const auto &[mb, cb] : b.terms) {
      std::vector<std::string> m = ma;
      m.insert(m.end(), mb.begin(), mb.end());
      std::sort(m.begin(), m.end());
      int64_t v = (r.terms[m] += ca * cb);
      if (v == 0)
        r.terms.erase(m);
    }
  return r;
}

std::optional<SymExpr> SymExpr::divExact(const SymExpr &b) const {
  if (b.terms.empty())
    return std::nullopt;
  if (b.terms.size() > 1) {
    // A polynomial divisor (batch * (seq + 4)): try each monomial quotient
    // of a term of this by a term of b, and keep the one that multiplies
    // back exactly.
    for (const auto &[ma, ca] : terms)
      for (const auto &[mb, cb] : b.terms) {
        SymExpr ta, tb;
        ta.terms[ma] = ca;
        tb.terms[mb] = cb;
        std::optional<SymExpr> q = ta.divExact(tb);
        if (q && *q * b == *this)
          return q;
      }
    return std::nullopt;
  }
  const auto &[mb, cb] = *b.terms.begin();
  if (cb == 0)
    return std::nullopt;
  SymExpr r;
  for (const auto &[m, c] : terms) {
    if (c % cb)
      return std::nullopt;
    std::vector<std::string> rest = m;
    for (const std::string &s : mb) {
      auto it = std::find(rest.begin(), rest.end(), s);
      if (it == rest.end())
        return std::nullopt;
      rest.erase(it);
    }
    r.terms[rest] = c / cb;
  }
  return r;
}

std::string SymExpr::str() const {
  if (terms.empty())
    return "0";
  std::string out;
  // Symbolic terms first, the constant last ("seq + 4").
  auto emit = [&](const std::vector<std::string> &m, int64_t c) {
    bool first = out.empty();
    int64_t mag = c < 0 ? -c : c;
    if (first)
      out += c < 0 ? "-" : "";
    else
      out += c < 0 ? " - " : " + ";
    if (m.empty() || mag != 1)
      out += std::to_string(mag) + (m.empty() ? "" : "*");
    for (size_t i = 0; i < m.size(); ++i)
      out += (i ? "*" : "") + m[i];
  };
  for (const auto &[m, c] : terms)
    if (!m.empty())
      emit(m, c);
  if (auto it = terms.find(std::vector<std::string>()); it != terms.end())
    emit({}, it->second);
  return out;
}

std::optional<SymExpr> SymExpr::parse(const std::string &text) {
  SymExpr r;
  size_t i = 0, n = text.size();
  auto skip = [&] {
    while (i < n && text[i] == ' ')
      ++i;
  };
  int64_t sign = 1;
  skip();
  if (i < n && text[i] == '-') {
    sign = -1;
    ++i;
  }
  while (true) {
    skip();
    SymExpr term(sign);
    bool any = false;
    while (true) {
      skip();
      if (i < n && std::isdigit(static_cast<unsigned char>(text[i]))) {
        int64_t v = 0;
        while (i < n && std::isdigit(static_cast<unsigned char>(text[i])))
          v = v * 10 + (text[i++] - '0');
        term = term * SymExpr(v);
      } else if (i < n && (std::isalpha(static_cast<unsigned char>(text[i])) ||
                           text[i] == '_')) {
        size_t b = i;
        while (i < n && (std::isalnum(static_cast<unsigned char>(text[i])) ||
                         text[i] == '_' || text[i] == '.' || text[i] == ':'))
          ++i;
        term = term * SymExpr::symbol(text.substr(b, i - b));
      } else {
        return std::nullopt;
      }
      any = true;
      skip();
      if (i < n && text[i] == '*') {
        ++i;
        continue;
      }
      break;
    }
    if (!any)
      return std::nullopt;
    r = r + term;
    skip();
    if (i == n)
      return r;
    if (text[i] != '+' && text[i] != '-')
      return std::nullopt;
    sign = text[i] == '-' ? -1 : 1;
    ++i;
  }
}

static int64_t floorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

std::optional<SymExpr> symBinary(const std::string &op, const SymExpr &a,
                                 const SymExpr &b) {
  if (op == "Add")
    return a + b;
  if (op == "Sub")
    return a - b;
  if (op == "Mul")
    return a * b;
  auto ca = a.constant(), cb = b.constant();
  if (op == "Div") {
    if (cb && *cb == 0)
      return std::nullopt;
    if (ca && cb) // ONNX integer Div truncates toward zero
      return SymExpr(*ca / *cb);
    return a.divExact(b);
  }
  if (op == "Mod" && ca && cb && *cb != 0) {
    int64_t m = *ca - floorDiv(*ca, *cb) * *cb; // fmod=0: sign of divisor
    return SymExpr(m);
  }
  if (op == "Max" || op == "Min") {
    if (a == b)
      return a;
    if (ca && cb)
      return SymExpr(op == "Max" ? std::max(*ca, *cb) : std::min(*ca, *cb));
    return std::nullopt;
  }
  if (op == "Equal") {
    if (a == b)
      return SymExpr(1);
    if (ca && cb)
      return SymExpr(0);
    // Symbols are sizes (>= 1) and expressions of them with non-negative
    // coefficients stay >= 1: never equal to a constant <= 0 (the -1 tests
    // of exported Expand/Reshape shapes).
    auto positive = [](const SymExpr &e) {
      for (const auto &[m, c] : e.terms)
        if (c < 0)
          return false;
      return !e.isConst();
    };
    if ((cb && *cb <= 0 && positive(a)) || (ca && *ca <= 0 && positive(b)))
      return SymExpr(0);
    // Two different symbolic values may still be equal at run time.
    return std::nullopt;
  }
  if ((op == "Less" || op == "Greater") && ca && cb)
    return SymExpr(op == "Less" ? *ca < *cb : *ca > *cb);
  return std::nullopt;
}

} // namespace w4a4::onnx_import
