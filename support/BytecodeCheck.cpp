//===- BytecodeCheck.cpp - Pre-parse checks of MLIR bytecode --------------===//

#include "support/BytecodeCheck.h"

#include "llvm/ADT/bit.h"

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>

using namespace llvm;

namespace w4a4 {
namespace {

/// A cursor over bytecode; every read fails (nullopt) past the end.
class Cursor {
public:
  Cursor(const uint8_t *begin, const uint8_t *end) : it(begin), end(end) {}

  bool empty() const { return it == end; }
  size_t size() const { return end - it; }

  std::optional<uint8_t> byte() {
    if (empty())
      return std::nullopt;
    return *it++;
  }

  /// The reader's prefix varint: trailing zero bits of the first byte count
  /// the extra bytes; a zero first byte means eight extra bytes.
  std::optional<uint64_t> varint() {
    std::optional<uint8_t> first = byte();
    if (!first)
      return std::nullopt;
    if (*first & 1)
      return uint64_t(*first >> 1);
    unsigned extra = *first == 0 ? 8 : llvm::countr_zero(unsigned(*first));
    if (size() < extra)
      return std::nullopt;
    uint64_t value = 0;
    for (unsigned i = 0; i < extra; ++i)
      value |= uint64_t(it[i]) << (8 * i);
    it += extra;
    if (*first == 0)
      return value;
    // The first byte's value bits are the low bits of the result.
    uint64_t low = uint64_t(*first) >> (extra + 1);
    return (value << (7 - extra)) | low;
  }

  std::optional<Cursor> take(uint64_t length) {
    if (length > size())
      return std::nullopt;
    Cursor sub(it, it + length);
    it += length;
    return sub;
  }

  /// Skips the 0xCB padding up to `alignment` (relative to addresses).
  bool alignTo(uint64_t alignment) {
    if (alignment == 0 || (alignment & (alignment - 1)) || alignment > 4096)
      return false;
    while (reinterpret_cast<uintptr_t>(it) & (alignment - 1)) {
      std::optional<uint8_t> pad = byte();
      if (!pad || *pad != 0xCB)
        return false;
    }
    return true;
  }

  bool skipNulTerminated() {
    const void *nul = std::memchr(it, 0, size());
    if (!nul)
      return false;
    it = static_cast<const uint8_t *>(nul) + 1;
    return true;
  }

private:
  const uint8_t *it, *end;
};

constexpr uint8_t kStringSection = 0, kDialectSection = 1,
                  kAttrTypeOffsetSection = 3, kResourceOffsetSection = 6,
                  kPropertiesSection = 8;
constexpr uint8_t kNumSections = 9;
constexpr uint8_t kNumResourceKinds = 3; // blob, bool, string

/// Walks one resource group of the offset section; returns the index of the
/// first entry with a bad kind and the kind, or nothing.
struct BadKind {
  uint64_t entry;
  unsigned kind;
};

/// nullopt: could not follow (left to the reader); a BadKind: refuse.
std::optional<std::optional<BadKind>> walkGroup(Cursor &offsets,
                                                uint64_t &entry) {
  std::optional<uint64_t> count = offsets.varint();
  if (!count)
    return std::nullopt;
  if (*count > offsets.size()) // each entry takes at least 3 bytes
    return std::optional<BadKind>(BadKind{entry, ~0u});
  for (uint64_t i = 0; i < *count; ++i, ++entry) {
    std::optional<uint64_t> key = offsets.varint();
    std::optional<uint64_t> size = key ? offsets.varint() : std::nullopt;
    std::optional<uint8_t> kind = size ? offsets.byte() : std::nullopt;
    if (!kind)
      return std::nullopt;
    if (*kind >= kNumResourceKinds)
      return std::optional<BadKind>(BadKind{entry, *kind});
  }
  return std::optional<BadKind>();
}

} // namespace

Error checkBytecodeResources(StringRef path, StringRef bytes) {
  if (!bytes.starts_with("ML\xefR"))
    return Error::success();
  const auto *begin = reinterpret_cast<const uint8_t *>(bytes.data());
  Cursor file(begin + 4, begin + bytes.size());
  if (!file.varint() || !file.skipNulTerminated())
    return Error::success(); // version, producer: the reader reports it
  while (!file.empty()) {
    std::optional<uint8_t> idAndAlign = file.byte();
    std::optional<uint64_t> length = idAndAlign ? file.varint() : std::nullopt;
    if (!length)
      return Error::success();
    uint8_t id = *idAndAlign & 0x7f;
    if (id >= kNumSections)
      return Error::success();
    if (*idAndAlign & 0x80) {
      std::optional<uint64_t> alignment = file.varint();
      if (!alignment || !file.alignTo(*alignment))
        return Error::success();
    }
    std::optional<Cursor> section = file.take(*length);
    if (!section)
      return Error::success();
    // Sections that open with entry counts: each entry takes at least one
    // byte of the section, so a larger count is malformed (the reader would
    // first allocate the count's worth of entries: gigabytes).
    if (id == kStringSection || id == kDialectSection ||
        id == kAttrTypeOffsetSection || id == kPropertiesSection) {
      Cursor counts = *section;
      uint64_t total = 0;
      for (int i = 0; i < (id == kAttrTypeOffsetSection ? 2 : 1); ++i) {
        std::optional<uint64_t> n = counts.varint();
        if (!n)
          return Error::success();
        total = *n > section->size() ? section->size() + 1 : total + *n;
      }
      if (total > section->size())
        return createStringError(
            path.str() + ": malformed MLIR bytecode: section " +
            std::to_string(id) + " declares more entries than its " +
            std::to_string(section->size()) + " bytes can hold");
      continue;
    }
    if (id != kResourceOffsetSection)
      continue;
    Cursor offsets = *section;
    std::optional<uint64_t> external = offsets.varint();
    if (!external)
      return Error::success();
    uint64_t entry = 0;
    std::optional<std::optional<BadKind>> bad;
    auto refuse = [&](const BadKind &b) {
      if (b.kind == ~0u)
        return createStringError(
            path.str() + ": malformed MLIR bytecode: a resource group "
                         "declares more entries than its section can hold");
      return createStringError(
          path.str() + ": malformed MLIR bytecode: resource entry " +
          std::to_string(b.entry) + " has kind " + std::to_string(b.kind) +
          " (the kinds are 0 blob, 1 bool, 2 string)");
    };
    for (uint64_t g = 0; g < *external; ++g) {
      if (!offsets.varint() || !(bad = walkGroup(offsets, entry)))
        return Error::success();
      if (*bad)
        return refuse(**bad);
    }
    while (!offsets.empty()) {
      if (!offsets.varint() || !(bad = walkGroup(offsets, entry)))
        return Error::success();
      if (*bad)
        return refuse(**bad);
    }
  }
  return Error::success();
}

} // namespace w4a4
