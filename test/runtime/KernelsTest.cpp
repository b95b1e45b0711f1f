//===- KernelsTest.cpp - CPU kernels against float64 references -----------===//
//
// Fresh random inputs per test, outputs poisoned with NaN before each run,
// relative error (Frobenius) against a float64 reference <= 1e-5.
//
//===----------------------------------------------------------------------===//

#include "w4a4/runtime/Kernels.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

using namespace w4a4::rt;

namespace {

std::mt19937_64 &rng() {
  static std::mt19937_64 gen(std::random_device{}());
  return gen;
}

std::vector<float> randn(int64_t n, float scale = 1.0f) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float &x : v)
    x = d(rng());
  return v;
}

std::vector<float> poisoned(int64_t n) {
  return std::vector<float>(n, std::numeric_limits<float>::quiet_NaN());
}

double relErr(const std::vector<float> &got, const std::vector<double> &ref) {
  EXPECT_EQ(got.size(), ref.size());
  double err = 0, norm = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    err += (got[i] - ref[i]) * (got[i] - ref[i]);
    norm += ref[i] * ref[i];
  }
  return std::sqrt(err / norm);
}

TEST(Kernels, Embedding) {
  int64_t vocab = 11, hidden = 5;
  auto table = randn(vocab * hidden);
  std::vector<int64_t> ids = {3, 0, 10, 3};
  auto out = poisoned(ids.size() * hidden);
  ASSERT_TRUE(
      embedding(table.data(), vocab, hidden, ids.data(), ids.size(), out.data())
          .ok());
  for (size_t i = 0; i < ids.size(); ++i)
    for (int64_t c = 0; c < hidden; ++c)
      EXPECT_EQ(out[i * hidden + c], table[ids[i] * hidden + c]);
  std::vector<int64_t> bad = {1, 11};
  Status s = embedding(table.data(), vocab, hidden, bad.data(), 2, out.data());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(),
            "token id 11 at position 1 is outside the vocabulary [0, 11)");
}

TEST(Kernels, RMSNorm) {
  int64_t rows = 9, cols = 67;
  auto x = randn(rows * cols, 3.0f), g = randn(cols);
  for (bool withGain : {false, true}) {
    auto out = poisoned(rows * cols);
    rmsNorm(x.data(), withGain ? g.data() : nullptr, rows, cols, 1e-5,
            out.data());
    std::vector<double> ref(rows * cols);
    for (int64_t r = 0; r < rows; ++r) {
      double ss = 0;
      for (int64_t c = 0; c < cols; ++c)
        ss += double(x[r * cols + c]) * x[r * cols + c];
      double d = std::sqrt(ss / cols + 1e-5);
      for (int64_t c = 0; c < cols; ++c)
        ref[r * cols + c] = x[r * cols + c] / d * (withGain ? g[c] : 1.0);
    }
    EXPECT_LE(relErr(out, ref), 1e-5);
  }
}

TEST(Kernels, LinearOddShapes) {
  for (auto [rows, in, out] : {std::tuple<int64_t, int64_t, int64_t>{7, 33, 19},
                               {1, 256, 768},
                               {130, 64, 5}}) {
    auto x = randn(rows * in), w = randn(out * in), b = randn(out);
    for (bool withBias : {false, true}) {
      auto y = poisoned(rows * out);
      linear(x.data(), w.data(), withBias ? b.data() : nullptr, rows, in, out,
             y.data());
      std::vector<double> ref(rows * out);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t o = 0; o < out; ++o) {
          double acc = withBias ? b[o] : 0.0;
          for (int64_t i = 0; i < in; ++i)
            acc += double(x[r * in + i]) * w[o * in + i];
          ref[r * out + o] = acc;
        }
      EXPECT_LE(relErr(y, ref), 1e-5) << rows << "x" << in << "x" << out;
    }
  }
}

/// Float64 RoPE of x [batch * seq, heads, d]: row bs at position pos(bs).
template <typename Position>
std::vector<double> referenceRope(const std::vector<float> &x, int64_t rows,
                                  int64_t heads, int64_t d, double theta,
                                  bool interleaved, Position pos) {
  std::vector<double> ref(x.size());
  for (int64_t bs = 0; bs < rows; ++bs)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < d / 2; ++i) {
        double ang = double(pos(bs)) * std::pow(theta, -2.0 * i / d);
        int64_t a = interleaved ? 2 * i : i,
                b = interleaved ? 2 * i + 1 : i + d / 2;
        int64_t base = bs * heads * d + h * d;
        ref[base + a] =
            x[base + a] * std::cos(ang) - x[base + b] * std::sin(ang);
        ref[base + b] =
            x[base + b] * std::cos(ang) + x[base + a] * std::sin(ang);
      }
  return ref;
}

TEST(Kernels, RoPE) {
  int64_t batch = 2, seq = 9, heads = 3, d = 16;
  auto x = randn(batch * seq * heads * d);
  // Offsets inside the cached table, past its first size (it grows), and
  // negative (computed without the cache).
  for (int64_t offset : {5, 700, -3})
    for (bool interleaved : {false, true}) {
      auto out = poisoned(x.size());
      rope(x.data(), batch, seq, heads, d, 10000.0, offset, interleaved,
           out.data());
      std::vector<double> ref =
          referenceRope(x, batch * seq, heads, d, 10000.0, interleaved,
                        [&](int64_t bs) { return bs % seq + offset; });
      EXPECT_LE(relErr(out, ref), 1e-5)
          << "offset " << offset << " interleaved " << interleaved;
    }
}

/// Float64 causal attention: query t of batch b, head h sees keys
/// key(b, g, j) / values val(b, g, j) for j < visible(t) (g = h's KV head).
template <typename Rows, typename Visible>
std::vector<double>
referenceAttention(const std::vector<float> &q, int64_t batch, int64_t seq,
                   int64_t heads, int64_t kvHeads, int64_t d, double scale,
                   Rows key, Rows val, Visible visible) {
  std::vector<double> ref(q.size());
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h) {
      int64_t g = h / (heads / kvHeads);
      for (int64_t t = 0; t < seq; ++t) {
        std::vector<double> sc;
        double mx = -1e300;
        for (int64_t j = 0; j < visible(t); ++j) {
          double dot = 0;
          for (int64_t e = 0; e < d; ++e)
            dot += double(q[(b * seq + t) * heads * d + h * d + e]) *
                   key(b, g, j)[e];
          sc.push_back(dot * scale);
          mx = std::max(mx, sc.back());
        }
        double sum = 0;
        for (double &s : sc)
          sum += (s = std::exp(s - mx));
        for (int64_t e = 0; e < d; ++e) {
          double acc = 0;
          for (size_t j = 0; j < sc.size(); ++j)
            acc += sc[j] / sum * val(b, g, j)[e];
          ref[(b * seq + t) * heads * d + h * d + e] = acc;
        }
      }
    }
  return ref;
}

TEST(Kernels, AttentionGQAWithPrefix) {
  int64_t heads = 4, kvHeads = 2, d = 8;
  // Short sequences, and ones spanning several causal query blocks of 64.
  for (auto shape : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
           {2, 7, 0}, {2, 7, 3}, {1, 150, 0}, {2, 129, 5}}) {
    // Plain variables: the lambdas below capture them (a structured
    // binding cannot be captured before C++20).
    int64_t batch = std::get<0>(shape), seq = std::get<1>(shape),
            prefix = std::get<2>(shape);
    auto q = randn(batch * seq * heads * d),
         k = randn(batch * seq * kvHeads * d),
         v = randn(batch * seq * kvHeads * d),
         kp = randn(prefix * kvHeads * d + 1),
         vp = randn(prefix * kvHeads * d + 1);
    double scale = 1.0 / std::sqrt(double(d));
    auto out = poisoned(q.size());
    attention(q.data(), k.data(), v.data(), prefix ? kp.data() : nullptr,
              prefix ? vp.data() : nullptr, prefix, batch, seq, heads, kvHeads,
              d, scale, out.data());
    int64_t w = kvHeads * d;
    auto rows = [&](const std::vector<float> &p, const std::vector<float> &x) {
      return [&, w](int64_t b, int64_t g, int64_t j) {
        return j < prefix ? &p[j * w + g * d]
                          : &x[(b * seq + j - prefix) * w + g * d];
      };
    };
    std::vector<double> ref = referenceAttention(
        q, batch, seq, heads, kvHeads, d, scale, rows(kp, k), rows(vp, v),
        [&](int64_t t) { return prefix + t + 1; });
    EXPECT_LE(relErr(out, ref), 1e-5) << "seq " << seq << " prefix " << prefix;
  }
}

TEST(Kernels, RoPEAtPositions) {
  int64_t batch = 2, seq = 6, heads = 2, d = 16;
  auto x = randn(batch * seq * heads * d);
  // Per-token positions (ragged across the batch), against float64.
  std::vector<int64_t> pos = {0, 1, 2, 3, 4, 5, 37, 38, 39, 900, 2, 0};
  for (bool interleaved : {false, true}) {
    auto out = poisoned(x.size());
    ropeAt(x.data(), pos.data(), batch, seq, heads, d, 500000.0, 3, interleaved,
           out.data());
    std::vector<double> ref =
        referenceRope(x, batch * seq, heads, d, 500000.0, interleaved,
                      [&](int64_t bs) { return pos[bs] + 3; });
    EXPECT_LE(relErr(out, ref), 1e-5) << "interleaved " << interleaved;
  }
  // Positions 0..seq-1 give rope()'s bits.
  std::vector<int64_t> iota(batch * seq);
  for (int64_t j = 0; j < batch * seq; ++j)
    iota[j] = j % seq;
  auto a = poisoned(x.size()), b = poisoned(x.size());
  rope(x.data(), batch, seq, heads, d, 10000.0, 0, false, a.data());
  ropeAt(x.data(), iota.data(), batch, seq, heads, d, 10000.0, 0, false,
         b.data());
  EXPECT_EQ(a, b);
}

TEST(Kernels, AttentionReadsAndWritesTheKVCache) {
  int64_t heads = 4, kvHeads = 2, d = 8, kvw = kvHeads * d;
  // (batch, past, seq, prefix): a decode step, a chunk spanning query
  // blocks, an empty past, a register prefix before the past.
  for (auto shape : std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t>>{
           {2, 5, 1, 0}, {1, 70, 66, 0}, {2, 0, 7, 0}, {2, 4, 3, 2}}) {
    int64_t batch = std::get<0>(shape), past = std::get<1>(shape),
            seq = std::get<2>(shape), prefix = std::get<3>(shape);
    int64_t total = past + seq;
    auto q = randn(batch * seq * heads * d), k = randn(batch * seq * kvw),
         v = randn(batch * seq * kvw), pk = randn(batch * kvw * past + 1),
         pv = randn(batch * kvw * past + 1), kp = randn(prefix * kvw + 1),
         vp = randn(prefix * kvw + 1);
    double scale = 0.3;
    auto out = poisoned(q.size()), nk = poisoned(batch * kvw * total),
         nv = poisoned(batch * kvw * total);
    attentionCached(q.data(), k.data(), v.data(), prefix ? kp.data() : nullptr,
                    prefix ? vp.data() : nullptr, prefix, pk.data(), pv.data(),
                    past, batch, seq, heads, kvHeads, d, scale, out.data(),
                    nk.data(), nv.data());
    // present[b, g, j] = past[b, g, j] for j < past, else k[b, j - past, g].
    auto cached = [&](const std::vector<float> &p, const std::vector<float> &x,
                      int64_t b, int64_t g, int64_t j) {
      return j < past ? &p[((b * kvHeads + g) * past + j) * d]
                      : &x[(b * seq + j - past) * kvw + g * d];
    };
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t g = 0; g < kvHeads; ++g)
        for (int64_t j = 0; j < total; ++j)
          for (int64_t e = 0; e < d; ++e) {
            ASSERT_EQ(nk[((b * kvHeads + g) * total + j) * d + e],
                      cached(pk, k, b, g, j)[e]);
            ASSERT_EQ(nv[((b * kvHeads + g) * total + j) * d + e],
                      cached(pv, v, b, g, j)[e]);
          }
    auto rows = [&](const std::vector<float> &p, const std::vector<float> &pc,
                    const std::vector<float> &x) {
      return [&](int64_t b, int64_t g, int64_t j) {
        return j < prefix ? &p[j * kvw + g * d]
                          : cached(pc, x, b, g, j - prefix);
      };
    };
    std::vector<double> ref = referenceAttention(
        q, batch, seq, heads, kvHeads, d, scale, rows(kp, pk, k),
        rows(vp, pv, v), [&](int64_t t) { return prefix + past + t + 1; });
    EXPECT_LE(relErr(out, ref), 1e-5)
        << "past " << past << " seq " << seq << " prefix " << prefix;
  }
}

TEST(Kernels, SwiGLUAndAdd) {
  int64_t n = 1001;
  auto a = randn(n, 4.0f), b = randn(n);
  auto s = poisoned(n), r = poisoned(n);
  swiglu(a.data(), b.data(), n, s.data());
  add(a.data(), b.data(), n, r.data());
  std::vector<double> sref(n), rref(n);
  for (int64_t i = 0; i < n; ++i) {
    sref[i] = double(a[i]) / (1.0 + std::exp(-double(a[i]))) * b[i];
    rref[i] = double(a[i]) + b[i];
  }
  EXPECT_LE(relErr(s, sref), 1e-5);
  EXPECT_LE(relErr(r, rref), 1e-7);
}

TEST(Kernels, SwiGLUOverTheWholeExpRange) {
  // Gates from -100 to 100 (exp clamps beyond the float range), in lengths
  // that are and are not multiples of the vector width; every element within
  // 1e-6 of float64.
  for (int64_t n : {1, 15, 16, 17, 20001}) {
    std::vector<float> g(n), u(n, 1.0f);
    for (int64_t i = 0; i < n; ++i)
      g[i] = n == 1 ? -3.5f : -100.0f + 200.0f * float(i) / float(n - 1);
    auto s = poisoned(n);
    swiglu(g.data(), u.data(), n, s.data());
    for (int64_t i = 0; i < n; ++i) {
      double ref = double(g[i]) / (1.0 + std::exp(-double(g[i])));
      ASSERT_NEAR(s[i], ref, 1e-6 * std::max(1.0, std::fabs(ref)))
          << "gate " << g[i];
    }
  }
}

TEST(Kernels, TokenNllMatchesFloat64) {
  for (auto [rows, vocab] : std::vector<std::pair<int64_t, int64_t>>{
           {1, 5}, {3, 16}, {37, 4096}, {5, 1001}}) {
    auto logits = randn(rows * vocab, 6.0f);
    std::vector<int64_t> targets(rows);
    for (int64_t r = 0; r < rows; ++r)
      targets[r] = (r * 7919) % vocab;
    std::vector<double> nll(rows, std::nan(""));
    ASSERT_TRUE(
        tokenNll(logits.data(), rows, vocab, targets.data(), nll.data()).ok());
    for (int64_t r = 0; r < rows; ++r) {
      const float *row = logits.data() + r * vocab;
      double mx = *std::max_element(row, row + vocab), sum = 0;
      for (int64_t v = 0; v < vocab; ++v)
        sum += std::exp(double(row[v]) - mx);
      double ref = std::log(sum) - (double(row[targets[r]]) - mx);
      EXPECT_NEAR(nll[r], ref, 1e-6 * std::max(1.0, ref)) << "row " << r;
    }
  }
  std::vector<float> logits(8, 0.0f);
  std::vector<int64_t> bad = {8};
  std::vector<double> nll(1);
  Status s = tokenNll(logits.data(), 1, 8, bad.data(), nll.data());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("outside the vocabulary"), std::string::npos);
}

TEST(Kernels, Registers) {
  int64_t batch = 2, seq = 5, k = 2, hidden = 3;
  auto x = randn(batch * seq * hidden), regs = randn(k * hidden);
  auto pre = poisoned(batch * (seq + k) * hidden);
  ASSERT_TRUE(registers(RegisterMode::Prepend, x.data(), regs.data(), batch,
                        seq, k, hidden, pre.data())
                  .ok());
  auto added = poisoned(x.size());
  ASSERT_TRUE(registers(RegisterMode::Add, x.data(), regs.data(), batch, seq, k,
                        hidden, added.data())
                  .ok());
  auto strip = poisoned(batch * (seq - k) * hidden);
  ASSERT_TRUE(registers(RegisterMode::Strip, x.data(), regs.data(), batch, seq,
                        k, hidden, strip.data())
                  .ok());
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t s = 0; s < seq + k; ++s)
      for (int64_t c = 0; c < hidden; ++c) {
        float expect =
            s < k ? regs[s * hidden + c] : x[(b * seq + s - k) * hidden + c];
        EXPECT_EQ(pre[(b * (seq + k) + s) * hidden + c], expect);
        if (s < seq) {
          float a = x[(b * seq + s) * hidden + c] +
                    (s < k ? regs[s * hidden + c] : 0.0f);
          EXPECT_EQ(added[(b * seq + s) * hidden + c], a);
        }
        if (s < seq - k) {
          EXPECT_EQ(strip[(b * (seq - k) + s) * hidden + c],
                    x[(b * seq + s + k) * hidden + c]);
        }
      }
  Status s = registers(RegisterMode::Add, x.data(), regs.data(), batch, 1, k,
                       hidden, added.data());
  EXPECT_FALSE(s.ok());
}

TEST(Kernels, QuantizeRowsRoundHalfEvenAndClamp) {
  // max|x| = 7 -> s = 1: ties 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -3.5 -> -4.
  std::vector<float> x = {0.5f, 1.5f, 2.5f, -3.5f, 7.0f, -7.0f, 0.49f, 6.5f};
  auto out = poisoned(x.size());
  quantizeRows(x.data(), 1, x.size(), 4, 1.0, out.data());
  std::vector<float> expect = {0, 2, 2, -4, 7, -7, 0, 6};
  for (size_t i = 0; i < x.size(); ++i)
    EXPECT_EQ(out[i], expect[i]) << i;
  // Clip 0.5: s = 0.5, values beyond +-3.5 clamp to [-8, 7] * 0.5.
  quantizeRows(x.data(), 1, x.size(), 4, 0.5, out.data());
  EXPECT_EQ(out[4], 3.5f);
  EXPECT_EQ(out[5], -4.0f);
  // An all-zero row stays zero.
  std::vector<float> z(4, 0.0f);
  auto zo = poisoned(4);
  quantizeRows(z.data(), 1, 4, 4, 1.0, zo.data());
  for (float v : zo)
    EXPECT_EQ(v, 0.0f);
}

} // namespace
