//===- Device.h - backend-neutral device, stream and buffers ----*- C++ -*-===//
//
// The interface a backend implements so that the executor can run w4a4 IR on
// it: memory (Buffer), ordering (Stream) and one kernel entry point per w4a4
// op (Device), on device addresses. The CPU backend (createCpuDevice) runs
// the kernels of Kernels.h / Hadamard.h / IntGemm.h; a CUDA backend
// implements the same methods with device memory and cudaStream_t. The
// executor talks to this interface only.
//
//===----------------------------------------------------------------------===//

#ifndef W4A4_RUNTIME_DEVICE_H
#define W4A4_RUNTIME_DEVICE_H

#include "w4a4/runtime/IntGemm.h"
#include "w4a4/runtime/Kernels.h"
#include "w4a4/runtime/Status.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace w4a4::rt {

/// A device allocation (64-byte aligned; zero-filled unless allocated as
/// scratch). Freed with the last reference.
class Buffer {
public:
  virtual ~Buffer() = default;
  /// The device address of the first byte.
  virtual void *data() = 0;
  virtual size_t bytes() const = 0;
  float *f32() { return static_cast<float *>(data()); }
};

/// An in-order queue of kernels on one device. Every kernel of a Device
/// takes the stream it is ordered on; the host waits with synchronize().
class Stream {
public:
  virtual ~Stream() = default;
  /// Waits until everything enqueued so far has finished; reports the
  /// first error a kernel raised asynchronously.
  virtual Status synchronize() = 0;
};

class Device {
public:
  virtual ~Device() = default;
  /// e.g. "cpu (2 threads, AVX-512-VNNI)".
  virtual std::string name() const = 0;
  /// True when device addresses are host addresses (the host may read a
  /// buffer after synchronize() without a copy).
  virtual bool isHost() const = 0;
  /// Zero-filled memory, or with `zeroFill = false` memory whose contents
  /// are unspecified (for kernel outputs: every kernel writes all of its
  /// output, which the kernel tests check with NaN-poisoned outputs).
  virtual std::shared_ptr<Buffer> allocate(size_t bytes,
                                           bool zeroFill = true) = 0;
  virtual Stream &defaultStream() = 0;
  /// Copies `bytes` between host and device memory in stream order.
  virtual Status copyToDevice(Stream &s, void *dst, const void *src,
                              size_t bytes) = 0;
  virtual Status copyToHost(Stream &s, void *dst, const void *src,
                            size_t bytes) = 0;

  // Kernels: the contracts of Kernels.h, Hadamard.h and IntGemm.h.
  virtual Status embedding(Stream &s, const float *table, int64_t vocab,
                           int64_t hidden, const int64_t *ids, int64_t n,
                           float *out) = 0;
  virtual Status rmsNorm(Stream &s, const float *x, const float *gain,
                         int64_t rows, int64_t cols, double eps,
                         float *out) = 0;
  virtual Status linear(Stream &s, const float *x, const float *w,
                        const float *bias, int64_t rows, int64_t in,
                        int64_t out, float *y) = 0;
  virtual Status rope(Stream &s, const float *x, int64_t batch, int64_t seq,
                      int64_t heads, int64_t headDim, double theta,
                      int64_t offset, bool interleaved, float *out) = 0;
  virtual Status attention(Stream &s, const float *q, const float *k,
                           const float *v, const float *kp, const float *vp,
                           int64_t prefix, int64_t batch, int64_t seq,
                           int64_t heads, int64_t kvHeads, int64_t headDim,
                           double scale, float *out) = 0;
  /// rope() with per-token positions [batch * seq] (plus offset).
  virtual Status ropeAt(Stream &s, const float *x, const int64_t *positions,
                        int64_t batch, int64_t seq, int64_t heads,
                        int64_t headDim, double theta, int64_t offset,
                        bool interleaved, float *out) = 0;
  /// attention() reading the KV cache pastK/pastV [batch, kvHeads, past,
  /// headDim] and writing presentK/presentV [batch, kvHeads, past + seq,
  /// headDim].
  virtual Status attentionCached(Stream &s, const float *q, const float *k,
                                 const float *v, const float *kp,
                                 const float *vp, int64_t prefix,
                                 const float *pastK, const float *pastV,
                                 int64_t past, int64_t batch, int64_t seq,
                                 int64_t heads, int64_t kvHeads,
                                 int64_t headDim, double scale, float *out,
                                 float *presentK, float *presentV) = 0;
  virtual Status swiglu(Stream &s, const float *gate, const float *up,
                        int64_t n, float *out) = 0;
  virtual Status add(Stream &s, const float *a, const float *b, int64_t n,
                     float *out) = 0;
  virtual Status registers(Stream &s, RegisterMode mode, const float *x,
                           const float *regs, int64_t batch, int64_t seq,
                           int64_t k, int64_t hidden, float *out) = 0;
  virtual Status quantizeRows(Stream &s, const float *x, int64_t rows,
                              int64_t cols, int bits, double clip,
                              float *out) = 0;
  virtual Status hadamardRows(Stream &s, const float *x, int64_t rows,
                              int64_t width, int64_t size, const float *signs,
                              bool inverse, float *y, int64_t stride) = 0;
  /// The W4A4 GEMM: activations quantized per row (reusable across the
  /// linears that read the same input), then the integer product.
  virtual Status quantizeActivations(Stream &s, const float *x, int64_t rows,
                                     int64_t cols, int bits, double clip,
                                     QuantizedRows &out) = 0;
  virtual Status intGemm(Stream &s, const QuantizedRows &x,
                         const PackedWeights &w, const float *bias,
                         float *y) = 0;
};

/// The CPU backend: host memory, a stream that runs each kernel when it is
/// enqueued, kernels parallel over `threads` (0 = all cores, -1 = as
/// setThreads() last set them).
std::unique_ptr<Device> createCpuDevice(int threads = -1);

} // namespace w4a4::rt

#endif // W4A4_RUNTIME_DEVICE_H
