//===- ParseDeadline.cpp - a time limit on reading MLIR input -------------===//

#include "support/ParseDeadline.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/CrashRecoveryContext.h"
#include "llvm/Support/ErrorHandling.h"

#include <chrono>
#include <cstdlib>
#include <string>

namespace w4a4 {

double parseDeadlineSeconds(size_t bytes) {
  if (const char *env = std::getenv("W4A4_PARSE_DEADLINE_S")) {
    char *end = nullptr;
    double s = std::strtod(env, &end);
    if (end != env && *end == '\0' && s >= 0)
      return s;
  }
  return 60.0 + static_cast<double>(bytes) / (8.0 * 1024 * 1024);
}

ParseDeadline::ParseDeadline(double seconds) {
  if (!(seconds > 0))
    return;
  watchdog = std::thread([this, seconds] {
    std::unique_lock<std::mutex> lock(mutex);
    if (done.wait_for(lock, std::chrono::duration<double>(seconds),
                      [this] { return finished; }))
      return;
    std::string reason =
        "reading the IR did not finish within " +
        std::to_string(static_cast<long long>(seconds)) +
        " s (MLIR's bytecode reader loops on some malformed files, such as "
        "an attribute that refers to itself; W4A4_PARSE_DEADLINE_S sets the "
        "limit)";
    llvm::report_fatal_error(llvm::StringRef(reason), /*gen_crash_diag=*/false);
  });
}

void parseOrExitOnCrash(llvm::function_ref<void()> parse) {
  llvm::CrashRecoveryContext::Enable();
  llvm::CrashRecoveryContext recovery;
  bool ok = recovery.RunSafely(parse);
  llvm::CrashRecoveryContext::Disable();
  if (!ok)
    llvm::report_fatal_error("MLIR's reader crashed on this file",
                             /*gen_crash_diag=*/false);
}

void ParseDeadline::disarm() {
  {
    std::lock_guard<std::mutex> lock(mutex);
    finished = true;
  }
  done.notify_all();
  if (watchdog.joinable())
    watchdog.join();
}

} // namespace w4a4
