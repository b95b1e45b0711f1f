#!/usr/bin/env bash
# On a machine with an NVIDIA GPU (nvcc and cuBLAS installed): builds the
# CUDA W4A4 kernels for the GPU it finds, checks them on the device (every
# output bit-identical to the CPU runtime's, which the SIMT emulator's tests
# also match), then benchmarks the GEMM against cuBLASLt BF16 and INT8 in
# the same run. Writes gpu-check.json and gpu-check.log; under 8 minutes.
#   scripts/gpu-check.sh [OUT_DIR]      (default: $OUT, else build-gpu/)
# Needs none of MLIR: only nvcc, a host C++ compiler and the runtime's
# sources.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-${OUT:-build-gpu}}
mkdir -p "$OUT_DIR"
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
if [ ! -x "$NVCC" ]; then
  echo "gpu-check: no nvcc (set NVCC or install the CUDA toolkit)" >&2
  exit 1
fi
nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv \
  | tee "$OUT_DIR/gpu.txt" || { echo "gpu-check: no GPU visible (nvidia-smi failed)" >&2; exit 1; }
ARCH=${GPU_ARCH:-native}
echo "building for -arch=$ARCH with $("$NVCC" --version | tail -1)"
time timeout 300 "$NVCC" -O3 -std=c++17 -arch="$ARCH" \
  -Iruntime/include -Iruntime/cuda/include \
  -Xcompiler -fopenmp,-ffp-contract=off -Xptxas -v \
  test/cuda/gpu/GemmCheck.cu runtime/cuda/lib/GemmSm80.cu runtime/cuda/lib/GemmSm90.cu runtime/cuda/lib/Blocks.cu \
  runtime/lib/IntGemm.cpp runtime/cuda/lib/Pack.cpp runtime/lib/Hadamard.cpp \
  -lcublasLt -lgomp -o "$OUT_DIR/gemm-check" 2>"$OUT_DIR/build.log" \
  || { cat "$OUT_DIR/build.log"; exit 1; }
grep -E "Compiling entry|Used" "$OUT_DIR/build.log" || true
time timeout 360 "$OUT_DIR/gemm-check" "$OUT_DIR/gpu-check.json" | tee "$OUT_DIR/gpu-check.log"
