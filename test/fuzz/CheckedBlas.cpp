//===- CheckedBlas.cpp - a BLAS the fuzz targets' sanitizers can see ------===//
//
// The BLAS routines the project calls, as plain loops compiled with the fuzz
// targets' sanitizers and linked into them ahead of OpenBLAS: OpenBLAS is not
// instrumented, so ASan cannot see a write past the end of a buffer it is
// handed (it would corrupt the allocator's metadata silently, and fail later
// somewhere else). Only correctness matters here: the fuzz inputs are tiny.
//
//===----------------------------------------------------------------------===//

#include <cblas.h>

namespace {

/// Element (r, c) of a matrix with leading dimension ld.
template <typename T>
T &at(T *m, blasint ld, blasint r, blasint c, bool rowMajor) {
  return rowMajor ? m[r * ld + c] : m[c * ld + r];
}

template <typename T>
void gemm(CBLAS_ORDER order, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, blasint m,
          blasint n, blasint k, T alpha, const T *a, blasint lda, const T *b,
          blasint ldb, T beta, T *c, blasint ldc) {
  bool rowMajor = order == CblasRowMajor;
  bool transA = ta != CblasNoTrans, transB = tb != CblasNoTrans;
  for (blasint i = 0; i < m; ++i)
    for (blasint j = 0; j < n; ++j) {
      T sum = 0;
      for (blasint p = 0; p < k; ++p)
        sum +=
            (transA ? at(a, lda, p, i, rowMajor) : at(a, lda, i, p, rowMajor)) *
            (transB ? at(b, ldb, j, p, rowMajor) : at(b, ldb, p, j, rowMajor));
      T &out = at(c, ldc, i, j, rowMajor);
      out = beta == T(0) ? alpha * sum : alpha * sum + beta * out;
    }
}

} // namespace

extern "C" {

void cblas_sgemm(OPENBLAS_CONST enum CBLAS_ORDER order,
                 OPENBLAS_CONST enum CBLAS_TRANSPOSE ta,
                 OPENBLAS_CONST enum CBLAS_TRANSPOSE tb,
                 OPENBLAS_CONST blasint m, OPENBLAS_CONST blasint n,
                 OPENBLAS_CONST blasint k, OPENBLAS_CONST float alpha,
                 OPENBLAS_CONST float *a, OPENBLAS_CONST blasint lda,
                 OPENBLAS_CONST float *b, OPENBLAS_CONST blasint ldb,
                 OPENBLAS_CONST float beta, float *c,
                 OPENBLAS_CONST blasint ldc) {
  gemm(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void cblas_dgemm(OPENBLAS_CONST enum CBLAS_ORDER order,
                 OPENBLAS_CONST enum CBLAS_TRANSPOSE ta,
                 OPENBLAS_CONST enum CBLAS_TRANSPOSE tb,
                 OPENBLAS_CONST blasint m, OPENBLAS_CONST blasint n,
                 OPENBLAS_CONST blasint k, OPENBLAS_CONST double alpha,
                 OPENBLAS_CONST double *a, OPENBLAS_CONST blasint lda,
                 OPENBLAS_CONST double *b, OPENBLAS_CONST blasint ldb,
                 OPENBLAS_CONST double beta, double *c,
                 OPENBLAS_CONST blasint ldc) {
  gemm(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/// C = alpha A A^T + beta C (NoTrans, A is n x k) or alpha A^T A + beta C
/// (Trans, A is k x n); only the `uplo` triangle of C is written.
void cblas_dsyrk(OPENBLAS_CONST enum CBLAS_ORDER order,
                 OPENBLAS_CONST enum CBLAS_UPLO uplo,
                 OPENBLAS_CONST enum CBLAS_TRANSPOSE trans,
                 OPENBLAS_CONST blasint n, OPENBLAS_CONST blasint k,
                 OPENBLAS_CONST double alpha, OPENBLAS_CONST double *a,
                 OPENBLAS_CONST blasint lda, OPENBLAS_CONST double beta,
                 double *c, OPENBLAS_CONST blasint ldc) {
  bool rowMajor = order == CblasRowMajor, t = trans != CblasNoTrans;
  for (blasint i = 0; i < n; ++i)
    for (blasint j = 0; j < n; ++j) {
      if (uplo == CblasUpper ? j < i : j > i)
        continue;
      double sum = 0;
      for (blasint p = 0; p < k; ++p)
        sum += t ? at(a, lda, p, i, rowMajor) * at(a, lda, p, j, rowMajor)
                 : at(a, lda, i, p, rowMajor) * at(a, lda, j, p, rowMajor);
      double &out = at(c, ldc, i, j, rowMajor);
      out = beta == 0.0 ? alpha * sum : alpha * sum + beta * out;
    }
}

/// y = alpha A x + beta y, A symmetric: only its `uplo` triangle is read.
void cblas_dsymv(OPENBLAS_CONST enum CBLAS_ORDER order,
                 OPENBLAS_CONST enum CBLAS_UPLO uplo, OPENBLAS_CONST blasint n,
                 OPENBLAS_CONST double alpha, OPENBLAS_CONST double *a,
                 OPENBLAS_CONST blasint lda, OPENBLAS_CONST double *x,
                 OPENBLAS_CONST blasint incx, OPENBLAS_CONST double beta,
                 double *y, OPENBLAS_CONST blasint incy) {
  bool rowMajor = order == CblasRowMajor;
  for (blasint i = 0; i < n; ++i) {
    double sum = 0;
    for (blasint j = 0; j < n; ++j) {
      bool stored = uplo == CblasUpper ? j >= i : j <= i;
      sum +=
          (stored ? at(a, lda, i, j, rowMajor) : at(a, lda, j, i, rowMajor)) *
          x[j * incx];
    }
    double &out = y[i * incy];
    out = beta == 0.0 ? alpha * sum : alpha * sum + beta * out;
  }
}

} // extern "C"
