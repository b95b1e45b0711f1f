/*===- run-artifact.c - drive a compiled w4a4 artifact from C ------------===*
 *
 * The C example of docs/tools/w4a4-compile.md, used by the tests:
 *   run-artifact DIR IDS [OUT.f32 [PREFILL]]
 * opens the artifact in DIR through its libmodel.so (dlopen'ed:
 * DIR/libmodel.so), runs w4a4_forward on the comma-separated token ids
 * (batch 1) and writes the logits as raw float32 to OUT.f32 (or "-": prints
 * the argmax of each position). With PREFILL = k, only the first k ids go
 * through w4a4_forward and the rest through w4a4_decode one at a time (the
 * KV cache): the same logits, position by position.
 *   run-artifact DIR IDS check PREFILL RELTOL
 * runs both (w4a4_forward on all ids; the prefill and then decode steps)
 * and fails unless every logit agrees within RELTOL x the largest |logit|.
 *   run-artifact DIR IDS last K RELTOL
 * compares w4a4_forward_last(K) with the last K rows of w4a4_forward, and
 * w4a4_forward_last(0) of all but K ids + w4a4_decode_last(1) of the K
 * others with the last row (the row-wise tail), within RELTOL x the largest
 * |logit| (0: bit for bit).
 * IDS may be "random:N": N ids drawn from the vocabulary (fixed seed).
 * Errors go to stderr, exit code 1.
 *
 *===----------------------------------------------------------------------===*/

#include "w4a4/runtime/w4a4_model.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef w4a4_model *(*open_fn)(const char *, char *, size_t);
typedef int (*forward_fn)(w4a4_model *, const int64_t *, int64_t, int64_t,
                          float *);
typedef int (*last_fn)(w4a4_model *, const int64_t *, int64_t, int64_t, int64_t,
                       float *);
typedef int64_t (*vocab_fn)(const w4a4_model *);
typedef int64_t (*length_fn)(const w4a4_model *);
typedef const char *(*error_fn)(const w4a4_model *);
typedef void (*close_fn)(w4a4_model *);

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: run-artifact DIR IDS [OUT.f32]\n");
    return 1;
  }
  char lib[4096];
  snprintf(lib, sizeof lib, "%s/libmodel.so", argv[1]);
  void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    fprintf(stderr, "run-artifact: %s\n", dlerror());
    return 1;
  }
  open_fn open = (open_fn)dlsym(h, "w4a4_open");
  forward_fn forward = (forward_fn)dlsym(h, "w4a4_forward");
  vocab_fn vocab = (vocab_fn)dlsym(h, "w4a4_vocab");
  error_fn last_error = (error_fn)dlsym(h, "w4a4_last_error");
  close_fn close = (close_fn)dlsym(h, "w4a4_close");
  forward_fn decode = (forward_fn)dlsym(h, "w4a4_decode");
  length_fn cache_length = (length_fn)dlsym(h, "w4a4_cache_length");
  if (!open || !forward || !vocab || !last_error || !close || !decode ||
      !cache_length) {
    fprintf(stderr, "run-artifact: %s lacks the w4a4 C API\n", lib);
    return 1;
  }
  char err[1024];
  w4a4_model *m = open(argv[1], err, sizeof err);
  if (!m) {
    fprintf(stderr, "run-artifact: %s\n", err);
    return 1;
  }
  int64_t v = vocab(m);
  int64_t n = 1;
  int64_t *ids;
  if (strncmp(argv[2], "random:", 7) == 0) {
    n = strtoll(argv[2] + 7, NULL, 10);
    ids = malloc(sizeof(int64_t) * (n > 0 ? n : 1));
    uint64_t state = 12345;
    for (int64_t i = 0; i < n; ++i) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      ids[i] = (int64_t)((state >> 33) % (uint64_t)v);
    }
  } else {
    for (const char *p = argv[2]; *p; ++p)
      n += *p == ',';
    ids = malloc(sizeof(int64_t) * n);
    char *end = argv[2];
    for (int64_t i = 0; i < n; ++i) {
      ids[i] = strtoll(end, &end, 10);
      if (*end == ',')
        ++end;
    }
  }
  if (argc > 5 && strcmp(argv[3], "last") == 0) {
    last_fn forward_last = (last_fn)dlsym(h, "w4a4_forward_last");
    last_fn decode_last = (last_fn)dlsym(h, "w4a4_decode_last");
    int64_t k = strtoll(argv[4], NULL, 10);
    double tol = strtod(argv[5], NULL);
    float *all = malloc(sizeof(float) * n * v);
    float *part = malloc(sizeof(float) * (k > 0 ? k : 1) * v);
    int ok = forward_last && decode_last && k >= 1 && k <= n;
    if (!ok)
      fprintf(stderr,
              "run-artifact: last: needs 1 <= K <= %lld and "
              "w4a4_forward_last\n",
              (long long)n);
    if (ok && (forward(m, ids, 1, n, all) != 0 ||
               forward_last(m, ids, 1, n, k, part) != 0)) {
      fprintf(stderr, "run-artifact: %s\n", last_error(m));
      ok = 0;
    }
    double worst = 0, scale = 0;
    for (int64_t i = 0; ok && i < k * v; ++i) {
      double d = part[i] - all[(n - k) * v + i];
      double a = all[(n - k) * v + i];
      worst = d < 0 ? (-d > worst ? -d : worst) : (d > worst ? d : worst);
      scale = a < 0 ? (-a > scale ? -a : scale) : (a > scale ? a : scale);
    }
    if (ok && (forward_last(m, ids, 1, n - k, 0, NULL) != 0 ||
               cache_length(m) != n - k ||
               decode_last(m, ids + n - k, 1, k, 1, part) != 0 ||
               cache_length(m) != n)) {
      fprintf(stderr, "run-artifact: %s (cache %lld)\n", last_error(m),
              (long long)cache_length(m));
      ok = 0;
    }
    double worstDecode = 0;
    for (int64_t i = 0; ok && i < v; ++i) {
      double d = part[i] - all[(n - 1) * v + i];
      d = d < 0 ? -d : d;
      worstDecode = d > worstDecode ? d : worstDecode;
    }
    if (ok)
      printf("%lld tokens, last %lld: max |forward_last - forward| = %.3g, "
             "max |decode_last - forward| = %.3g (max |logit| %.3g; "
             "tolerance %.3g)\n",
             (long long)n, (long long)k, worst, worstDecode, scale, tol);
    if (ok && !(worst <= tol * scale && worstDecode <= tol * scale)) {
      fprintf(stderr, "run-artifact: the scored rows differ\n");
      ok = 0;
    }
    free(all);
    free(part);
    close(m);
    free(ids);
    return ok ? 0 : 1;
  }
  int check = argc > 5 && strcmp(argv[3], "check") == 0;
  int rc = 1;
  float *full = NULL;
  float *logits = malloc(sizeof(float) * n * v);
  if (check) {
    full = malloc(sizeof(float) * n * v);
    if (forward(m, ids, 1, n, full) != 0) {
      fprintf(stderr, "run-artifact: %s\n", last_error(m));
      goto done;
    }
  }
  int64_t prefill = argc > 4 ? strtoll(argv[4], NULL, 10) : n;
  if (prefill < 0 || prefill > n)
    prefill = n;
  int status = forward(m, ids, 1, prefill, logits);
  for (int64_t t = prefill; status == 0 && t < n; ++t) {
    status = decode(m, ids + t, 1, 1, logits + t * v);
    if (status == 0 && cache_length(m) != t + 1) {
      fprintf(stderr, "run-artifact: the cache holds %lld tokens, not %lld\n",
              (long long)cache_length(m), (long long)(t + 1));
      goto done;
    }
  }
  if (status != 0) {
    fprintf(stderr, "run-artifact: %s\n", last_error(m));
    goto done;
  }
  if (check) {
    double worst = 0, scale = 0;
    int64_t at = 0;
    for (int64_t i = 0; i < n * v; ++i) {
      double d = logits[i] - full[i];
      if (d < 0)
        d = -d;
      if (d > worst) {
        worst = d;
        at = i / v;
      }
      double a = full[i] < 0 ? -full[i] : full[i];
      if (a > scale)
        scale = a;
    }
    double tol = strtod(argv[5], NULL);
    printf("%lld tokens, prefill %lld: max |decode - forward| = %.3g at "
           "position %lld (%.3g of max |logit| %.3g; tolerance %.3g)\n",
           (long long)n, (long long)prefill, worst, (long long)at,
           scale > 0 ? worst / scale : worst, scale, tol);
    if (!(worst <= tol * scale)) {
      fprintf(stderr, "run-artifact: decode differs from forward\n");
      goto done;
    }
  } else if (argc > 3 && strcmp(argv[3], "-") != 0) {
    FILE *f = fopen(argv[3], "wb");
    if (!f || fwrite(logits, sizeof(float), n * v, f) != (size_t)(n * v) ||
        fclose(f) != 0) {
      fprintf(stderr, "run-artifact: cannot write %s\n", argv[3]);
      goto done;
    }
  } else {
    for (int64_t t = 0; t < n; ++t) {
      int64_t best = 0;
      for (int64_t j = 1; j < v; ++j)
        if (logits[t * v + j] > logits[t * v + best])
          best = j;
      printf("%lld%s", (long long)best, t + 1 < n ? " " : "\n");
    }
  }
  rc = 0;
done:
  close(m);
  free(ids);
  free(logits);
  free(full);
  /* libmodel.so is never unloaded (-z nodelete); dlclose only drops the
   * reference. */
  dlclose(h);
  return rc;
}
