/*===- w4a4_model.h - C API of a model compiled by w4a4-compile ---*- C -*-===*
 *
 * w4a4-compile writes this header into the artifact as model.h; the shared
 * library libmodel.so next to it implements it. No C++ exception crosses it:
 * every call reports failure through its return value and an error string.
 *
 *   char err[512];
 *   w4a4_model *m = w4a4_open("out/", err, sizeof err);
 *   if (!m) { fprintf(stderr, "%s\n", err); return 1; }
 *   int64_t ids[3] = {1, 42, 7};
 *   float *logits = malloc(sizeof(float) * 3 * w4a4_vocab(m));
 *   if (w4a4_forward(m, ids, 1, 3, logits) != 0)
 *     fprintf(stderr, "%s\n", w4a4_last_error(m));
 *   w4a4_close(m);
 *
 *===----------------------------------------------------------------------===*/

#ifndef W4A4_MODEL_H
#define W4A4_MODEL_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define W4A4_API __attribute__((visibility("default")))
#else
#define W4A4_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef struct w4a4_model w4a4_model;

/* Opens the artifact in directory `dir` (its weights.bin and manifest.json,
 * found relative to `dir`). On failure returns NULL and writes a message
 * naming the file into `err` (at most `err_len` bytes, NUL-terminated). */
W4A4_API w4a4_model *w4a4_open(const char *dir, char *err, size_t err_len);

/* Logits of every position: `ids` is [batch, seq] (row-major), `logits`
 * receives [batch, seq, vocab] floats. The KV cache is emptied first and
 * then holds these tokens. Returns 0, or -1 with
 * w4a4_last_error() saying why (an id outside the vocabulary, a batch the
 * model was not compiled for, too many positions). */
W4A4_API int w4a4_forward(w4a4_model *m, const int64_t *ids, int64_t batch,
                          int64_t seq, float *logits);

/* Appends `seq` tokens per sequence to the model's KV cache (after the
 * tokens of the last w4a4_forward / w4a4_decode since w4a4_reset) and writes
 * their logits, [batch, seq, vocab]. Decoding one token at a time after a
 * w4a4_forward of the prompt is generation. Returns 0, or -1 with
 * w4a4_last_error() (a batch other than the cache's, too many positions, a
 * model that prepends registers on every call). */
W4A4_API int w4a4_decode(w4a4_model *m, const int64_t *ids, int64_t batch,
                         int64_t seq, float *logits);

/* w4a4_forward and w4a4_decode that write only the logits of the last
 * `last` positions of each sequence (0 <= last <= seq): `logits` receives
 * [batch, last, vocab] floats (may be NULL when last is 0: the call only
 * fills the KV cache). Perplexity scores the last `stride` positions of a
 * window, generation needs the last one; the model's final norm and LM head
 * then run on those rows only (the row-wise tail). The rows agree with a
 * full call's up to the fp32 GEMMs' rounding (the BLAS blocks its sums by
 * the number of rows; integer GEMMs are exact): within 1e-5 of the largest
 * |logit|, tested. */
W4A4_API int w4a4_forward_last(w4a4_model *m, const int64_t *ids, int64_t batch,
                               int64_t seq, int64_t last, float *logits);
W4A4_API int w4a4_decode_last(w4a4_model *m, const int64_t *ids, int64_t batch,
                              int64_t seq, int64_t last, float *logits);

/* Empties the KV cache (w4a4_forward starts from an empty cache anyway). */
W4A4_API void w4a4_reset(w4a4_model *m);

/* The tokens per sequence the KV cache holds. */
W4A4_API int64_t w4a4_cache_length(const w4a4_model *m);

W4A4_API int64_t w4a4_vocab(const w4a4_model *m);
/* The most tokens one call may take (the model's positions, less its
 * register prefix); 0 when the model states no bound. */
W4A4_API int64_t w4a4_max_tokens(const w4a4_model *m);
/* The batch the model was compiled for, or -1 when any batch works. */
W4A4_API int64_t w4a4_batch(const w4a4_model *m);

/* Kernel threads (0: all usable cores); returns the number in effect. */
W4A4_API int w4a4_set_threads(w4a4_model *m, int threads);

/* The message of the last failed call on `m` ("" when none). */
W4A4_API const char *w4a4_last_error(const w4a4_model *m);

W4A4_API void w4a4_close(w4a4_model *m);

#ifdef __cplusplus
}
#endif

#endif
