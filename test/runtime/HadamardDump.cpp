//===- HadamardDump.cpp - print runtime Hadamard matrices -----------------===//
//
// Test utility: prints the runtime's Hadamard matrix of each order given on
// the command line as rows of +/- characters, so that the Python reference's
// independent construction can be compared with it
// (models/reference/test_reference.py).
//
//===----------------------------------------------------------------------===//

#include "w4a4/runtime/Hadamard.h"

#include <cstdio>
#include <cstdlib>

int main(int argc, char **argv) {
  for (int a = 1; a < argc; ++a) {
    long long n = std::strtoll(argv[a], nullptr, 10);
    std::vector<int8_t> h = w4a4::rt::buildHadamardMatrix(n);
    if (h.empty()) {
      std::fprintf(stderr,
                   "w4a4-hadamard-dump: no Hadamard matrix of order %lld\n", n);
      return 1;
    }
    std::printf("%lld\n", n);
    for (long long i = 0; i < n; ++i) {
      for (long long j = 0; j < n; ++j)
        std::putchar(h[i * n + j] > 0 ? '+' : '-');
      std::putchar('\n');
    }
  }
  return 0;
}
