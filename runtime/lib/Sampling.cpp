//===- Sampling.cpp - choosing the next token -----------------------------===//

#include "w4a4/runtime/Sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace w4a4::rt {

int64_t sampleToken(const float *logits, int64_t vocab,
                    const SamplingOptions &options, uint64_t &state) {
  if (vocab <= 0)
    return -1;
  if (options.temperature <= 0.0 || options.topK == 1)
    return std::max_element(logits, logits + vocab) - logits;
  std::vector<int64_t> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  int64_t keep = options.topK > 0 ? std::min(options.topK, vocab) : vocab;
  auto higher = [&](int64_t a, int64_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  };
  std::partial_sort(order.begin(), order.begin() + keep, order.end(), higher);
  order.resize(keep);
  double top = logits[order[0]];
  std::vector<double> p(keep);
  double sum = 0;
  for (int64_t i = 0; i < keep; ++i)
    sum += p[i] = std::exp((logits[order[i]] - top) / options.temperature);
  // top-p: the shortest prefix whose probability reaches p.
  double mass = 0, limit = std::clamp(options.topP, 0.0, 1.0) * sum;
  int64_t n = 0;
  while (n < keep && (n == 0 || mass < limit))
    mass += p[n++];
  // One SplitMix64 draw, uniform in [0, mass).
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  double u = static_cast<double>(z >> 11) * 0x1.0p-53 * mass;
  for (int64_t i = 0; i < n; ++i) {
    if (u < p[i])
      return order[i];
    u -= p[i];
  }
  return order[n - 1];
}

} // namespace w4a4::rt
