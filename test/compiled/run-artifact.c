/*===- run-artifact.c - drive a compiled w4a4 artifact from C ------------===*
 *
 * The C example of docs/tools/w4a4-compile.md, used by the tests:
 *   run-artifact DIR IDS [OUT.f32]
 * opens the artifact in DIR through its libmodel.so (linked at build time or
 * dlopen'ed: DIR/libmodel.so), runs w4a4_forward on the comma-separated
 * token ids (batch 1) and writes the logits as raw float32 to OUT.f32, or
 * prints the argmax of each position. Errors go to stderr, exit code 1.
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
typedef int64_t (*vocab_fn)(const w4a4_model *);
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
  if (!open || !forward || !vocab || !last_error || !close) {
    fprintf(stderr, "run-artifact: %s lacks the w4a4 C API\n", lib);
    return 1;
  }
  char err[1024];
  w4a4_model *m = open(argv[1], err, sizeof err);
  if (!m) {
    fprintf(stderr, "run-artifact: %s\n", err);
    return 1;
  }
  int64_t n = 1;
  for (const char *p = argv[2]; *p; ++p)
    n += *p == ',';
  int64_t *ids = malloc(sizeof(int64_t) * n);
  char *end = argv[2];
  for (int64_t i = 0; i < n; ++i) {
    ids[i] = strtoll(end, &end, 10);
    if (*end == ',')
      ++end;
  }
  int64_t v = vocab(m);
  float *logits = malloc(sizeof(float) * n * v);
  if (forward(m, ids, 1, n, logits) != 0) {
    fprintf(stderr, "run-artifact: %s\n", last_error(m));
    close(m);
    return 1;
  }
  if (argc > 3) {
    FILE *f = fopen(argv[3], "wb");
    if (!f || fwrite(logits, sizeof(float), n * v, f) != (size_t)(n * v) ||
        fclose(f) != 0) {
      fprintf(stderr, "run-artifact: cannot write %s\n", argv[3]);
      return 1;
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
  close(m);
  free(ids);
  free(logits);
  dlclose(h);
  return 0;
}
