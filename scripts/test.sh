#!/usr/bin/env bash
# Sets up a fresh machine, builds everything and runs every test (lit +
# FileCheck, GoogleTest, generated-docs check, cross-checks) through CTest,
# then the lit and GoogleTest suites once more under AddressSanitizer and
# UndefinedBehaviorSanitizer (scripts/test-sanitizers.sh; W4A4_SANITIZERS=0
# skips that part).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
start=$(date +%s)
scripts/build.sh w4a4-opt w4a4-import w4a4-run w4a4-compile run-artifact w4a4-unittests \
  w4a4-cuda-emulated-tests w4a4-cuda-model-check \
  w4a4-hadamard-dump mlir-doc
echo "build: $(( $(date +%s) - start )) s"
ctest --test-dir "${W4A4_BUILD_DIR:-build}" --output-on-failure
if [ "${W4A4_SANITIZERS:-1}" != 0 ]; then
  scripts/test-sanitizers.sh
fi
