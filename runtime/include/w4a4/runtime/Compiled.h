//===- Compiled.h - what code emitted by w4a4-compile calls -----*- C++ -*-===//
//
// The model.cpp that w4a4-compile emits (from the w4a4k kernel-level IR,
// through EmitC) is one function of kernel calls on a Context, plus a
// ModelSpec describing its weights and buffer plan. This header is that
// interface; the runtime implements it (runtime/lib/Compiled.cpp) and the
// artifact's shared library links the runtime statically. The C API of
// w4a4_model.h is implemented on top of it.
//
//===----------------------------------------------------------------------===//

#ifndef W4A4_RUNTIME_COMPILED_H
#define W4A4_RUNTIME_COMPILED_H

#include "w4a4/runtime/w4a4_model.h"

#include <cstddef>
#include <cstdint>

namespace w4a4::cc {

struct Context;

/// One weight the code reads, in the order of weights.bin.
struct TensorSpec {
  const char *name;
  int type; // 0 f32, 1 i8 (rt::WeightType)
  int rank;
  int64_t dims[4];
};

/// A quantized weight the runtime packs when the artifact opens (the
/// `cpu_vnni_panels` layout of w4a4k.qgemm): codes and scales tensors.
struct PackSpec {
  int codes, scales;
  int bits;
  int64_t group, out, in;
};

struct ModelSpec {
  uint64_t weightsChecksum;
  const TensorSpec *tensors;
  int numTensors;
  const PackSpec *packs;
  int numPacks;
  int64_t arenaWidth, maxSeqExtra, qrowsSlots;
  int64_t vocab, batch, maxTokens;
  /// Attention layers keeping a KV cache (w4a4k.attention cache_layer).
  int64_t cacheLayers;
  /// Registers applied on every call (not folded): no decoding.
  int64_t perCallRegisters;
  /// The code runs its row-wise tail on the scored rows only
  /// (w4a4k.tail_rows): the result has batch x scored rows.
  int64_t rowTail;
  void (*forward)(Context *);
};

// The library's C API entry points call these with their ModelSpec.
w4a4_model *open(const ModelSpec *spec, const char *dir, char *err,
                 size_t errLen);

// What the emitted forward function calls. Every call after a failed one
// does nothing; the failure is reported by w4a4_forward.
int64_t batch(Context *c);
/// The rows of an op whose sequence is the call's plus `extra`.
int64_t rows(Context *c, int64_t extra);
int64_t seq(Context *c, int64_t extra);
/// The rows of the row-wise tail: batch x the positions the call scores.
int64_t scoredRows(Context *c);
const int64_t *ids(Context *c);
float *slot(Context *c, int64_t offset);
float *result(Context *c);
const float *f32(Context *c, int tensor);

void embedding(Context *c, const float *table, int64_t vocab, int64_t hidden,
               const int64_t *ids, int64_t n, float *out);
void rmsNorm(Context *c, const float *x, const float *gain, int64_t rows,
             int64_t cols, double eps, float *out);
void gemm(Context *c, const float *x, const float *w, const float *bias,
          int64_t rows, int64_t in, int64_t out, float *y);
void quantize(Context *c, int64_t qslot, const float *x, int64_t rows,
              int64_t cols, int64_t bits, double clip);
/// `residual` (may be null) is added in the epilogue, after the bias.
void qgemm(Context *c, int64_t qslot, int pack, const float *bias,
           const float *residual, int64_t rows, float *y);
/// rms_norm then quantize, row by row (the normed rows are not stored).
void rmsNormQuantize(Context *c, int64_t qslot, const float *x,
                     const float *gain, int64_t rows, int64_t cols, double eps,
                     int64_t bits, double clip);
/// swiglu, then (hadamardSize > 0) a Hadamard transform, then quantize, row
/// by row.
void swigluQuantize(Context *c, int64_t qslot, const float *gate,
                    const float *up, int64_t rows, int64_t cols,
                    int64_t hadamardSize, const float *signs, bool inverse,
                    int64_t stride, int64_t bits, double clip);
/// The last `scored` rows of each sequence of x [batch, seq, width].
void tailRows(Context *c, const float *x, int64_t batch, int64_t seq,
              int64_t width, float *out);
void fakeQuant(Context *c, const float *x, int64_t rows, int64_t cols,
               int64_t bits, double clip, int64_t group, float *out);
/// Positions start at `offset` plus the KV cache's length.
void rope(Context *c, const float *x, int64_t batch, int64_t seq, int64_t heads,
          int64_t headDim, double theta, int64_t offset, bool interleaved,
          float *out);
/// `layer` >= 0: appends k, v to that layer of the KV cache and attends to
/// the cache too.
void attention(Context *c, int64_t layer, const float *q, const float *k,
               const float *v, const float *kp, const float *vp, int64_t prefix,
               int64_t batch, int64_t seq, int64_t heads, int64_t kvHeads,
               int64_t headDim, double scale, float *out);
void swiglu(Context *c, const float *gate, const float *up, int64_t rows,
            int64_t cols, float *out);
void add(Context *c, const float *a, const float *b, int64_t rows, int64_t cols,
         float *out);
void hadamard(Context *c, const float *x, int64_t rows, int64_t width,
              int64_t size, const float *signs, bool inverse, int64_t stride,
              float *out);
/// mode 0 prepend, 1 add, 2 strip (rt::RegisterMode).
void registers(Context *c, int mode, const float *x, const float *regs,
               int64_t batch, int64_t seq, int64_t k, int64_t hidden,
               float *out);

} // namespace w4a4::cc

#endif
