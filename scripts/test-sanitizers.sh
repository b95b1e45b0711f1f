#!/usr/bin/env bash
# Builds the tools and unit tests with clang-14 under AddressSanitizer and
# UndefinedBehaviorSanitizer (Debian's compiler-rt) in build-san/, then runs
# the lit suite and the GoogleTest units on those binaries: any sanitizer
# report (a leak included) fails the run. Part of scripts/test.sh.
#   scripts/test-sanitizers.sh
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh clang-14 libclang-rt-14-dev libomp-14-dev >/dev/null
B=${W4A4_SAN_BUILD_DIR:-build-san}
if [ ! -f "$B/build.ninja" ]; then
  CC=clang-14 CXX=clang++-14 cmake -G Ninja -S . -B "$B" \
    -DCMAKE_BUILD_TYPE=Release \
    -DMLIR_DIR=${MLIR_DIR:-/usr/lib/llvm-22/lib/cmake/mlir} \
    -DLLVM_EXTERNAL_LIT=/usr/lib/llvm-22/bin/lit \
    -DCMAKE_C_FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
    -DCMAKE_CXX_FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
    -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
    -DCMAKE_CXX_FLAGS_RELEASE="-O1 -g1 -DNDEBUG" >/dev/null
fi
start=$(date +%s)
ninja -C "$B" w4a4-opt w4a4-import w4a4-run w4a4-compile run-artifact w4a4-unittests w4a4-hadamard-dump \
  w4a4-cuda-emulated-tests w4a4-cuda-model-check
echo "sanitizer build: $(( $(date +%s) - start )) s"
# allocator_may_return_null: an allocation sized by a malformed file fails
# as it does without ASan (the tools report it) instead of ASan aborting.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
start=$(date +%s)
"$B/test/w4a4-unittests" --gtest_brief=1
# The CUDA kernels on the SIMT emulator (fibers: ASan's fiber annotations).
"$B/test/w4a4-cuda-emulated-tests" --gtest_brief=1
/usr/lib/llvm-22/bin/lit -sv "$B/test"
echo "sanitizer tests: $(( $(date +%s) - start )) s"
