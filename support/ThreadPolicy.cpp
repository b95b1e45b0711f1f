//===- ThreadPolicy.cpp - OpenMP threads that park on a busy machine ------===//

#include "support/ThreadPolicy.h"

#include <cstdlib>
#include <unistd.h>

namespace w4a4 {

void useParkingThreads(int argc, char **argv) {
  (void)argc;
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT"))
    return;
  if (setenv("OMP_WAIT_POLICY", "passive", /*overwrite=*/0) != 0)
    return;
#ifdef __linux__
  execv("/proc/self/exe", argv);
#endif
  // Re-executing failed: run on with libgomp's default policy.
}

} // namespace w4a4
