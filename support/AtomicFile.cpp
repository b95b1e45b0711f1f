//===- AtomicFile.cpp - outputs that replace their destination atomically -===//

#include "support/AtomicFile.h"
#include "support/BytecodeCheck.h"

#include "llvm/Support/ConvertUTF.h"
#include "llvm/Support/ErrorHandling.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Signals.h"

#include <algorithm>
#include <cstring>
#include <unistd.h>

using namespace llvm;

namespace w4a4 {

static Error fileError(StringRef path, const Twine &what) {
  return createStringError(path.str() + ": " + what.str());
}

Expected<std::unique_ptr<AtomicOutput>> AtomicOutput::open(StringRef path) {
  std::unique_ptr<AtomicOutput> out(new AtomicOutput());
  out->dest = path.str();
  if (path.empty())
    return createStringError("an output path is empty");
  if (path == "-") {
    out->toStdout = true;
    return out;
  }
  sys::fs::file_status st;
  if (!sys::fs::status(path, st) && sys::fs::exists(st)) {
    if (sys::fs::is_directory(st))
      return fileError(path, "is a directory");
    if (!sys::fs::is_regular_file(st)) {
      // /dev/null, a FIFO, a terminal: written in place.
      std::error_code ec;
      out->file = std::make_unique<raw_fd_ostream>(path, ec, sys::fs::OF_None);
      if (ec)
        return fileError(path, "cannot open for writing: " + ec.message());
      return out;
    }
  }
  SmallString<256> dir(path);
  sys::path::remove_filename(dir);
  if (dir.empty())
    dir = ".";
  SmallString<256> model(dir);
  sys::path::append(model,
                    "." + sys::path::filename(path).str() + ".tmp-%%%%%%%%");
  int fd = -1;
  SmallString<256> tmp;
  if (std::error_code ec = sys::fs::createUniqueFile(model, fd, tmp))
    return fileError(path, "cannot create a temporary file in '" + dir +
                               "': " + ec.message());
  out->tmp = tmp.str().str();
  sys::RemoveFileOnSignal(out->tmp);
  out->file = std::make_unique<raw_fd_ostream>(fd, /*shouldClose=*/true);
  return out;
}

raw_ostream &AtomicOutput::os() {
  if (toStdout)
    return outs();
  return *file;
}

Error AtomicOutput::commit() {
  if (committed)
    return Error::success();
  committed = true;
  if (toStdout) {
    outs().flush();
    if (std::error_code ec = outs().error()) {
      outs().clear_error();
      return fileError("<stdout>", "write failed: " + ec.message());
    }
    return Error::success();
  }
  file->close();
  if (std::error_code ec = file->error()) {
    file->clear_error();
    if (!tmp.empty()) {
      sys::fs::remove(tmp);
      sys::DontRemoveFileOnSignal(tmp);
    }
    return fileError(dest, "write failed: " + ec.message() +
                               (tmp.empty() ? "" : " (the file is unchanged)"));
  }
  if (tmp.empty())
    return Error::success();
  // The destination keeps the permissions an existing file had.
  sys::fs::file_status old;
  if (!sys::fs::status(dest, old) && sys::fs::is_regular_file(old))
    (void)sys::fs::setPermissions(tmp, old.permissions());
  std::error_code ec = sys::fs::rename(tmp, dest);
  sys::DontRemoveFileOnSignal(tmp);
  if (ec) {
    sys::fs::remove(tmp);
    return fileError(dest, "cannot replace the file: " + ec.message());
  }
  return Error::success();
}

AtomicOutput::~AtomicOutput() {
  if (file && file->has_error())
    file->clear_error(); // reported by commit(), or dropped with the output
  if (!committed && !tmp.empty()) {
    file.reset();
    sys::fs::remove(tmp);
    sys::DontRemoveFileOnSignal(tmp);
  }
}

Error writeFileAtomically(StringRef path, StringRef bytes) {
  auto out = AtomicOutput::open(path);
  if (!out)
    return out.takeError();
  (*out)->os() << bytes;
  return (*out)->commit();
}

bool sameFile(StringRef a, StringRef b) {
  sys::fs::UniqueID ia, ib;
  return !sys::fs::getUniqueID(a, ia) && !sys::fs::getUniqueID(b, ib) &&
         ia == ib;
}

Error checkRegularInput(StringRef path, StringRef what) {
  if (path == "-")
    return Error::success();
  sys::fs::file_status st;
  if (std::error_code ec = sys::fs::status(path, st))
    return createStringError(what.str() + " '" + path.str() +
                             "': " + ec.message());
  if (!sys::fs::is_regular_file(st))
    return createStringError(what.str() + " '" + path.str() + "': " +
                             (sys::fs::is_directory(st)
                                  ? "is a directory"
                                  : "is not a regular file"));
  return Error::success();
}

Error checkMlirInput(StringRef path, StringRef bytes) {
  if (bytes.starts_with("ML\xefR"))
    return checkBytecodeResources(path, bytes); // bytecode
  size_t nul = bytes.find('\0');
  if (nul != StringRef::npos)
    return createStringError(path.str() +
                             ": not MLIR text or bytecode (a NUL "
                             "byte at offset " +
                             std::to_string(nul) + ")");
  return checkMlirText(path, bytes);
}

Error checkMlirText(StringRef path, StringRef bytes) {
  // MLIR's text parser recurses once per level of brackets (a dense literal
  // [[[...]]], nested types tensor<tensor<...>>, regions, parenthesised
  // types): a file nested a few hundred thousand levels deep overflows the
  // stack (SIGSEGV). Real IR nests a few dozen levels. Brackets inside
  // string literals and comments do not count; '>' of '->' closes nothing.
  auto lineOf = [&](size_t offset) {
    return std::to_string(
        1 + std::count(bytes.begin(), bytes.begin() + offset, '\n'));
  };
  size_t depth = 0;
  for (size_t i = 0, n = bytes.size(); i < n; ++i) {
    char c = bytes[i];
    switch (c) {
    case '"': {
      // To the closing quote (a backslash escapes the next character) or
      // the end of the line (MLIR's lexer reports that string as an
      // error). A string that runs into the end of the file is refused
      // here: MLIR 22's lexer then steps past the buffer's terminating NUL
      // and reads on (an unterminated string in a dialect_resources entry
      // read out of bounds until it crashed: found by the IR fuzzer).
      size_t open = i;
      for (++i; i < n && bytes[i] != '"' && bytes[i] != '\n'; ++i)
        if (bytes[i] == '\\' && i + 1 < n && bytes[i + 1] != '\n')
          ++i;
      if (i >= n)
        return createStringError(path.str() + ":" + lineOf(open) +
                                 ": a string literal runs to the end of the "
                                 "file (no closing '\"')");
      break;
    }
    case '/':
      if (i + 1 < n && bytes[i + 1] == '/')
        while (i < n && bytes[i] != '\n')
          ++i;
      break;
    case '(':
    case '[':
    case '{':
    case '<':
      if (++depth > kMaxTextNesting)
        return createStringError(
            path.str() + ":" + lineOf(i) + ": brackets nested more than " +
            std::to_string(kMaxTextNesting) +
            " levels deep (the parser recurses per level)");
      break;
    case '>':
      if (i > 0 && bytes[i - 1] == '-')
        break;
      [[fallthrough]];
    case ')':
    case ']':
    case '}':
      if (depth > 0)
        --depth;
      break;
    default:
      break;
    }
  }
  return Error::success();
}

Error checkUtf8Text(StringRef path, StringRef bytes) {
  size_t nul = bytes.find('\0');
  if (nul != StringRef::npos)
    return createStringError(path.str() + ": not text (a NUL byte at offset " +
                             std::to_string(nul) + ")");
  const auto *begin = reinterpret_cast<const UTF8 *>(bytes.data());
  const UTF8 *p = begin;
  if (!isLegalUTF8String(&p, begin + bytes.size()))
    return createStringError(path.str() +
                             ": not UTF-8 text (an invalid byte sequence at "
                             "offset " +
                             std::to_string(p - begin) + ")");
  return Error::success();
}

namespace {
struct FatalContext {
  std::string tool, what;
};
FatalContext &fatalContext() {
  static FatalContext context;
  return context;
}
} // namespace

void exitCleanlyOnFatalErrors(const char *tool, const std::string &what) {
  fatalContext() = {tool, what};
  auto handler = [](void *, const char *reason, bool) {
    const FatalContext &c = fatalContext();
    // Written piecewise without allocating: this also reports allocation
    // failures.
    for (const char *piece : {c.tool.c_str(), ": error: ", c.what.c_str(), ": ",
                              reason, " (malformed input?)\n"})
      (void)!write(2, piece, std::strlen(piece));
    sys::RunInterruptHandlers(); // the temporary files
    _exit(1);
  };
  install_fatal_error_handler(handler);
  // Allocation failures (a count read from a malformed file) too: LLVM's
  // default prints "out of memory" and aborts.
  install_bad_alloc_error_handler(handler);
}

} // namespace w4a4
