//===- IRFuzzer.cpp - libFuzzer target over w4a4 IR input -----------------===//
//
// Feeds arbitrary bytes to what w4a4-opt and w4a4-run do with a model file:
// the input check, parsing (text or bytecode) and verification, then the
// executor on a few token ids, then the passes of a quantization pipeline
// (fold registers, fold norms, QuaRot, RTN weights, per-token activations)
// and the executor again. Any input must end in a result or an error, never
// a crash, hang, leak or sanitizer report. Work is bounded: inputs whose
// weights exceed 4 MiB are only parsed and verified. Built by
// scripts/fuzz-ir.sh.
//
// MLIR 22's bytecode reader ends some malformed inputs with a fatal error
// (report_fatal_error, e.g. a region count SmallVector cannot hold) rather
// than a diagnostic. The tools turn that into an error naming the input and
// exit 1 (support/AtomicFile.h, exitCleanlyOnFatalErrors); here the parse
// runs in a CrashRecoveryContext so such an input ends as a rejected input
// instead of ending the fuzzer. A signal inside the bytecode reader ends the
// job as the tools end the process; anywhere else a signal is a crash. The
// reader can also loop forever (an attribute that refers to itself); the tools
// stop it at a deadline (support/ParseDeadline.h) with an error; here a
// watchdog ends the job (see ParseWatchdog).
//
//===----------------------------------------------------------------------===//

#include "dialects/W4A4/W4A4Dialect.h"
#include "dialects/W4A4/W4A4Ops.h"
#include "interpreter/Executor.h"
#include "passes/Passes.h"
#include "support/AtomicFile.h"
#include "w4a4/runtime/CheckedMath.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"

#include "llvm/Support/CrashRecoveryContext.h"
#include "llvm/Support/ErrorHandling.h"
#include "llvm/Support/raw_ostream.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/lsan_interface.h>
#define W4A4_FUZZ_LSAN 1
#endif
#endif
namespace {
// Leak checking pauses while a bytecode file parses (no leak checker in a
// build to run under valgrind: W4A4_FUZZER_FLAGS=-fsanitize=fuzzer).
void pauseLeakChecks() {
#ifdef W4A4_FUZZ_LSAN
  __lsan_disable();
#endif
}
void resumeLeakChecks() {
#ifdef W4A4_FUZZ_LSAN
  __lsan_enable();
#endif
}
} // namespace

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

namespace {

/// Weight bytes of the module (as the types say), saturating.
int64_t weightBytes(mlir::ModuleOp module) {
  constexpr int64_t kTooMuch = int64_t(1) << 41;
  int64_t total = 0;
  module.walk([&](mlir::w4a4::WeightOp w) {
    auto t = w.getType();
    std::optional<int64_t> n = t.hasStaticShape()
                                   ? w4a4::checkedProduct(t.getShape())
                                   : std::optional<int64_t>(0);
    std::optional<int64_t> bytes = n ? w4a4::checkedMul(*n, 4) : std::nullopt;
    std::optional<int64_t> sum =
        bytes ? w4a4::checkedAdd(total, *bytes) : std::nullopt;
    total = sum ? std::min(*sum, kTooMuch) : kTooMuch;
  });
  return total;
}

/// Ends the fuzzing job (exit code 0: libFuzzer's fork mode starts the next
/// one) with a line naming the reason, on stderr (the job's log) and appended
/// to $W4A4_FUZZ_JOB_END_LOG (scripts/fuzz-ir.sh counts them there: the
/// parent's log never shows a job's lines).
[[noreturn]] void endJob(const char *line, size_t length) {
  (void)!write(2, line, length);
  if (const char *log = std::getenv("W4A4_FUZZ_JOB_END_LOG")) {
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      (void)!write(fd, line, length);
      close(fd);
    }
  }
  _exit(0);
}

/// report_fatal_error inside the recovered parse leaves it through the
/// recovery context (as an exit, not a crash); anywhere else it aborts.
void onFatalError(void *, const char *reason, bool) {
  if (auto *recovery = llvm::CrashRecoveryContext::GetCurrent())
    recovery->HandleExit(1);
  llvm::errs() << "LLVM ERROR: " << reason << "\n";
  abort();
}

/// A watchdog over the parse: MLIR's bytecode reader can loop forever on a
/// malformed file (an attribute that refers to itself), which the tools stop
/// at their deadline with an error (support/ParseDeadline.h). Here a parse
/// that has not finished in 2 s ends the fuzzing job with exit code 0 and a
/// line naming the reason: libFuzzer's fork mode starts the next job, and the
/// input is neither a crash nor a timeout of our code. (A child process per
/// input would deadlock: fork in a process with threads.)
class ParseWatchdog {
public:
  ParseWatchdog() {
    thread = std::thread([this] {
      std::unique_lock<std::mutex> lock(mutex);
      if (!done.wait_for(lock, std::chrono::seconds(2),
                         [this] { return finished; })) {
        static const char line[] =
            "w4a4-ir-fuzzer: parse did not finish in 2 s (MLIR bytecode "
            "reader loop); input rejected, job ends\n";
        endJob(line, sizeof line - 1);
      }
    });
  }
  ~ParseWatchdog() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      finished = true;
    }
    done.notify_all();
    thread.join();
  }

private:
  std::mutex mutex;
  std::condition_variable done;
  bool finished = false;
  std::thread thread;
};

/// The dialects every context of the harness loads.
mlir::DialectRegistry fuzzRegistry() {
  mlir::DialectRegistry registry;
  registry.insert<mlir::w4a4::W4A4Dialect, mlir::func::FuncDialect,
                  mlir::arith::ArithDialect>();
  return registry;
}

/// The parse of one bytecode file in a child of the calling process:
/// kParsed, kRejected, or anything else (a signal: crash, fatal error,
/// SIGALRM for a reader loop).
constexpr int kParsed = 10, kRejected = 11;
int parseInChild(mlir::MLIRContext *context, llvm::StringRef bytes) {
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    for (int sig : {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL, SIGALRM})
      std::signal(sig, SIG_DFL);
    alarm(2); // a reader loop: the child dies of SIGALRM
    mlir::ScopedDiagnosticHandler quiet(
        context, [](mlir::Diagnostic &) { return mlir::success(); });
    mlir::ParserConfig config(context, /*verifyAfterParse=*/false);
    auto module =
        mlir::parseSourceString<mlir::ModuleOp>(bytes, config, "fuzz.mlir");
    _exit(module ? kParsed : kRejected);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool readAll(int fd, void *buffer, size_t n) {
  auto *p = static_cast<char *>(buffer);
  while (n) {
    ssize_t got = read(fd, p, n);
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0)
      return false;
    p += got;
    n -= static_cast<size_t>(got);
  }
  return true;
}
bool writeAll(int fd, const void *buffer, size_t n) {
  const auto *p = static_cast<const char *>(buffer);
  while (n) {
    ssize_t put = write(fd, p, n);
    if (put < 0 && errno == EINTR)
      continue;
    if (put <= 0)
      return false;
    p += put;
    n -= static_cast<size_t>(put);
  }
  return true;
}

/// Parses bytecode outside the fuzzing process and reports whether the
/// parse succeeded. MLIR 22's bytecode reader is not robust on malformed
/// files (it dereferences an empty value-scope stack, loops on
/// self-referring attributes, raises fatal errors on huge counts) and, as
/// runs of this fuzzer showed, can leave the heap corrupted where it fails:
/// a later input of the same job then failed ASan's allocator check or
/// glibc's malloc check, never reproducibly alone. The tools read such a
/// file in a process that exits after the error, so the damage never
/// matters there; a fuzzing job keeps running, so here a failing bytecode
/// parse happens in another process, which then exits.
///
/// Processes: at start-up (LLVMFuzzerInitialize, before the fuzzer's heap
/// grows: a fork of the fuzzing process itself, 500 MB under ASan, costs
/// more than the rest of an execution) the job forks a small *zygote*,
/// which loads the dialects once and forks *workers*, one at a time. A
/// worker parses request after request in its own context; after a parse
/// that fails it answers and exits (nothing more runs in a process whose
/// reader failed), and the zygote forks the next. A worker that dies
/// without answering (a signal, a fatal error, the 2 s alarm of a reader
/// loop) is answered for by the zygote: rejected. So a fork costs one
/// failing bytecode input, not every input (the earlier server forked per
/// input: ASan runs at 100-200 executions/s instead of ~400). Workers are
/// also replaced after kWorkerParses parses (the context grows). Requests
/// go down a pipe (size, bytes), verdicts come back as one byte; everything
/// ends when the job closes the pipe.
class ParseServer {
public:
  void start() {
    int down[2], up[2];
    if (pipe2(down, O_CLOEXEC) != 0 || pipe2(up, O_CLOEXEC) != 0)
      return;
    std::fflush(nullptr);
    pid_t child = fork();
    if (child < 0)
      return;
    if (child == 0) {
      close(down[1]);
      close(up[0]);
      zygote(down[0], up[1]);
    }
    close(down[0]);
    close(up[1]);
    // A write to a server that died fails (EPIPE) instead of killing the job.
    std::signal(SIGPIPE, SIG_IGN);
    toServer = down[1];
    fromServer = up[0];
    pid = child;
  }

  /// True when the bytes parse; false when they do not (or the server is
  /// gone: the input is then parsed in a child of this process).
  bool parses(llvm::StringRef bytes) {
    if (pid > 0) {
      uint64_t n = bytes.size();
      char verdict = 0;
      if (writeAll(toServer, &n, sizeof n) &&
          writeAll(toServer, bytes.data(), bytes.size()) &&
          readAll(fromServer, &verdict, 1))
        return verdict == 1;
      pid = -1; // the server died: fall back
    }
    return parseInChild(fallbackContext(), bytes) == kParsed;
  }

private:
  /// Exit codes of a worker: it answered (the zygote forks the next one
  /// silently), or the job closed the pipe (everything ends).
  static constexpr int kAnswered = 20, kJobGone = 21;
  static constexpr int kWorkerParses = 4000;

  [[noreturn]] static void zygote(int in, int out) {
    // Only this thread exists here (fork copies the caller's thread).
    fallbackContext(); // the dialects load once, here
    for (;;) {
      pid_t worker = fork();
      if (worker < 0)
        _exit(0); // the job falls back to a child of its own per input
      if (worker == 0)
        work(in, out);
      int status = 0;
      while (waitpid(worker, &status, 0) < 0 && errno == EINTR) {
      }
      if (WIFEXITED(status) && WEXITSTATUS(status) == kJobGone)
        _exit(0);
      if (WIFEXITED(status) && WEXITSTATUS(status) == kAnswered)
        continue;
      // Died mid-parse (a signal, a fatal error, the alarm): rejected.
      char verdict = 0;
      if (!writeAll(out, &verdict, 1))
        _exit(0);
    }
  }

  [[noreturn]] static void work(int in, int out) {
    for (int sig : {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL, SIGALRM})
      std::signal(sig, SIG_DFL);
    mlir::MLIRContext *context = fallbackContext();
    mlir::ScopedDiagnosticHandler quiet(
        context, [](mlir::Diagnostic &) { return mlir::success(); });
    std::string bytes;
    for (int parses = 0;; ++parses) {
      uint64_t n = 0;
      if (!readAll(in, &n, sizeof n) || n > (uint64_t{1} << 30))
        _exit(kJobGone);
      // MLIR's lexer wants a terminating NUL (as in the fuzzing process).
      bytes.assign(n + 1, '\0');
      if (!readAll(in, bytes.data(), n))
        _exit(kJobGone);
      alarm(2); // a reader loop: the worker dies of SIGALRM
      bool parsed;
      {
        mlir::ParserConfig config(context, /*verifyAfterParse=*/false);
        parsed = static_cast<bool>(mlir::parseSourceString<mlir::ModuleOp>(
            llvm::StringRef(bytes.data(), n), config, "fuzz.mlir"));
      }
      alarm(0);
      char verdict = parsed ? 1 : 0;
      if (!writeAll(out, &verdict, 1))
        _exit(kJobGone);
      if (!parsed || parses + 1 >= kWorkerParses)
        _exit(kAnswered);
    }
  }

  static mlir::MLIRContext *fallbackContext() {
    static mlir::MLIRContext *context = [] {
      auto *c = new mlir::MLIRContext(fuzzRegistry());
      c->loadAllAvailableDialects();
      c->disableMultithreading();
      return c;
    }();
    return context;
  }

  int toServer = -1, fromServer = -1;
  pid_t pid = -1;
};

ParseServer &parseServer() {
  static ParseServer server;
  return server;
}

void runOnce(mlir::ModuleOp module) {
  auto executor = mlir::w4a4::Executor::create(module);
  if (!executor) {
    llvm::consumeError(executor.takeError());
    return;
  }
  for (int64_t seq : {3, 0}) {
    auto out = (*executor)->run(std::vector<int64_t>(seq, 1), 1, seq);
    if (!out)
      llvm::consumeError(out.takeError());
  }
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  llvm::install_fatal_error_handler(onFatalError);
  // An allocation that fails (a count from the file, beyond what ASan
  // serves: ASAN_OPTIONS=allocator_may_return_null=1 in scripts/fuzz-ir.sh)
  // goes the same way: the tools report "out of memory" naming the input.
  llvm::install_bad_alloc_error_handler(onFatalError);
  llvm::install_out_of_memory_new_handler();
  parseServer().start();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  // Triage aid: the input being run, in a file per process, so that a job
  // that dies without saving its unit (a hang inside a corrupted heap) still
  // names it.
  static const char *saveLast = std::getenv("W4A4_FUZZ_SAVE_LAST");
  if (saveLast) {
    std::string path = std::string(saveLast) + "." + std::to_string(::getpid());
    if (FILE *f = std::fopen(path.c_str(), "wb")) {
      std::fwrite(data, 1, size, f);
      std::fclose(f);
    }
  }
  // MLIR's lexer reads up to a terminating NUL, as every file the tools read
  // has (MemoryBuffer); libFuzzer's data has none.
  std::string owned(reinterpret_cast<const char *>(data), size);
  llvm::StringRef bytes(owned.c_str(), size);
  if (llvm::Error e = w4a4::checkMlirInput("fuzz.mlir", bytes)) {
    llvm::consumeError(std::move(e));
    return 0;
  }
  bool bytecode = bytes.starts_with("ML\xefR");
  // Bytecode parses in this process only after a parse in a child process
  // succeeded; what fails there (an error, a crash, a loop, a fatal error
  // in MLIR's reader) is rejected here without parsing (see
  // ParseServer).
  // W4A4_FUZZ_NO_CHILD_PARSE=1 skips that (to measure what it costs).
  static const bool inProcessOnly = std::getenv("W4A4_FUZZ_NO_CHILD_PARSE");
  if (bytecode && !inProcessOnly && !parseServer().parses(bytes))
    return 0;
  mlir::MLIRContext context(fuzzRegistry());
  context.loadAllAvailableDialects();
  context.disableMultithreading();
  mlir::ScopedDiagnosticHandler quiet(
      &context, [](mlir::Diagnostic &) { return mlir::success(); });
  mlir::ParserConfig config(&context, /*verifyAfterParse=*/false);
  mlir::OwningOpRef<mlir::ModuleOp> module;
  llvm::CrashRecoveryContext::Enable();
  llvm::CrashRecoveryContext recovery;
  // What a recovered fatal error abandons mid-parse is leaked by design.
  if (bytecode)
    pauseLeakChecks();
  std::optional<ParseWatchdog> watchdog;
  watchdog.emplace();
  bool parsed = recovery.RunSafely([&] {
    module =
        mlir::parseSourceString<mlir::ModuleOp>(bytes, config, "fuzz.mlir");
  });
  watchdog.reset();
  if (bytecode)
    resumeLeakChecks();
  llvm::CrashRecoveryContext::Disable();
  if (!parsed) {
    bool crashed = llvm::CrashRecoveryContext::isCrash(recovery.RetCode);
    // In text input, or anywhere else, a signal is a crash of ours.
    if (crashed && !bytecode)
      __builtin_trap();
    // A signal inside MLIR 22's bytecode reader (it dereferences an empty
    // value-scope stack when the top-level block of a malformed file has
    // arguments) is what the tools turn into an error and then exit
    // (parseOrExitOnCrash): nothing may run in a process whose reader died
    // mid-way. So the job ends here, with exit code 0 and a line naming the
    // reason; libFuzzer's fork mode starts the next one.
    if (crashed) {
      static const char line[] =
          "w4a4-ir-fuzzer: MLIR's bytecode reader crashed on this input (the "
          "tools report an error and exit); job ends\n";
      endJob(line, sizeof line - 1);
    }
    // A recovered fatal error (report_fatal_error, a failed allocation) left
    // the reader by longjmp, abandoning its half-built state in the context
    // (jobs that continued failed ASan's allocator check in ~MLIRContext
    // later): the tools exit there too (exitCleanlyOnFatalErrors).
    static const char fatal[] =
        "w4a4-ir-fuzzer: fatal error in MLIR's reader on this input (the "
        "tools report an error and exit); job ends\n";
    endJob(fatal, sizeof fatal - 1);
  }
  // Verification (our verifiers) runs outside the recovered region.
  if (!module || mlir::failed(mlir::verify(*module)) ||
      weightBytes(*module) > (int64_t(4) << 20))
    return 0;
  runOnce(*module);
  mlir::PassManager pm(&context);
  pm.addPass(mlir::w4a4::createW4A4FoldRegisters());
  pm.addPass(mlir::w4a4::createW4A4FoldNorms());
  mlir::w4a4::W4A4RotateOptions rotate;
  rotate.mode = "full";
  pm.addPass(mlir::w4a4::createW4A4Rotate(rotate));
  pm.addPass(mlir::w4a4::createW4A4QuantizeWeights());
  pm.addPass(mlir::w4a4::createW4A4QuantizeActivations());
  if (mlir::succeeded(pm.run(*module)))
    runOnce(*module);
  return 0;
}
