//===- Kernels.h - CPU kernels of the w4a4 ops ------------------*- C++ -*-===//
//
// One function per w4a4 op, on row-major fp32 buffers. Shapes follow the ops:
// activations are [rows, features] with rows = batch * seq where the op does
// not care about sequence order, else [batch, seq, features]. Outputs must not
// alias inputs unless stated. Kernels parallelize over the calling process's
// threads (OpenMP, OpenBLAS); setThreads() bounds both.
//
//===----------------------------------------------------------------------===//

#ifndef W4A4_RUNTIME_KERNELS_H
#define W4A4_RUNTIME_KERNELS_H

#include "w4a4/runtime/Status.h"

#include <cstdint>

namespace w4a4::rt {

/// Threads used by the kernels (OpenMP; OpenBLAS runs single-threaded inside
/// them); 0 = all usable cores. More threads than usable cores are clamped
/// to the cores (oversubscribed spinning threads only slow each other).
/// Returns the number in effect.
int setThreads(int threads);

/// The cores this process may run on (its CPU affinity mask).
int usableCores();

/// The OpenMP wait policy of this process ("passive", "active" or
/// "default"): read from OMP_WAIT_POLICY when OpenMP started.
const char *waitPolicy();

/// out[i, :] = table[ids[i], :]; ids outside [0, vocab) are an error.
Status embedding(const float *table, int64_t vocab, int64_t hidden,
                 const int64_t *ids, int64_t n, float *out);

/// out = x / sqrt(mean(x^2) + eps) (* gain), per row of `cols` features.
void rmsNorm(const float *x, const float *gain, int64_t rows, int64_t cols,
             double eps, float *out);
/// One row of rmsNorm() (the values rmsNorm() computes for it).
void rmsNormRow(const float *x, const float *gain, int64_t cols, double eps,
                float *out);

/// y[rows, out] = x[rows, in] W[out, in]^T (+ bias[out]); the bias
/// initializes the accumulator.
void linear(const float *x, const float *w, const float *bias, int64_t rows,
            int64_t in, int64_t out, float *y);

/// Rotary embedding of x [batch, seq, heads * headDim] (may alias out):
/// position of token s is s + offset; rotate-half pairs (i, i + d/2) or
/// interleaved pairs (2i, 2i + 1); angle p * theta^(-2i/d) in float64.
void rope(const float *x, int64_t batch, int64_t seq, int64_t heads,
          int64_t headDim, double theta, int64_t offset, bool interleaved,
          float *out);

/// The cos and sin tables rope() uses: [p1 - p0, headDim / 2] for
/// positions p0..p1-1, cos/sin(p * theta^(-2i/d)) computed in float64 and
/// rounded to float (for kernels elsewhere, e.g. the CUDA ones, to rotate
/// with the same values).
void ropeTables(double theta, int64_t headDim, int64_t p0, int64_t p1,
                float *cosT, float *sinT);

/// Causal attention: q [batch, seq, heads * d], k and v [batch, seq,
/// kvHeads * d], optional constant prefix kp, vp [prefix, kvHeads * d] that
/// every token sees before the sequence; out [batch, seq, heads * d].
void attention(const float *q, const float *k, const float *v, const float *kp,
               const float *vp, int64_t prefix, int64_t batch, int64_t seq,
               int64_t heads, int64_t kvHeads, int64_t headDim, double scale,
               float *out);

/// rope() with per-token positions: token s of batch b has position
/// positions[b * seq + s] + offset (>= 0, checked by the caller).
void ropeAt(const float *x, const int64_t *positions, int64_t batch,
            int64_t seq, int64_t heads, int64_t headDim, double theta,
            int64_t offset, bool interleaved, float *out);

/// attention() that reads and writes a KV cache: pastK, pastV [batch,
/// kvHeads, past, d] (the tokens before the sequence) and the sequence's k,
/// v [batch, seq, kvHeads * d] are written to presentK, presentV [batch,
/// kvHeads, past + seq, d]; token s sees the prefix, the past and tokens
/// 0..s of the sequence.
void attentionCached(const float *q, const float *k, const float *v,
                     const float *kp, const float *vp, int64_t prefix,
                     const float *pastK, const float *pastV, int64_t past,
                     int64_t batch, int64_t seq, int64_t heads, int64_t kvHeads,
                     int64_t headDim, double scale, float *out, float *presentK,
                     float *presentV);

/// out = silu(gate) * up, elementwise.
void swiglu(const float *gate, const float *up, int64_t n, float *out);
/// swiglu() of n values on one thread (each value as swiglu() computes it).
void swigluRow(const float *gate, const float *up, int64_t n, float *out);

/// Perplexity scoring: nll[r] = -log softmax(logits[r, :])[targets[r]] for
/// each of `rows` rows of `vocab` logits, as log(sum_v exp(l_v - max)) -
/// (l_t - max) with the sum in float64. Targets outside [0, vocab) are an
/// error; non-finite logits give a non-finite nll (the caller reports it).
Status tokenNll(const float *logits, int64_t rows, int64_t vocab,
                const int64_t *targets, double *nll);

/// out = a + b, elementwise.
void add(const float *a, const float *b, int64_t n, float *out);

enum class RegisterMode { Prepend, Add, Strip };
/// Depth Registers on x [batch, seq, hidden] with regs [k, hidden]: prepend
/// (out [batch, seq + k, hidden]), add to the first k positions (out like x),
/// or strip the first k positions (out [batch, seq - k, hidden]).
Status registers(RegisterMode mode, const float *x, const float *regs,
                 int64_t batch, int64_t seq, int64_t k, int64_t hidden,
                 float *out);

/// Per-row symmetric b-bit fake quantization (DESIGN.md):
/// s = clip * max|x| / (2^(b-1) - 1), q = clamp(rne(x / s)), out = q * s.
void quantizeRows(const float *x, int64_t rows, int64_t cols, int bits,
                  double clip, float *out);

} // namespace w4a4::rt

#endif // W4A4_RUNTIME_KERNELS_H
