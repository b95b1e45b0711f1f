//===- Sampling.h - choosing the next token ---------------------*- C++ -*-===//

#ifndef W4A4_RUNTIME_SAMPLING_H
#define W4A4_RUNTIME_SAMPLING_H

#include <cstdint>

namespace w4a4::rt {

struct SamplingOptions {
  /// 0: greedy (the first largest logit).
  double temperature = 0.0;
  /// Keep the k most likely tokens (0: all).
  int64_t topK = 0;
  /// Keep the most likely tokens whose probabilities reach p (1: all).
  double topP = 1.0;
};

/// The next token from `logits` [vocab]: greedy, or a draw from
/// softmax(logits / temperature) restricted by top-k, then top-p (ties
/// broken by the lower id), in float64. `state` is the generator's
/// (SplitMix64), advanced by one draw: a seed reproduces a sequence.
int64_t sampleToken(const float *logits, int64_t vocab,
                    const SamplingOptions &options, uint64_t &state);

} // namespace w4a4::rt

#endif
