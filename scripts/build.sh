#!/usr/bin/env bash
# Configures (once) and builds w4a4c into ${W4A4_BUILD_DIR:-build} with Ninja,
# ccache when present. Extra arguments are passed to `ninja` as targets.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${W4A4_BUILD_DIR:-build}
MLIR_DIR=${MLIR_DIR:-/usr/lib/llvm-22/lib/cmake/mlir}

if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake -G Ninja -S . -B "$BUILD_DIR" \
    -DCMAKE_BUILD_TYPE=${CMAKE_BUILD_TYPE:-Release} \
    -DMLIR_DIR="$MLIR_DIR" \
    -DLLVM_EXTERNAL_LIT=/usr/lib/llvm-22/bin/lit
fi
ninja -C "$BUILD_DIR" "$@"
