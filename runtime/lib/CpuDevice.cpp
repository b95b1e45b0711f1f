//===- CpuDevice.cpp - the CPU backend ------------------------------------===//

#include "w4a4/runtime/Device.h"
#include "w4a4/runtime/Hadamard.h"

#include <cstdlib>
#include <cstring>
#include <thread>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace w4a4::rt {
namespace {

class CpuBuffer final : public Buffer {
public:
  CpuBuffer(size_t bytes, bool zeroFill) : size(bytes) {
    // aligned_alloc wants a multiple of the alignment.
    size_t rounded = (bytes + 63) / 64 * 64;
    ptr = rounded ? std::aligned_alloc(64, rounded) : nullptr;
    if (ptr && zeroFill)
      std::memset(ptr, 0, rounded);
  }
  ~CpuBuffer() override { std::free(ptr); }
  void *data() override { return ptr; }
  size_t bytes() const override { return size; }
  bool valid() const { return ptr || !size; }

private:
  void *ptr = nullptr;
  size_t size = 0;
};

/// Kernels run when enqueued, so there is nothing to wait for.
class CpuStream final : public Stream {
public:
  Status synchronize() override { return {}; }
};

class CpuDevice final : public Device {
public:
  explicit CpuDevice(int threads) : threads(threads) {
    if (threads >= 0)
      this->threads = setThreads(threads);
  }

  std::string name() const override {
#ifdef _OPENMP
    int n = threads > 0 ? threads : omp_get_max_threads();
#else
    int n = 1;
#endif
    return "cpu (" + std::to_string(n) + " threads, " +
           (hasAmxInt8()      ? "AMX-INT8"
            : hasAvx512Vnni() ? "AVX-512-VNNI"
            : hasAvx2Gemm()   ? "AVX2"
                              : "portable") +
           " integer GEMM)";
  }
  bool isHost() const override { return true; }
  std::shared_ptr<Buffer> allocate(size_t bytes, bool zeroFill) override {
    auto b = std::make_shared<CpuBuffer>(bytes, zeroFill);
    return b->valid() ? b : nullptr;
  }
  Stream &defaultStream() override { return stream; }
  Status copyToDevice(Stream &, void *dst, const void *src,
                      size_t bytes) override {
    std::memcpy(dst, src, bytes);
    return {};
  }
  Status copyToHost(Stream &, void *dst, const void *src,
                    size_t bytes) override {
    std::memcpy(dst, src, bytes);
    return {};
  }

  Status embedding(Stream &, const float *table, int64_t vocab, int64_t hidden,
                   const int64_t *ids, int64_t n, float *out) override {
    return rt::embedding(table, vocab, hidden, ids, n, out);
  }
  Status rmsNorm(Stream &, const float *x, const float *gain, int64_t rows,
                 int64_t cols, double eps, float *out) override {
    rt::rmsNorm(x, gain, rows, cols, eps, out);
    return {};
  }
  Status linear(Stream &, const float *x, const float *w, const float *bias,
                int64_t rows, int64_t in, int64_t out, float *y) override {
    rt::linear(x, w, bias, rows, in, out, y);
    return {};
  }
  Status rope(Stream &, const float *x, int64_t batch, int64_t seq,
              int64_t heads, int64_t headDim, double theta, int64_t offset,
              bool interleaved, float *out) override {
    rt::rope(x, batch, seq, heads, headDim, theta, offset, interleaved, out);
    return {};
  }
  Status attention(Stream &, const float *q, const float *k, const float *v,
                   const float *kp, const float *vp, int64_t prefix,
                   int64_t batch, int64_t seq, int64_t heads, int64_t kvHeads,
                   int64_t headDim, double scale, float *out) override {
    rt::attention(q, k, v, kp, vp, prefix, batch, seq, heads, kvHeads, headDim,
                  scale, out);
    return {};
  }
  Status ropeAt(Stream &, const float *x, const int64_t *positions,
                int64_t batch, int64_t seq, int64_t heads, int64_t headDim,
                double theta, int64_t offset, bool interleaved,
                float *out) override {
    rt::ropeAt(x, positions, batch, seq, heads, headDim, theta, offset,
               interleaved, out);
    return {};
  }
  Status attentionCached(Stream &, const float *q, const float *k,
                         const float *v, const float *kp, const float *vp,
                         int64_t prefix, const float *pastK, const float *pastV,
                         int64_t past, int64_t batch, int64_t seq,
                         int64_t heads, int64_t kvHeads, int64_t headDim,
                         double scale, float *out, float *presentK,
                         float *presentV) override {
    rt::attentionCached(q, k, v, kp, vp, prefix, pastK, pastV, past, batch, seq,
                        heads, kvHeads, headDim, scale, out, presentK,
                        presentV);
    return {};
  }
  Status swiglu(Stream &, const float *gate, const float *up, int64_t n,
                float *out) override {
    rt::swiglu(gate, up, n, out);
    return {};
  }
  Status add(Stream &, const float *a, const float *b, int64_t n,
             float *out) override {
    rt::add(a, b, n, out);
    return {};
  }
  Status registers(Stream &, RegisterMode mode, const float *x,
                   const float *regs, int64_t batch, int64_t seq, int64_t k,
                   int64_t hidden, float *out) override {
    return rt::registers(mode, x, regs, batch, seq, k, hidden, out);
  }
  Status quantizeRows(Stream &, const float *x, int64_t rows, int64_t cols,
                      int bits, double clip, float *out) override {
    rt::quantizeRows(x, rows, cols, bits, clip, out);
    return {};
  }
  Status hadamardRows(Stream &, const float *x, int64_t rows, int64_t width,
                      int64_t size, const float *signs, bool inverse, float *y,
                      int64_t stride) override {
    if (!rt::hadamardRows(x, rows, width, size, signs, inverse, y, stride))
      return Status::error("no Hadamard matrix of order " +
                           std::to_string(size) + " for width " +
                           std::to_string(width));
    return {};
  }
  Status quantizeActivations(Stream &, const float *x, int64_t rows,
                             int64_t cols, int bits, double clip,
                             QuantizedRows &out) override {
    rt::quantizeActivations(x, rows, cols, bits, clip, out);
    return {};
  }
  Status intGemm(Stream &, const QuantizedRows &x, const PackedWeights &w,
                 const float *bias, float *y) override {
    return rt::intGemm(x, w, bias, y);
  }

private:
  int threads;
  CpuStream stream;
};

} // namespace

std::unique_ptr<Device> createCpuDevice(int threads) {
  return std::make_unique<CpuDevice>(threads);
}

} // namespace w4a4::rt
