#!/usr/bin/env bash
# Regenerates the TableGen dialect and pass docs and copies them to
# docs/generated/ (the test suite checks that the copies are current).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh mlir-doc
cp "${W4A4_BUILD_DIR:-build}"/docs/W4A4/W4A4Dialect.md docs/generated/W4A4Dialect.md
cp "${W4A4_BUILD_DIR:-build}"/docs/W4A4/W4A4KernelDialect.md docs/generated/W4A4KernelDialect.md
cp "${W4A4_BUILD_DIR:-build}"/docs/W4A4/W4A4Passes.md docs/generated/W4A4Passes.md
cp "${W4A4_BUILD_DIR:-build}"/docs/W4A4/W4A4ConversionPasses.md docs/generated/W4A4ConversionPasses.md
