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

#include "w4a4/cuda/Platform.cuh"

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
  const float *x = p.x + (static_cast<int64_t>(b) * p.seq + p.seq - p.scored +
                          j) * p.width;
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

} // namespace w4a4::cuda

#endif // W4A4_CUDA_ROWS_CUH
