#!/usr/bin/env bash
# Builds the libFuzzer target over the ONNX importer (clang, ASan) in
# build-fuzz/ and runs it for a bounded time (default 600 s):
#   scripts/fuzz-importer.sh [SECONDS] [RUNS]
# Seeds: the importer's test inputs and test/fuzz/seeds (one tiny model per
# exporter style). With RUNS the run stops after that many executions. Findings land in build-fuzz/findings/;
# a crashing input belongs in test/fuzz/regressions/ (the lit suite runs
# w4a4-import on each and expects a clean exit or a clean error).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN=${1:-600}
RUNS=${2:--1}

scripts/fuzz-configure.sh
ninja -C build-fuzz w4a4-import-fuzzer

mkdir -p build-fuzz/corpus build-fuzz/findings
cp -n test/conversion/onnx-to-w4a4/Inputs/*.onnx build-fuzz/corpus/ 2>/dev/null || true
cp -n test/fuzz/regressions/* build-fuzz/corpus/ 2>/dev/null || true
# One tiny model per exporter style (models/exporters/make_fuzz_seeds.py).
cp -n test/fuzz/seeds/*.onnx build-fuzz/corpus/ 2>/dev/null || true
ASAN_OPTIONS=detect_leaks=1 build-fuzz/test/fuzz/w4a4-import-fuzzer \
  -max_total_time="$SECONDS_TO_RUN" -runs="$RUNS" -max_len=65536 -timeout=20 -rss_limit_mb=4096 \
  -print_final_stats=1 -artifact_prefix=build-fuzz/findings/ \
  build-fuzz/corpus 2>&1 | tee build-fuzz/fuzz.log | grep -E "^#[0-9]+ +(pulse|DONE)|stat::|ERROR|SUMMARY" || true
echo "findings: $(ls build-fuzz/findings | wc -l) (in build-fuzz/findings/)"
