//===- DeviceTest.cpp - the CPU backend behind the Device interface -------===//
//
// Buffers are aligned, zero-filled and sized as asked; kernels through the
// interface give the same bits as the direct kernel calls; errors come back
// as Status, not crashes.
//
//===----------------------------------------------------------------------===//

#include "w4a4/runtime/Device.h"
#include "w4a4/runtime/Hadamard.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

using namespace w4a4::rt;

namespace {

std::vector<float> randn(size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d;
  std::vector<float> v(n);
  for (float &x : v)
    x = d(gen);
  return v;
}

TEST(Device, CpuBuffersAreAlignedAndZeroed) {
  auto dev = createCpuDevice();
  EXPECT_TRUE(dev->isHost());
  EXPECT_NE(dev->name().find("cpu"), std::string::npos);
  for (size_t bytes : {size_t(1), size_t(63), size_t(4096), size_t(100000)}) {
    auto b = dev->allocate(bytes);
    ASSERT_TRUE(b);
    EXPECT_EQ(b->bytes(), bytes);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(b->data()) % 64, 0u);
    for (size_t i = 0; i < bytes; ++i)
      ASSERT_EQ(static_cast<unsigned char *>(b->data())[i], 0);
  }
  EXPECT_TRUE(dev->allocate(0));
  EXPECT_TRUE(dev->defaultStream().synchronize().ok());
}

TEST(Device, KernelsThroughTheInterfaceEqualDirectCalls) {
  auto dev = createCpuDevice();
  Stream &s = dev->defaultStream();
  int64_t rows = 7, in = 64, out = 24;
  auto x = randn(rows * in, 1), w = randn(out * in, 2), g = randn(in, 3);
  auto xb = dev->allocate(x.size() * 4), yb = dev->allocate(rows * out * 4);
  ASSERT_TRUE(dev->copyToDevice(s, xb->data(), x.data(), x.size() * 4).ok());
  std::vector<float> direct(rows * out), viaDevice(rows * out);

  linear(x.data(), w.data(), nullptr, rows, in, out, direct.data());
  ASSERT_TRUE(
      dev->linear(s, xb->f32(), w.data(), nullptr, rows, in, out, yb->f32())
          .ok());
  ASSERT_TRUE(s.synchronize().ok());
  ASSERT_TRUE(
      dev->copyToHost(s, viaDevice.data(), yb->data(), yb->bytes()).ok());
  EXPECT_EQ(0, std::memcmp(direct.data(), viaDevice.data(), yb->bytes()));

  std::vector<float> n1(rows * in), n2(rows * in);
  rmsNorm(x.data(), g.data(), rows, in, 1e-5, n1.data());
  ASSERT_TRUE(
      dev->rmsNorm(s, x.data(), g.data(), rows, in, 1e-5, n2.data()).ok());
  EXPECT_EQ(0, std::memcmp(n1.data(), n2.data(), n1.size() * 4));

  std::vector<float> h1(rows * in), h2(rows * in);
  ASSERT_TRUE(hadamardRows(x.data(), rows, in, in, nullptr, false, h1.data()));
  ASSERT_TRUE(
      dev->hadamardRows(s, x.data(), rows, in, in, nullptr, false, h2.data(), 1)
          .ok());
  EXPECT_EQ(0, std::memcmp(h1.data(), h2.data(), h1.size() * 4));
}

TEST(Device, ErrorsComeBackAsStatus) {
  auto dev = createCpuDevice();
  Stream &s = dev->defaultStream();
  std::vector<float> x(6 * 6), y(6 * 6);
  Status h = dev->hadamardRows(s, x.data(), 6, 6, 6, nullptr, false, y.data(),
                               1); // no Hadamard matrix of order 6
  ASSERT_FALSE(h.ok());
  EXPECT_NE(h.message().find("order 6"), std::string::npos);
  std::vector<float> table(4 * 2);
  std::vector<int64_t> ids = {1, 9};
  EXPECT_FALSE(
      dev->embedding(s, table.data(), 4, 2, ids.data(), 2, y.data()).ok());
}

} // namespace
