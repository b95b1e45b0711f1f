//===- WeightsFile.cpp - the artifact's weights file ----------------------===//

#include "w4a4/runtime/WeightsFile.h"
#include "w4a4/runtime/CheckedMath.h"

#include <algorithm>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace w4a4::rt {
namespace {
constexpr char kMagic[8] = {'W', '4', 'A', '4', 'W', 'T', 'S', '\0'};
constexpr uint64_t kHeader = 64, kAlign = 64;

template <typename T> void put(std::string &s, T v) {
  s.append(reinterpret_cast<const char *>(&v), sizeof(T));
}
uint64_t alignUp(uint64_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

/// Reads from [p, end), failing past the end.
struct Reader {
  const uint8_t *p, *end;
  template <typename T> bool get(T &v) {
    if (static_cast<size_t>(end - p) < sizeof(T))
      return false;
    std::memcpy(&v, p, sizeof(T));
    p += sizeof(T);
    return true;
  }
};
} // namespace

uint64_t checksum64(const void *data, size_t bytes, uint64_t seed) {
  const auto *p = static_cast<const uint8_t *>(data);
  uint64_t h = seed ^ (0x9E3779B97F4A7C15ull * (bytes + 1));
  size_t i = 0;
  for (; i + 8 <= bytes; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
    h ^= h >> 31;
  }
  uint64_t tail = 0;
  std::memcpy(&tail, p + i, bytes - i);
  h = (h ^ tail) * 0x94D049BB133111EBull;
  return h ^ (h >> 29);
}

namespace {
/// checksum64(base + from, length - from), dropping the pages it has read
/// from the resident set as it goes (a file much larger than the memory
/// the model needs at once is hashed without all of it becoming resident;
/// what the model uses is faulted in again from the page cache).
uint64_t checksumAndDrop(const uint8_t *base, size_t from, size_t length) {
  const uint8_t *p = base + from;
  size_t bytes = length - from;
  long page = sysconf(_SC_PAGESIZE);
  constexpr size_t kChunk = size_t(16) << 20;
  uint64_t h = 0 ^ (0x9E3779B97F4A7C15ull * (bytes + 1));
  size_t i = 0;
  uintptr_t dropped = reinterpret_cast<uintptr_t>(base);
  while (i + 8 <= bytes) {
    size_t stop = std::min(bytes / 8 * 8, i + kChunk);
    for (; i < stop; i += 8) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
      h ^= h >> 31;
    }
    if (page > 0) {
      uintptr_t upTo = reinterpret_cast<uintptr_t>(p + i) / page * page;
      if (upTo > dropped) {
        (void)madvise(reinterpret_cast<void *>(dropped), upTo - dropped,
                      MADV_DONTNEED);
        dropped = upTo;
      }
    }
  }
  uint64_t tail = 0;
  std::memcpy(&tail, p + i, bytes - i);
  h = (h ^ tail) * 0x94D049BB133111EBull;
  return h ^ (h >> 29);
}
} // namespace

std::string serializeWeights(std::vector<WeightEntry> entries,
                             const std::vector<const void *> &data,
                             uint64_t *checksum) {
  uint64_t offset = 0;
  for (WeightEntry &e : entries) {
    e.offset = offset;
    offset = alignUp(offset + e.bytes);
  }
  std::string table;
  for (const WeightEntry &e : entries) {
    put<uint32_t>(table, static_cast<uint32_t>(e.name.size()));
    table += e.name;
    put<uint32_t>(table, static_cast<uint32_t>(e.type));
    put<uint32_t>(table, static_cast<uint32_t>(e.shape.size()));
    for (int64_t d : e.shape)
      put<int64_t>(table, d);
    put<uint64_t>(table, e.offset);
    put<uint64_t>(table, e.bytes);
  }
  uint64_t dataOffset = alignUp(kHeader + table.size());
  std::string out(dataOffset + offset, '\0');
  std::memcpy(&out[kHeader], table.data(), table.size());
  for (size_t i = 0; i < entries.size(); ++i)
    if (entries[i].bytes)
      std::memcpy(&out[dataOffset + entries[i].offset], data[i],
                  entries[i].bytes);
  uint64_t sum = checksum64(out.data() + kHeader, out.size() - kHeader);
  std::string header;
  header.append(kMagic, 8);
  put<uint32_t>(header, kWeightsVersion);
  put<uint32_t>(header, static_cast<uint32_t>(entries.size()));
  put<uint64_t>(header, table.size());
  put<uint64_t>(header, dataOffset);
  put<uint64_t>(header, offset);
  put<uint64_t>(header, sum);
  header.resize(kHeader, '\0');
  std::memcpy(&out[0], header.data(), kHeader);
  if (checksum)
    *checksum = sum;
  return out;
}

Status WeightsFile::open(const std::string &path, WeightsFile &out) {
  auto fail = [&](const std::string &why) {
    return Status::error(path + ": " + why);
  };
  if (out.base) { // reopened: drop the earlier mapping
    munmap(const_cast<uint8_t *>(out.base), out.length);
    out.base = nullptr;
  }
  out.table.clear();
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return fail(std::string("cannot open: ") + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return fail("not a regular file");
  }
  size_t length = static_cast<size_t>(st.st_size);
  if (length < kHeader) {
    ::close(fd);
    return fail("truncated (" + std::to_string(length) +
                " bytes; the header alone is 64)");
  }
  void *map = mmap(nullptr, length, PROT_READ, MAP_PRIVATE, fd, 0);
  int mapErrno = errno;
  ::close(fd);
  if (map == MAP_FAILED)
    return fail(std::string("cannot map: ") + std::strerror(mapErrno));
  out.base = static_cast<const uint8_t *>(map);
  out.length = length;
  Reader header{out.base, out.base + kHeader};
  char magic[8];
  std::memcpy(magic, out.base, 8);
  header.p += 8;
  uint32_t version = 0, count = 0;
  uint64_t tableBytes = 0, dataOffset = 0, dataBytes = 0, sum = 0;
  header.get(version);
  header.get(count);
  header.get(tableBytes);
  header.get(dataOffset);
  header.get(dataBytes);
  header.get(sum);
  if (std::memcmp(magic, kMagic, 8) != 0)
    return fail("not a w4a4 weights file (bad magic)");
  if (version != kWeightsVersion)
    return fail("weights format version " + std::to_string(version) +
                "; this runtime reads version " +
                std::to_string(kWeightsVersion));
  std::optional<int64_t> tableEnd =
      checkedAdd(static_cast<int64_t>(kHeader),
                 static_cast<int64_t>(tableBytes & 0x7fffffffffffffffull));
  std::optional<int64_t> dataEnd =
      checkedAdd(static_cast<int64_t>(dataOffset & 0x7fffffffffffffffull),
                 static_cast<int64_t>(dataBytes & 0x7fffffffffffffffull));
  if (tableBytes >> 62 || dataOffset >> 62 || dataBytes >> 62 || !tableEnd ||
      !dataEnd || static_cast<uint64_t>(*tableEnd) > dataOffset ||
      static_cast<uint64_t>(*dataEnd) != length || dataOffset % kAlign)
    return fail("truncated or corrupted (the header's sizes do not fit the "
                "file's " +
                std::to_string(length) + " bytes)");
  if (checksumAndDrop(out.base, kHeader, length) != sum)
    return fail("corrupted (checksum mismatch)");
  out.sum = sum;
  out.dataOffset = dataOffset;
  Reader r{out.base + kHeader, out.base + *tableEnd};
  for (uint32_t i = 0; i < count; ++i) {
    WeightEntry e;
    uint32_t nameLen = 0, type = 0, rank = 0;
    if (!r.get(nameLen) || static_cast<size_t>(r.end - r.p) < nameLen)
      return fail("corrupted tensor table (entry " + std::to_string(i) + ")");
    e.name.assign(reinterpret_cast<const char *>(r.p), nameLen);
    r.p += nameLen;
    if (!r.get(type) || !r.get(rank) || type > 1 || rank > 8)
      return fail("corrupted tensor table (entry " + std::to_string(i) + ")");
    e.type = static_cast<WeightType>(type);
    for (uint32_t d = 0; d < rank; ++d) {
      int64_t dim = 0;
      if (!r.get(dim) || dim < 0)
        return fail("corrupted tensor table (entry " + std::to_string(i) + ")");
      e.shape.push_back(dim);
    }
    if (!r.get(e.offset) || !r.get(e.bytes))
      return fail("corrupted tensor table (entry " + std::to_string(i) + ")");
    std::optional<int64_t> need =
        checkedProduct(e.shape, e.type == WeightType::F32 ? 4 : 1);
    if (!need || static_cast<uint64_t>(*need) != e.bytes || e.offset % kAlign ||
        e.offset > dataBytes || e.bytes > dataBytes - e.offset)
      return fail("tensor '" + e.name + "' does not fit the file");
    out.table.push_back(std::move(e));
  }
  return {};
}

WeightsFile::~WeightsFile() {
  if (base)
    munmap(const_cast<uint8_t *>(base), length);
}

void WeightsFile::release(size_t i) const {
  if (!base || i >= table.size())
    return;
  long page = sysconf(_SC_PAGESIZE);
  if (page <= 0)
    return;
  uintptr_t begin = reinterpret_cast<uintptr_t>(data(i));
  uintptr_t end = begin + table[i].bytes;
  uintptr_t first = (begin + page - 1) / page * page, last = end / page * page;
  if (last > first)
    (void)madvise(reinterpret_cast<void *>(first), last - first, MADV_DONTNEED);
}

} // namespace w4a4::rt
