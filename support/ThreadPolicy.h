//===- ThreadPolicy.h - OpenMP threads that park on a busy machine -*- C++
//-*-===//
//
// libgomp's default wait policy spins at every barrier; with one of two
// cores busy with another process, spinning workers measured a 24x slowdown
// of a perplexity run (docs/tools/w4a4-run.md). The policy is read once when
// libgomp loads, before main, so a tool that runs kernels calls
// useParkingThreads() first thing in main: unless the user chose a policy
// (OMP_WAIT_POLICY or GOMP_SPINCOUNT set), it sets OMP_WAIT_POLICY=passive
// and re-executes itself with the same arguments.
//
//===----------------------------------------------------------------------===//

#ifndef W4A4_SUPPORT_THREADPOLICY_H
#define W4A4_SUPPORT_THREADPOLICY_H

namespace w4a4 {

/// Re-executes the process with OMP_WAIT_POLICY=passive unless a wait
/// policy is already set (then, or if re-executing fails, returns).
void useParkingThreads(int argc, char **argv);

} // namespace w4a4

#endif // W4A4_SUPPORT_THREADPOLICY_H
