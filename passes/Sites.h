//===- Sites.h - activation sites of the transformer block ------*- C++ -*-===//

#ifndef W4A4_PASSES_SITES_H
#define W4A4_PASSES_SITES_H

#include "mlir/IR/Operation.h"
#include "llvm/ADT/StringRef.h"

#include <optional>

namespace mlir::w4a4 {

/// DESIGN.md's input-activation sites: readers (qkv, w1w3) read the
/// residual stream, generators (o_proj, w2) read block-internal values.
enum class Site { QKV, OProj, W1W3, W2, LMHead, Other };

/// The site of a linear or qlinear (by what produces its input and what
/// consumes its result).
Site classifySite(Operation *linearLike);

llvm::StringRef siteName(Site site);
std::optional<Site> parseSite(llvm::StringRef name);

} // namespace mlir::w4a4

#endif // W4A4_PASSES_SITES_H
