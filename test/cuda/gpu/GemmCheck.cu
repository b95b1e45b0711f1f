//===- GemmCheck.cu - the CUDA W4A4 GEMM on a real GPU --------------------===//
//
// Built and run by scripts/gpu-check.sh on a machine with an NVIDIA GPU:
//  1. correctness: the emulated tests' cases (test/cuda/GemmEmulatedTest.cpp)
//     on the device, every output compared bit for bit with the CPU
//     runtime's rt::intGemm (which the emulator matches too);
//  2. benchmark: W4A4 GEMM TOPS at the bundled model's and Llama-7B/8B
//     shapes for M = 16, 256, 2048, 8192 against cuBLASLt BF16 and INT8 in
//     the same run.
// Writes JSON to the file named by the first argument.
//
//===----------------------------------------------------------------------===//

#include "../GemmCases.h"
#include "w4a4/cuda/Launch.h"
#include "w4a4/cuda/Pack.h"
#include "w4a4/runtime/IntGemm.h"

#include <cublasLt.h>
#include <cuda_bf16.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <vector>

using namespace w4a4;

namespace {

#define CHECK_CUDA(x)                                                          \
  do {                                                                         \
    cudaError_t e_ = (x);                                                      \
    if (e_ != cudaSuccess) {                                                   \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x,          \
                   cudaGetErrorString(e_));                                    \
      std::exit(2);                                                            \
    }                                                                          \
  } while (0)
#define CHECK_LT(x)                                                            \
  do {                                                                         \
    cublasStatus_t s_ = (x);                                                   \
    if (s_ != CUBLAS_STATUS_SUCCESS) {                                         \
      std::fprintf(stderr, "%s:%d: %s: cuBLAS status %d\n", __FILE__,          \
                   __LINE__, #x, static_cast<int>(s_));                        \
      std::exit(2);                                                            \
    }                                                                          \
  } while (0)

std::mt19937 rng(20261201);

template <class T> T *upload(const std::vector<T> &v) {
  T *d = nullptr;
  CHECK_CUDA(cudaMalloc(&d, std::max<size_t>(1, v.size()) * sizeof(T)));
  if (!v.empty())
    CHECK_CUDA(
        cudaMemcpy(d, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}

cudaError_t launch(cuda::GemmTarget t, const cuda::GemmParams &p) {
  return t == cuda::GemmTarget::Sm80S4 ? cuda::launchGemmSm80(p, nullptr)
                                       : cuda::launchGemmSm90(p, nullptr);
}

using Case = cuda::test::GemmCase;

/// Runs one case on the device; returns the number of outputs whose bits
/// differ from rt::intGemm's.
int64_t checkCase(cuda::GemmTarget target, const Case &c) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(c.m * c.k);
  for (float &v : x)
    v = nd(rng);
  rt::QuantizedRows qx;
  rt::quantizeActivations(x.data(), c.m, c.k, 4, 1.0, qx);
  int64_t groups = c.group ? c.k / c.group : 1;
  std::vector<float> scales(c.n * groups);
  std::uniform_real_distribution<float> sd(0.001f, 0.1f);
  for (float &s : scales)
    s = sd(rng);
  std::uniform_int_distribution<int> cd(-(1 << (c.weightBits - 1)),
                                        (1 << (c.weightBits - 1)) - 1);
  std::vector<int> codes(c.n * c.k);
  for (int &v : codes)
    v = cd(rng);
  auto ir = rt::packCodes(codes.data(), c.n, c.k, c.weightBits);
  rt::PackedWeights w;
  if (!rt::packWeights(ir.data(), scales.data(), c.n, c.k, c.weightBits,
                       c.group, w)
           .ok())
    std::exit(3);
  std::vector<float> bias(c.n), residual(c.m * c.n), expected(c.m * c.n);
  for (float &v : bias)
    v = nd(rng);
  for (float &v : residual)
    v = nd(rng);
  if (!rt::intGemm(qx, w, c.bias ? bias.data() : nullptr, expected.data(),
                   rt::GemmPath::Auto, c.residual ? residual.data() : nullptr)
           .ok())
    std::exit(3);
  cuda::CudaWeights cw;
  std::vector<uint8_t> a;
  if (!cuda::packWeights(target, w, cw).ok() ||
      !cuda::packActivations(qx, cw.kPadded, a).ok())
    std::exit(3);
  cuda::GemmParams p;
  p.m = static_cast<int>(c.m);
  p.n = static_cast<int>(c.n);
  p.kPadded = static_cast<int>(cw.kPadded);
  p.groupSteps = static_cast<int>(cw.groupSteps);
  p.groups = static_cast<int>(cw.groups);
  p.nPadded = static_cast<int>(cw.nPadded);
  p.a = upload(a);
  p.aScale = upload(qx.scales);
  p.b = upload(cw.tiles);
  p.bScale = upload(cw.scales);
  p.bias = c.bias ? upload(bias) : nullptr;
  p.residual = c.residual ? upload(residual) : nullptr;
  std::vector<float> y(c.m * c.n, std::numeric_limits<float>::quiet_NaN());
  p.y = upload(y);
  CHECK_CUDA(launch(target, p));
  CHECK_CUDA(cudaDeviceSynchronize());
  CHECK_CUDA(cudaMemcpy(y.data(), p.y, y.size() * sizeof(float),
                        cudaMemcpyDeviceToHost));
  int64_t bad = 0;
  for (size_t i = 0; i < y.size(); ++i)
    bad += std::memcmp(&y[i], &expected[i], 4) != 0;
  for (const void *ptr :
       {static_cast<const void *>(p.a), static_cast<const void *>(p.aScale),
        static_cast<const void *>(p.b), static_cast<const void *>(p.bScale),
        static_cast<const void *>(p.bias),
        static_cast<const void *>(p.residual), static_cast<const void *>(p.y)})
    if (ptr)
      CHECK_CUDA(cudaFree(const_cast<void *>(ptr)));
  return bad;
}

/// Average milliseconds of `run` over enough iterations.
template <class F> double timeMs(F run) {
  cudaEvent_t start, stop;
  CHECK_CUDA(cudaEventCreate(&start));
  CHECK_CUDA(cudaEventCreate(&stop));
  for (int i = 0; i < 3; ++i)
    run();
  CHECK_CUDA(cudaDeviceSynchronize());
  int iters = 10;
  float ms = 0;
  for (;;) {
    CHECK_CUDA(cudaEventRecord(start));
    for (int i = 0; i < iters; ++i)
      run();
    CHECK_CUDA(cudaEventRecord(stop));
    CHECK_CUDA(cudaEventSynchronize(stop));
    CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
    if (ms > 50 || iters >= 1000)
      break;
    iters *= 4;
  }
  CHECK_CUDA(cudaEventDestroy(start));
  CHECK_CUDA(cudaEventDestroy(stop));
  return ms / iters;
}

/// cuBLASLt C[m, n] = A[m, k] B[n, k]^T (row-major; column-major TN for
/// cuBLASLt) in BF16 (fp32 accumulate) or INT8 (int32 accumulate).
double cublasLtMs(cublasLtHandle_t lt, bool int8, int64_t m, int64_t n,
                  int64_t k, void *workspace, size_t workspaceBytes) {
  size_t inBytes = int8 ? 1 : 2, outBytes = int8 ? 4 : 2;
  void *a, *b, *c;
  CHECK_CUDA(cudaMalloc(&a, m * k * inBytes));
  CHECK_CUDA(cudaMalloc(&b, n * k * inBytes));
  CHECK_CUDA(cudaMalloc(&c, m * n * outBytes));
  CHECK_CUDA(cudaMemset(a, 1, m * k * inBytes));
  CHECK_CUDA(cudaMemset(b, 1, n * k * inBytes));
  cudaDataType_t in = int8 ? CUDA_R_8I : CUDA_R_16BF,
                 out = int8 ? CUDA_R_32I : CUDA_R_16BF,
                 scale = int8 ? CUDA_R_32I : CUDA_R_32F;
  cublasLtMatmulDesc_t desc;
  CHECK_LT(cublasLtMatmulDescCreate(
      &desc, int8 ? CUBLAS_COMPUTE_32I : CUBLAS_COMPUTE_32F, scale));
  cublasOperation_t t = CUBLAS_OP_T, nt = CUBLAS_OP_N;
  CHECK_LT(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &t,
                                          sizeof(t)));
  CHECK_LT(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB,
                                          &nt, sizeof(nt)));
  cublasLtMatrixLayout_t la, lb, lc;
  // Column-major: "A" is the weights (k x n, transposed), "B" the
  // activations (k x m), C is n x m.
  CHECK_LT(cublasLtMatrixLayoutCreate(&la, in, k, n, k));
  CHECK_LT(cublasLtMatrixLayoutCreate(&lb, in, k, m, k));
  CHECK_LT(cublasLtMatrixLayoutCreate(&lc, out, n, m, n));
  cublasLtMatmulPreference_t pref;
  CHECK_LT(cublasLtMatmulPreferenceCreate(&pref));
  CHECK_LT(cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspaceBytes,
      sizeof(workspaceBytes)));
  cublasLtMatmulHeuristicResult_t heuristic;
  int found = 0;
  CHECK_LT(cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lb, lc, lc, pref, 1,
                                          &heuristic, &found));
  double ms = -1;
  if (found) {
    int32_t ia = 1, ib = 0;
    float fa = 1, fb = 0;
    const void *alpha =
        int8 ? static_cast<const void *>(&ia) : static_cast<const void *>(&fa);
    const void *beta =
        int8 ? static_cast<const void *>(&ib) : static_cast<const void *>(&fb);
    ms = timeMs([&] {
      CHECK_LT(cublasLtMatmul(lt, desc, alpha, b, la, a, lb, beta, c, lc, c, lc,
                              &heuristic.algo, workspace, workspaceBytes,
                              nullptr));
    });
  }
  cublasLtMatmulPreferenceDestroy(pref);
  cublasLtMatrixLayoutDestroy(la);
  cublasLtMatrixLayoutDestroy(lb);
  cublasLtMatrixLayoutDestroy(lc);
  cublasLtMatmulDescDestroy(desc);
  CHECK_CUDA(cudaFree(a));
  CHECK_CUDA(cudaFree(b));
  CHECK_CUDA(cudaFree(c));
  return ms;
}

/// The W4A4 kernel on random codes of shape m x n x k (per-channel scales).
double w4a4Ms(cuda::GemmTarget target, int64_t m, int64_t n, int64_t k) {
  int64_t kPadded = (k + 63) / 64 * 64, nPadded = (n + 63) / 64 * 64;
  std::vector<uint8_t> a(m * kPadded / 2), b(nPadded / 8 * kPadded / 64 * 256);
  std::uniform_int_distribution<int> byte(0, 255);
  for (uint8_t &v : a)
    v = static_cast<uint8_t>(byte(rng));
  for (uint8_t &v : b)
    v = static_cast<uint8_t>(byte(rng));
  std::vector<float> as(m, 0.01f), bs(nPadded, 0.01f), y(m * n);
  cuda::GemmParams p;
  p.m = static_cast<int>(m);
  p.n = static_cast<int>(n);
  p.kPadded = static_cast<int>(kPadded);
  p.groupSteps = static_cast<int>(kPadded / 64);
  p.groups = 1;
  p.nPadded = static_cast<int>(nPadded);
  p.a = upload(a);
  p.aScale = upload(as);
  p.b = upload(b);
  p.bScale = upload(bs);
  p.y = upload(y);
  double ms = timeMs([&] { CHECK_CUDA(launch(target, p)); });
  for (const void *ptr :
       {static_cast<const void *>(p.a), static_cast<const void *>(p.aScale),
        static_cast<const void *>(p.b), static_cast<const void *>(p.bScale),
        static_cast<const void *>(p.y)})
    CHECK_CUDA(cudaFree(const_cast<void *>(ptr)));
  return ms;
}

} // namespace

int main(int argc, char **argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT.json\n", argv[0]);
    return 1;
  }
  cudaDeviceProp prop;
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  int cc = prop.major * 10 + prop.minor;
  std::printf("device: %s (sm_%d)\n", prop.name, cc);
  // sm_80-89: the s4 kernel natively, the s8 one too (it runs anywhere from
  // sm_80); sm_90 and later: the s8 kernel (an s4 MMA is a software helper
  // there; checked for correctness, not benchmarked).
  std::vector<cuda::GemmTarget> targets = {cuda::GemmTarget::Sm80S4,
                                           cuda::GemmTarget::Sm90S8};
  cuda::GemmTarget fast =
      cc >= 90 ? cuda::GemmTarget::Sm90S8 : cuda::GemmTarget::Sm80S4;

  // The emulated tests' cases (GemmCases.h), then larger ones.
  std::vector<Case> cases(std::begin(cuda::test::kGemmCases),
                          std::end(cuda::test::kGemmCases));
  for (Case c : {Case{513, 768, 256, 4, 0, true, true},
                 Case{1024, 256, 768, 4, 0, false, true},
                 Case{300, 4096, 4096, 4, 128, false, false}})
    cases.push_back(c);
  std::string json = "{\n  \"device\": \"" + std::string(prop.name) +
                     "\",\n  \"sm\": " + std::to_string(cc) +
                     ",\n  \"correctness\": [\n";
  int64_t totalBad = 0;
  bool first = true;
  for (cuda::GemmTarget t : targets)
    for (const Case &c : cases) {
      int64_t bad = checkCase(t, c);
      totalBad += bad;
      std::printf("check %s m=%lld n=%lld k=%lld group=%lld: %lld of %lld "
                  "outputs differ from the CPU runtime\n",
                  cuda::gemmTargetName(t), static_cast<long long>(c.m),
                  static_cast<long long>(c.n), static_cast<long long>(c.k),
                  static_cast<long long>(c.group), static_cast<long long>(bad),
                  static_cast<long long>(c.m * c.n));
      json += std::string(first ? "" : ",\n") + "    {\"target\": \"" +
              cuda::gemmTargetName(t) + "\", \"m\": " + std::to_string(c.m) +
              ", \"n\": " + std::to_string(c.n) +
              ", \"k\": " + std::to_string(c.k) +
              ", \"group\": " + std::to_string(c.group) +
              ", \"mismatches\": " + std::to_string(bad) + "}";
      first = false;
    }
  json += "\n  ],\n  \"gemm\": [\n";

  cublasLtHandle_t lt;
  CHECK_LT(cublasLtCreate(&lt));
  size_t workspaceBytes = 64 << 20;
  void *workspace;
  CHECK_CUDA(cudaMalloc(&workspace, workspaceBytes));
  struct Shape {
    const char *name;
    int64_t n, k;
  };
  const Shape shapes[] = {
      {"bundled qkv", 768, 256},      {"bundled w2", 256, 768},
      {"llama7b qkv/o", 4096, 4096},  {"llama7b w1/w3", 11008, 4096},
      {"llama7b w2", 4096, 11008},    {"llama8b kv", 1024, 4096},
      {"llama8b w1/w3", 14336, 4096}, {"llama8b w2", 4096, 14336},
  };
  first = true;
  std::printf("%-16s %6s %6s %6s %12s %12s %12s %9s %9s\n", "shape", "M", "N",
              "K", "w4a4 TOPS", "bf16 TFLOPS", "int8 TOPS", "vs bf16",
              "vs int8");
  for (const Shape &s : shapes)
    for (int64_t m : {16, 256, 2048, 8192}) {
      double ops = 2.0 * m * s.n * s.k;
      double w = w4a4Ms(fast, m, s.n, s.k);
      double bf = cublasLtMs(lt, false, m, s.n, s.k, workspace, workspaceBytes);
      double i8 = cublasLtMs(lt, true, m, s.n, s.k, workspace, workspaceBytes);
      auto tops = [&](double ms) { return ms > 0 ? ops / ms / 1e9 : 0.0; };
      std::printf(
          "%-16s %6lld %6lld %6lld %12.1f %12.1f %12.1f %8.2fx %8.2fx\n",
          s.name, static_cast<long long>(m), static_cast<long long>(s.n),
          static_cast<long long>(s.k), tops(w), tops(bf), tops(i8),
          bf > 0 ? bf / w : 0.0, i8 > 0 ? i8 / w : 0.0);
      json += std::string(first ? "" : ",\n") + "    {\"shape\": \"" + s.name +
              "\", \"m\": " + std::to_string(m) +
              ", \"n\": " + std::to_string(s.n) +
              ", \"k\": " + std::to_string(s.k) + ", \"target\": \"" +
              cuda::gemmTargetName(fast) +
              "\", \"w4a4_tops\": " + std::to_string(tops(w)) +
              ", \"cublaslt_bf16_tflops\": " + std::to_string(tops(bf)) +
              ", \"cublaslt_int8_tops\": " + std::to_string(tops(i8)) + "}";
      first = false;
    }
  json += "\n  ]\n}\n";
  CHECK_CUDA(cudaFree(workspace));
  cublasLtDestroy(lt);
  FILE *f = std::fopen(argv[1], "w");
  if (!f || std::fputs(json.c_str(), f) < 0 || std::fclose(f) != 0) {
    std::fprintf(stderr, "cannot write %s\n", argv[1]);
    return 1;
  }
  std::printf("%s: %lld mismatching outputs in all checks\n",
              totalBad ? "FAIL" : "PASS", static_cast<long long>(totalBad));
  return totalBad ? 1 : 0;
}
