//===- ParseDeadline.h - a time limit on reading MLIR input -----*- C++ -*-===//
//
// MLIR 22's bytecode reader loops forever on some malformed files (an
// attribute whose encoding refers to itself: its deferred-parsing worklist
// retries the cycle without end; found by the IR fuzzer). The tools read
// their model under a ParseDeadline: when reading has not finished in time
// the process reports a fatal error, which exitCleanlyOnFatalErrors turns
// into "<tool>: error: <input>: ..." and exit code 1 after removing the
// temporary files.
//
//===----------------------------------------------------------------------===//

#ifndef W4A4_SUPPORT_PARSEDEADLINE_H
#define W4A4_SUPPORT_PARSEDEADLINE_H

#include "llvm/ADT/STLFunctionalExtras.h"

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>

namespace w4a4 {

/// The time allowed to read `bytes` of MLIR: W4A4_PARSE_DEADLINE_S when set
/// (seconds; 0 turns the deadline off), else 60 s plus 1 s per 8 MiB (a
/// legitimate file reads at hundreds of MB/s).
double parseDeadlineSeconds(size_t bytes);

/// Runs `parse` (reading a model: MLIR's parser and its bytecode reader) in
/// an llvm::CrashRecoveryContext. MLIR 22's bytecode reader writes out of
/// bounds on some malformed files (a value index range that wraps in 32
/// bits; found by the IR fuzzer): such a crash is reported as
/// "<tool>: error: <input>: MLIR's reader crashed on this file (malformed
/// input?)" and the process exits 1 after removing its temporary files
/// (exitCleanlyOnFatalErrors names tool and input). Nothing runs after a
/// crash: the process ends at once. While `parse` runs, the address space
/// is bounded by what is mapped + 8 GiB + 8 x `inputBytes`, so that counts
/// from a malformed file fail their allocation before the reader's 32-bit
/// index arithmetic can wrap.
void parseOrExitOnCrash(llvm::function_ref<void()> parse, size_t inputBytes);

class ParseDeadline {
public:
  /// Arms the deadline (`seconds` <= 0: none).
  explicit ParseDeadline(double seconds);
  /// Disarms it: reading finished.
  void disarm();
  ~ParseDeadline() { disarm(); }
  ParseDeadline(const ParseDeadline &) = delete;
  ParseDeadline &operator=(const ParseDeadline &) = delete;

private:
  std::mutex mutex;
  std::condition_variable done;
  bool finished = false;
  std::thread watchdog;
};

} // namespace w4a4

#endif
