//===- ParseDeadline.cpp - a time limit on reading MLIR input -------------===//

#include "support/ParseDeadline.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/CrashRecoveryContext.h"
#include "llvm/Support/ErrorHandling.h"

#include <chrono>
#include <cstdio>
#include <sys/resource.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define W4A4_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define W4A4_UNDER_ASAN 1
#endif
#endif
#ifndef W4A4_UNDER_ASAN
#define W4A4_UNDER_ASAN 0
#endif
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

namespace {
/// The process's mapped bytes now (/proc/self/statm's first field).
size_t mappedBytes() {
  std::FILE *f = std::fopen("/proc/self/statm", "r");
  unsigned long pages = 0;
  if (f) {
    if (std::fscanf(f, "%lu", &pages) != 1)
      pages = 0;
    std::fclose(f);
  }
  return static_cast<size_t>(pages) *
         static_cast<size_t>(sysconf(_SC_PAGESIZE));
}
} // namespace

void parseOrExitOnCrash(llvm::function_ref<void()> parse, size_t inputBytes) {
  // An address-space bound while reading: MLIR's reader sizes vectors by
  // counts from the file before checking them, and past 2^32 values its
  // 32-bit index arithmetic wraps and writes out of bounds. A legitimate
  // read needs a few times the file; the bound (what is mapped now + 8 GiB
  // + 8 x the file) makes such a count's allocation fail instead (LLVM's
  // bad-alloc handler: an error, exit 1). Not under AddressSanitizer, which
  // reserves terabytes of shadow (there: ASAN_OPTIONS max_allocation_size_mb).
  struct rlimit old {};
  bool bounded = false;
#if !W4A4_UNDER_ASAN
  if (getrlimit(RLIMIT_AS, &old) == 0) {
    rlim_t want = mappedBytes() + (rlim_t(8) << 30) + 8 * rlim_t(inputBytes);
    if (old.rlim_cur == RLIM_INFINITY || old.rlim_cur > want) {
      struct rlimit bound = old;
      bound.rlim_cur = want;
      bounded = setrlimit(RLIMIT_AS, &bound) == 0;
    }
  }
#endif
  llvm::CrashRecoveryContext::Enable();
  llvm::CrashRecoveryContext recovery;
  bool ok = recovery.RunSafely(parse);
  llvm::CrashRecoveryContext::Disable();
  if (bounded)
    setrlimit(RLIMIT_AS, &old);
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
