//===- WeightsFileTest.cpp - the artifact's weights file ------------------===//

#include "w4a4/runtime/WeightsFile.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <unistd.h>

using namespace w4a4::rt;

namespace {

std::string writeTemp(const std::string &image) {
  char path[] = "/tmp/w4a4-weights-XXXXXX";
  int fd = mkstemp(path);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(static_cast<ssize_t>(image.size()),
            write(fd, image.data(), image.size()));
  close(fd);
  return path;
}

/// A file of more than two 16 MiB hashing chunks (the open drops pages as it
/// hashes) with tensors of ragged sizes: opening it checks the checksum
/// serializeWeights computed in one pass, every tensor reads back, and a
/// released tensor reads back the same from the file.
TEST(WeightsFile, OpensLargeFilesAndReleasesPages) {
  std::mt19937 rng(3);
  std::vector<WeightEntry> entries(3);
  std::vector<std::vector<float>> f32(2);
  f32[0].resize(9 << 20); // 36 MiB
  f32[1].resize(7);
  for (auto &t : f32)
    for (float &v : t)
      v = static_cast<float>(rng()) / 1e9f;
  std::vector<int8_t> codes(4097);
  for (int8_t &c : codes)
    c = static_cast<int8_t>(rng());
  entries[0] = {"big", WeightType::F32, {9, 1 << 20}, 0, f32[0].size() * 4};
  entries[1] = {"codes", WeightType::I8, {4097}, 0, codes.size()};
  entries[2] = {"small", WeightType::F32, {7}, 0, 28};
  uint64_t sum = 0;
  std::string image = serializeWeights(
      entries, {f32[0].data(), codes.data(), f32[1].data()}, &sum);
  std::string path = writeTemp(image);
  {
    WeightsFile w;
    Status s = WeightsFile::open(path, w);
    ASSERT_TRUE(s.ok()) << s.message();
    EXPECT_EQ(sum, w.checksum());
    ASSERT_EQ(3u, w.entries().size());
    EXPECT_EQ(0, std::memcmp(w.data(0), f32[0].data(), f32[0].size() * 4));
    EXPECT_EQ(0, std::memcmp(w.data(1), codes.data(), codes.size()));
    EXPECT_EQ(0, std::memcmp(w.data(2), f32[1].data(), 28));
    for (size_t i = 0; i < 3; ++i)
      w.release(i);
    w.release(99); // out of range: ignored
    EXPECT_EQ(0, std::memcmp(w.data(0), f32[0].data(), f32[0].size() * 4));
    EXPECT_EQ(0, std::memcmp(w.data(1), codes.data(), codes.size()));
  }
  // One flipped byte past the first hashing chunk is found.
  image[image.size() - 100] ^= 1;
  std::string bad = writeTemp(image);
  WeightsFile w;
  Status s = WeightsFile::open(bad, w);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(std::string::npos, s.message().find("checksum mismatch"))
      << s.message();
  std::remove(path.c_str());
  std::remove(bad.c_str());
}

} // namespace
