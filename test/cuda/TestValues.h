//===- TestValues.h - random inputs for the CUDA kernels' tests ----------===//

#ifndef W4A4_TEST_CUDA_TESTVALUES_H
#define W4A4_TEST_CUDA_TESTVALUES_H

#include <cstdint>
#include <random>
#include <vector>

namespace w4a4::cuda::test {

/// n normal values of standard deviation sigma, reproducible from seed.
inline std::vector<float> randomValues(int64_t n, float sigma, unsigned seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, sigma);
  std::vector<float> v(n);
  for (float &x : v)
    x = d(g);
  return v;
}

} // namespace w4a4::cuda::test

#endif // W4A4_TEST_CUDA_TESTVALUES_H
