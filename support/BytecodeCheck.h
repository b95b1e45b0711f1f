//===- BytecodeCheck.h - Pre-parse checks of MLIR bytecode -----*- C++ -*-===//
//
// MLIR 22's bytecode reader trusts a few fields of its input that a
// malformed file can set to anything: a resource entry's kind byte is used
// as an enum (an out-of-range kind reads a garbage string when the reader
// reports the mismatch), and entry counts are used to allocate before they
// are checked against the data (a 4-byte count asks for gigabytes; both found
// by the IR fuzzer). checkBytecodeResources
// walks the section table and the resource offset section the way the reader
// does and refuses such a file with an error naming it. Anything it cannot
// follow is left to the reader, which reports it with a diagnostic.
//
//===----------------------------------------------------------------------===//

#ifndef W4A4_SUPPORT_BYTECODECHECK_H
#define W4A4_SUPPORT_BYTECODECHECK_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

namespace w4a4 {

/// `bytes` must be the buffer the reader will parse (section alignment is
/// checked against its addresses, as the reader does).
llvm::Error checkBytecodeResources(llvm::StringRef path, llvm::StringRef bytes);

} // namespace w4a4

#endif
