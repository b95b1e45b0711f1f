//===- Rows.cuh - embedding, row copies and the fp32 linear ------*- C++
//-*-===//
//
// The fp32 kernels around the W4A4 blocks:
//  - embedding: rows of the table by token id (rt::embedding); an id
//    outside the vocabulary writes a row of NaN and sets *badId (the host
//    reports it: the CPU refuses such ids with an error);
//  - tailRows: the last `scored` rows of each sequence (the row-wise tail
//    of w4a4k.tail_rows);
//  - linearF32: y = x W^T (+ bias), W [out, in] row-major, the fp LM head.
//    Each output is one float sum in input order. The CPU computes it with
//    OpenBLAS (its own blocking and FMA), so the two agree within float
//    rounding of a dot product, not bit for bit; on a GPU this is the place
//    for cuBLAS (scripts/gpu-check.sh measures both).
//
//===----------------------------------------------------------------------===//

#ifndef W4A4_CUDA_ROWS_CUH
#define W4A4_CUDA_ROWS_CUH

#include "w4a4/cuda/Producers.cuh"

namespace w4a4::cuda {

struct EmbeddingParams {
  const float *table = nullptr; // [vocab, hidden]
  const int64_t *ids = nullptr; // [rows]
  float *out = nullptr;         // [rows, hidden]
  int64_t vocab = 0;
  int rows = 0, hidden = 0;
  int *badId = nullptr; // set to 1 when an id is outside [0, vocab)
};

/// One block per row.
template <int Dummy = 0>
W4A4_KERNEL void W4A4_LAUNCH_BOUNDS(128) embedding(EmbeddingParams p) {
  int row = dev::blockX();
  int64_t id = p.ids[row];
  float *y = p.out + static_cast<int64_t>(row) * p.hidden;
  bool ok = id >= 0 && id < p.vocab;
  if (!ok && dev::threadX() == 0 && p.badId)
    *p.badId = 1;
  const float *x = ok ? p.table + id * p.hidden : nullptr;
  for (int c = dev::threadX(); c < p.hidden; c += dev::blockThreads())
    y[c] = ok ? x[c] : dev::bitsToFloat(0x7fc00000);
}

struct TailRowsParams {
  const float *x = nullptr; // [batch * seq, width]
  float *out = nullptr;     // [batch * scored, width]
  int seq = 0, scored = 0, width = 0;
};

/// One block per output row.
template <int Dummy = 0>
W4A4_KERNEL void W4A4_LAUNCH_BOUNDS(128) tailRows(TailRowsParams p) {
  int row = dev::blockX(), b = row / p.scored, j = row % p.scored;
  const float *x =
      p.x + (static_cast<int64_t>(b) * p.seq + p.seq - p.scored + j) * p.width;
  float *y = p.out + static_cast<int64_t>(row) * p.width;
  for (int c = dev::threadX(); c < p.width; c += dev::blockThreads())
    y[c] = x[c];
}

struct LinearF32Params {
  const float *x = nullptr;    // [rows, in]
  const float *w = nullptr;    // [out, in]
  const float *bias = nullptr; // [out] or null
  float *y = nullptr;          // [rows, out]
  int rows = 0, in = 0, out = 0;
};

namespace rows {
constexpr int kLinearThreads = 128;
} // namespace rows

/// Grid (rows, ceil(out / 128)): thread t of block (r, b) computes output
/// 128 b + t of row r.
template <int Dummy = 0>
W4A4_KERNEL void W4A4_LAUNCH_BOUNDS(rows::kLinearThreads)
    linearF32(LinearF32Params p) {
  int r = dev::blockX();
  int o = dev::blockY() * dev::blockThreads() + dev::threadX();
  if (o >= p.out)
    return;
  const float *x = p.x + static_cast<int64_t>(r) * p.in;
  const float *w = p.w + static_cast<int64_t>(o) * p.in;
  float acc = 0;
  for (int k = 0; k < p.in; ++k)
    acc = dev::addRn(acc, dev::mulRn(x[k], w[k]));
  p.y[static_cast<int64_t>(r) * p.out + o] =
      p.bias ? dev::addRn(acc, p.bias[o]) : acc;
}

struct TokenNllParams {
  const float *logits = nullptr;    // [rows, vocab]
  const int64_t *targets = nullptr; // [rows]
  double *nll = nullptr;            // [rows]
  int rows = 0, vocab = 0;
  int *badTarget = nullptr; // set to 1 when a target is outside [0, vocab)
};

namespace rows {
constexpr int kNllThreads = 128, kNllLanes = 16;
/// Shared bytes of tokenNll: the max scratch and the lane sums.
constexpr int nllSharedBytes() { return kNllThreads * 4 + kNllLanes * 8; }
} // namespace rows

/// One block per row.
template <int Dummy = 0>
W4A4_KERNEL void W4A4_LAUNCH_BOUNDS(rows::kNllThreads)
    tokenNll(TokenNllParams p) {
  auto *scratch = reinterpret_cast<float *>(dev::sharedBase());
  auto *lanes = reinterpret_cast<double *>(scratch + rows::kNllThreads);
  int r = dev::blockX(), t = dev::threadX(), threads = dev::blockThreads();
  const float *row = p.logits + static_cast<int64_t>(r) * p.vocab;
  float m = dev::bitsToFloat(static_cast<int32_t>(0xff800000u));
  for (int v = t; v < p.vocab; v += threads)
    m = row[v] > m ? row[v] : m;
  m = producers::blockMax(m, scratch);
  if (t < rows::kNllLanes) {
    double s = 0.0;
    for (int v = t; v < p.vocab; v += rows::kNllLanes)
      s = dev::daddRn(
          s, static_cast<double>(producers::expPoly(dev::subRn(row[v], m))));
    lanes[t] = s;
  }
  dev::syncThreads();
  if (t == 0) {
    int64_t target = p.targets[r];
    if (target < 0 || target >= p.vocab) {
      if (p.badTarget)
        *p.badTarget = 1;
      p.nll[r] = dev::bitsToFloat(0x7fc00000);
      return;
    }
    double sum = 0.0;
    for (int l = 0; l < rows::kNllLanes; ++l)
      sum = dev::daddRn(sum, lanes[l]);
    p.nll[r] = dev::daddRn(dev::dlog(sum), -(static_cast<double>(row[target]) -
                                             static_cast<double>(m)));
  }
}

} // namespace w4a4::cuda

#endif // W4A4_CUDA_ROWS_CUH
