#!/usr/bin/env bash
# Installs clang-14 with its sanitizer and OpenMP runtimes and configures
# build-fuzz/ (libFuzzer + ASan) once; used by scripts/fuzz-importer.sh and
# scripts/fuzz-ir.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh clang-14 libclang-rt-14-dev libomp-14-dev >/dev/null
if [ ! -f build-fuzz/build.ninja ]; then
  CC=clang-14 CXX=clang++-14 cmake -G Ninja -S . -B build-fuzz \
    -DCMAKE_BUILD_TYPE=Release \
    -DMLIR_DIR=${MLIR_DIR:-/usr/lib/llvm-22/lib/cmake/mlir} \
    -DLLVM_EXTERNAL_LIT=/usr/lib/llvm-22/bin/lit \
    -DW4A4_ENABLE_FUZZER=ON \
    -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link,address -g"
fi
