//===- Hadamard.cpp - Hadamard matrices and transforms --------------------===//
//
// Paley constructions over GF(q), q = p^e a prime power:
//   Paley I  (q = 3 mod 4): order q + 1,    H = I + [[0, 1^T], [-1, Q]]
//   Paley II (q = 1 mod 4): order 2(q + 1), C = [[0, 1^T], [1, Q]] with
//            0 -> [[1, -1], [-1, -1]] and +-1 -> +-[[1, 1], [1, -1]]
// where Q is the Jacobsthal matrix Q[a][b] = chi(a - b) and chi is the
// quadratic character of GF(q).
//
//===----------------------------------------------------------------------===//

#include "w4a4/runtime/Hadamard.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <map>

namespace w4a4::rt {
namespace {

/// Arithmetic in GF(p^e). Elements are integers in [0, p^e) whose base-p
/// digits are the coefficients of a polynomial over GF(p), reduced modulo a
/// monic irreducible polynomial of degree e.
class GaloisField {
public:
  GaloisField(int64_t p, int64_t e) : p(p), e(e) {
    q = 1;
    for (int64_t i = 0; i < e; ++i)
      q *= p;
    modulus = findIrreducible();
  }

  int64_t order() const { return q; }

  int64_t sub(int64_t a, int64_t b) const {
    std::vector<int64_t> x = digits(a), y = digits(b);
    for (int64_t i = 0; i < e; ++i)
      x[i] = ((x[i] - y[i]) % p + p) % p;
    return fromDigits(x);
  }

  int64_t mul(int64_t a, int64_t b) const {
    std::vector<int64_t> x = digits(a), y = digits(b);
    std::vector<int64_t> prod(2 * e, 0);
    for (int64_t i = 0; i < e; ++i)
      for (int64_t j = 0; j < e; ++j)
        prod[i + j] = (prod[i + j] + x[i] * y[j]) % p;
    // Reduce by the monic modulus (coefficients modulus[0..e], modulus[e] = 1).
    for (int64_t deg = 2 * e - 1; deg >= e; --deg) {
      int64_t c = prod[deg];
      if (c == 0)
        continue;
      for (int64_t i = 0; i <= e; ++i)
        prod[deg - e + i] = ((prod[deg - e + i] - c * modulus[i]) % p + p) % p;
    }
    prod.resize(e);
    return fromDigits(prod);
  }

  /// chi(x): 0 for x = 0, +1 for a nonzero square, -1 otherwise.
  std::vector<int8_t> quadraticCharacter() const {
    std::vector<int8_t> chi(q, -1);
    chi[0] = 0;
    for (int64_t x = 1; x < q; ++x)
      chi[mul(x, x)] = 1;
    return chi;
  }

private:
  std::vector<int64_t> digits(int64_t a) const {
    std::vector<int64_t> d(e);
    for (int64_t i = 0; i < e; ++i, a /= p)
      d[i] = a % p;
    return d;
  }
  int64_t fromDigits(const std::vector<int64_t> &d) const {
    int64_t a = 0;
    for (int64_t i = e - 1; i >= 0; --i)
      a = a * p + d[i];
    return a;
  }

  /// Remainder of poly (coefficients low to high) modulo a monic divisor.
  bool divides(std::vector<int64_t> poly,
               const std::vector<int64_t> &div) const {
    int64_t dd = static_cast<int64_t>(div.size()) - 1;
    for (int64_t deg = static_cast<int64_t>(poly.size()) - 1; deg >= dd;
         --deg) {
      int64_t c = poly[deg];
      for (int64_t i = 0; i <= dd; ++i)
        poly[deg - dd + i] = ((poly[deg - dd + i] - c * div[i]) % p + p) % p;
    }
    for (int64_t i = 0; i < dd; ++i)
      if (poly[i] != 0)
        return false;
    return true;
  }

  /// Monic polynomial of degree `deg` from the base-p digits of `code`.
  std::vector<int64_t> monic(int64_t deg, int64_t code) const {
    std::vector<int64_t> poly(deg + 1);
    for (int64_t i = 0; i < deg; ++i, code /= p)
      poly[i] = code % p;
    poly[deg] = 1;
    return poly;
  }

  /// The first monic irreducible polynomial of degree e (in digit order).
  std::vector<int64_t> findIrreducible() const {
    if (e == 1)
      return {0, 1};
    for (int64_t code = 0; code < q; ++code) {
      std::vector<int64_t> cand = monic(e, code);
      bool reducible = false;
      for (int64_t d = 1; d <= e / 2 && !reducible; ++d) {
        int64_t count = 1;
        for (int64_t i = 0; i < d; ++i)
          count *= p;
        for (int64_t c = 0; c < count && !reducible; ++c)
          reducible = divides(cand, monic(d, c));
      }
      if (!reducible)
        return cand;
    }
    assert(false && "every finite field has an irreducible polynomial");
    return {};
  }

  int64_t p, e, q = 1;
  std::vector<int64_t> modulus;
};

enum class PaleyKind { I, II };
struct PaleyRecipe {
  int64_t p, e;
  PaleyKind kind;
};

/// Splits q into p^e if q is a prime power.
std::optional<std::pair<int64_t, int64_t>> primePower(int64_t q) {
  if (q < 2)
    return std::nullopt;
  int64_t p = 2;
  while (p * p <= q && q % p != 0)
    ++p;
  if (q % p != 0)
    p = q;
  int64_t e = 0;
  while (q % p == 0) {
    q /= p;
    ++e;
  }
  if (q != 1)
    return std::nullopt;
  return std::make_pair(p, e);
}

/// Preference among constructions of one order (lower wins): Paley I over a
/// prime field, Paley II over a prime field, then the same over prime-power
/// fields. The reference evaluator (models/reference/w4a4ref/hadamard.py)
/// follows the same rule, so both build identical matrices.
int recipeRank(const PaleyRecipe &r) {
  return (r.e == 1 ? 0 : 2) + (r.kind == PaleyKind::I ? 0 : 1);
}

const std::map<int64_t, PaleyRecipe> &paleyRecipes() {
  static const std::map<int64_t, PaleyRecipe> recipes = [] {
    std::map<int64_t, PaleyRecipe> r;
    for (int64_t q = 3; q < kMaxHadamardBaseOrder; ++q) {
      auto pe = primePower(q);
      if (!pe)
        continue;
      int64_t m = (q % 4 == 3) ? q + 1 : (q % 4 == 1) ? 2 * (q + 1) : 0;
      if (m == 0 || m > kMaxHadamardBaseOrder || isPowerOfTwo(m))
        continue;
      PaleyRecipe recipe{pe->first, pe->second,
                         (q % 4 == 3) ? PaleyKind::I : PaleyKind::II};
      auto it = r.find(m);
      if (it == r.end() || recipeRank(recipe) < recipeRank(it->second))
        r[m] = recipe;
    }
    return r;
  }();
  return recipes;
}

std::vector<int8_t> buildPaley(int64_t m, const PaleyRecipe &recipe) {
  GaloisField field(recipe.p, recipe.e);
  int64_t q = field.order();
  std::vector<int8_t> chi = field.quadraticCharacter();
  auto jacobsthal = [&](int64_t a, int64_t b) { return chi[field.sub(a, b)]; };
  std::vector<int8_t> h(m * m);
  if (recipe.kind == PaleyKind::I) {
    // H = I + S, S = [[0, 1^T], [-1, Q]].
    for (int64_t i = 0; i <= q; ++i)
      for (int64_t j = 0; j <= q; ++j) {
        int s;
        if (i == 0)
          s = j == 0 ? 0 : 1;
        else if (j == 0)
          s = -1;
        else
          s = jacobsthal(i - 1, j - 1);
        h[i * m + j] = static_cast<int8_t>(s + (i == j ? 1 : 0));
      }
    return h;
  }
  // Paley II from the symmetric conference matrix C = [[0, 1^T], [1, Q]].
  for (int64_t i = 0; i <= q; ++i)
    for (int64_t j = 0; j <= q; ++j) {
      int c = (i == 0 || j == 0) ? (i == j ? 0 : 1) : jacobsthal(i - 1, j - 1);
      int8_t block[2][2];
      if (c == 0) {
        block[0][0] = 1, block[0][1] = -1, block[1][0] = -1, block[1][1] = -1;
      } else {
        block[0][0] = c, block[0][1] = c, block[1][0] = c, block[1][1] = -c;
      }
      for (int a = 0; a < 2; ++a)
        for (int b = 0; b < 2; ++b)
          h[(2 * i + a) * m + (2 * j + b)] = block[a][b];
    }
  return h;
}

} // namespace

bool isPowerOfTwo(int64_t n) { return n > 0 && (n & (n - 1)) == 0; }

const std::vector<int64_t> &knownHadamardBaseOrders() {
  static const std::vector<int64_t> orders = [] {
    std::vector<int64_t> o;
    for (const auto &entry : paleyRecipes())
      o.push_back(entry.first);
    return o;
  }();
  return orders;
}

std::optional<HadamardFactors> factorHadamardOrder(int64_t n) {
  if (n <= 0)
    return std::nullopt;
  int64_t twos = 0;
  while ((n >> twos) % 2 == 0)
    ++twos;
  // Try the largest power of two first, i.e. the smallest base order.
  for (int64_t k = twos; k >= 0; --k) {
    int64_t base = n >> k;
    if (base == 1 || paleyRecipes().count(base))
      return HadamardFactors{base, k};
  }
  return std::nullopt;
}

std::vector<int8_t> buildHadamardMatrix(int64_t n) {
  std::optional<HadamardFactors> f = factorHadamardOrder(n);
  if (!f)
    return {};
  std::vector<int8_t> base{1};
  if (f->base != 1)
    base = buildPaley(f->base, paleyRecipes().at(f->base));
  int64_t m = f->base, w = int64_t{1} << f->log2Factor;
  std::vector<int8_t> h(n * n);
  for (int64_t a = 0; a < m; ++a)
    for (int64_t b = 0; b < w; ++b)
      for (int64_t c = 0; c < m; ++c)
        for (int64_t d = 0; d < w; ++d) {
          int8_t walsh =
              (__builtin_popcountll(static_cast<uint64_t>(b & d)) & 1) ? -1 : 1;
          h[(a * w + b) * n + (c * w + d)] =
              static_cast<int8_t>(base[a * m + c] * walsh);
        }
  return h;
}

std::vector<float> seededSigns(uint64_t seed, int64_t n) {
  std::vector<float> signs(n);
  uint64_t state = seed;
  for (int64_t i = 0; i < n; ++i) {
    state += 0x9E3779B97F4A7C15ull;
    uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    signs[i] = (z >> 63) ? -1.0f : 1.0f;
  }
  return signs;
}

} // namespace w4a4::rt
