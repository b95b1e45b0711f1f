//===- AtomicFile.h - outputs that replace their destination atomically -*- C++
//-*-===//
//
// Every file a w4a4 tool or pass writes goes through AtomicOutput: the bytes
// go to a temporary file beside the destination, every write and the final
// flush are checked, and only a complete file is renamed over the
// destination. A failed or interrupted run leaves the destination as it was
// (an existing file is never truncated or deleted), and an output that names
// the tool's own input is safe (the input stays readable until the rename).
// Errors name the file.
//
//===----------------------------------------------------------------------===//

#ifndef W4A4_SUPPORT_ATOMICFILE_H
#define W4A4_SUPPORT_ATOMICFILE_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/raw_ostream.h"

#include <memory>
#include <string>

namespace w4a4 {

class AtomicOutput {
public:
  /// Opens an output for `path`: "-" is stdout; an existing non-regular
  /// file (/dev/null, a FIFO) is written in place; a directory is refused;
  /// anything else gets a temporary file in the destination's directory
  /// (removed on a signal or when the output is dropped uncommitted).
  static llvm::Expected<std::unique_ptr<AtomicOutput>>
  open(llvm::StringRef path);

  llvm::raw_ostream &os();
  /// Flushes, checks that every byte was written, and renames the
  /// temporary file over the destination. The error names the file.
  llvm::Error commit();
  const std::string &path() const { return dest; }

  ~AtomicOutput();
  AtomicOutput(const AtomicOutput &) = delete;
  AtomicOutput &operator=(const AtomicOutput &) = delete;

private:
  AtomicOutput() = default;
  std::string dest, tmp;
  std::unique_ptr<llvm::raw_fd_ostream> file;
  bool toStdout = false, committed = false;
};

/// Writes `bytes` to `path` through an AtomicOutput.
llvm::Error writeFileAtomically(llvm::StringRef path, llvm::StringRef bytes);

/// Whether two paths name the same existing file (hard links and
/// different spellings included).
bool sameFile(llvm::StringRef a, llvm::StringRef b);

/// An input path that must be a regular file (not a directory, device or
/// FIFO that would hang or stream forever): an error naming it otherwise.
/// `what` says which input it is ("--text", "calibration statistics").
llvm::Error checkRegularInput(llvm::StringRef path, llvm::StringRef what);

/// Why `bytes`, read from `path` as MLIR, is neither MLIR bytecode nor
/// text (a NUL byte, which the text parser would take as the end of an
/// empty module), or is bytecode the reader would mishandle
/// (support/BytecodeCheck.h): an error naming the file; success otherwise.
llvm::Error checkMlirInput(llvm::StringRef path, llvm::StringRef bytes);

/// The deepest bracket nesting accepted in MLIR text ((, [, {, < outside
/// string literals and comments). MLIR's parser recurses per level; real
/// IR nests a few dozen.
constexpr size_t kMaxTextNesting = 256;
/// Why `bytes`, MLIR text from `path`, would break MLIR's own parser: brackets
/// nested deeper than kMaxTextNesting (its recursion overflows the stack),
/// or a string literal that runs into the end of the file (its lexer then
/// reads past the buffer): an error naming the file and the line; success
/// otherwise. Part of checkMlirInput.
llvm::Error checkMlirText(llvm::StringRef path, llvm::StringRef bytes);

/// Why `bytes` from `path` is not UTF-8 text: a NUL byte or an invalid
/// sequence, with its offset; success otherwise.
llvm::Error checkUtf8Text(llvm::StringRef path, llvm::StringRef bytes);

/// Turns LLVM's fatal errors (report_fatal_error: e.g. MLIR's bytecode
/// reader asking a SmallVector for 2^58 elements on a malformed file) into
/// "<tool>: error: <what>: <reason>" and exit code 1, after removing the
/// temporary files registered for removal on a signal. `what` names the
/// input being read (the model file).
void exitCleanlyOnFatalErrors(const char *tool, const std::string &what);

} // namespace w4a4

#endif // W4A4_SUPPORT_ATOMICFILE_H
