//===- WeightsFile.h - the artifact's weights file --------------*- C++ -*-===//
//
// `weights.bin` of a compiled artifact (w4a4-compile): little-endian, made to
// be mapped into memory and used in place.
//
//   offset 0   char[8]  magic "W4A4WTS\0"
//          8   u32      format version (kWeightsVersion)
//         12   u32      tensor count
//         16   u64      table bytes (the table starts at offset 64)
//         24   u64      data offset (a multiple of 64)
//         32   u64      data bytes
//         40   u64      checksum of the table and the data (checksum64)
//         48   u64[2]   zero
//   table: per tensor  u32 name length, the name, u32 dtype (0 f32, 1 i8),
//                      u32 rank, i64 dims[rank], u64 offset (from the data
//                      offset, a multiple of 64), u64 bytes
//
// Every size is checked against the file's length before use.
//
//===----------------------------------------------------------------------===//

#ifndef W4A4_RUNTIME_WEIGHTSFILE_H
#define W4A4_RUNTIME_WEIGHTSFILE_H

#include "w4a4/runtime/Status.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace w4a4::rt {

constexpr uint32_t kWeightsVersion = 1;
enum class WeightType : uint32_t { F32 = 0, I8 = 1 };

struct WeightEntry {
  std::string name;
  WeightType type = WeightType::F32;
  std::vector<int64_t> shape;
  uint64_t offset = 0, bytes = 0;
};

/// A 64-bit hash of `bytes` (8-byte words, multiply-xor mixing): detects
/// corruption, not tampering.
uint64_t checksum64(const void *data, size_t bytes, uint64_t seed = 0);

/// The file image of `entries` with their data (`data[i]` holds
/// `entries[i].bytes` bytes; offsets are assigned here).
std::string serializeWeights(std::vector<WeightEntry> entries,
                             const std::vector<const void *> &data,
                             uint64_t *checksum = nullptr);

/// A weights file mapped read-only.
class WeightsFile {
public:
  /// Maps and checks `path`: magic, version, sizes within the file, the
  /// checksum. Errors name the file.
  static Status open(const std::string &path, WeightsFile &out);
  ~WeightsFile();
  WeightsFile() = default;
  WeightsFile(const WeightsFile &) = delete;
  WeightsFile &operator=(const WeightsFile &) = delete;

  const std::vector<WeightEntry> &entries() const { return table; }
  const void *data(size_t i) const {
    return base + dataOffset + table[i].offset;
  }
  uint64_t checksum() const { return sum; }
  /// Tells the kernel that tensor i's pages (those wholly inside it) are not
  /// needed any more: they leave the resident set and are read from the
  /// file again if touched. For data used once at open (quantized codes
  /// unpacked into the target layout).
  void release(size_t i) const;

private:
  const uint8_t *base = nullptr;
  size_t length = 0;
  uint64_t dataOffset = 0, sum = 0;
  std::vector<WeightEntry> table;
};

} // namespace w4a4::rt

#endif
