#!/usr/bin/env bash
# Builds the libFuzzer target over IR input (test/fuzz/IRFuzzer.cpp: parse,
# verify, execute, quantization passes, execute; clang, ASan) in build-fuzz/
# and runs it for a bounded time (default 600 s):
#   scripts/fuzz-ir.sh [SECONDS] [FORKS]
# RUNS=N stops after N executions (libFuzzer's -runs, counted over all jobs).
# IGNORE_CRASHES=1 keeps fuzzing past a crash (each is saved to
# build-fuzz/ir-findings/ for triage).
# Seeds: test/fuzz/ir-seeds (tiny models as bytecode, hand-written hostile
# IR) and test/fuzz/ir-regressions. Findings land in build-fuzz/ir-findings/;
# a crashing input belongs in test/fuzz/ir-regressions/ (the lit suite runs
# w4a4-run and w4a4-opt on each and expects a clean exit or a clean error).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN=${1:-600}
FORKS=${2:-2}

scripts/fuzz-configure.sh
ninja -C build-fuzz w4a4-ir-fuzzer

mkdir -p build-fuzz/ir-corpus build-fuzz/ir-findings
cp -n test/fuzz/ir-seeds/* build-fuzz/ir-corpus/ 2>/dev/null || true
# The regressions that end a job (the reader loops or is slow: the harness's
# parse watchdog; the reader crashes or raises a fatal error: the harness
# ends the job as the tools end the process, IRFuzzer.cpp) stay out of the
# corpus; the lit suite replays them.
JOB_ENDING="cyclic value-range huge-count region-count block-args-count"
for f in test/fuzz/ir-regressions/*; do
  skip=0
  for p in $JOB_ENDING; do case "$f" in *"$p"*) skip=1 ;; esac; done
  [ "$skip" = 1 ] || cp -n "$f" build-fuzz/ir-corpus/ 2>/dev/null || true
done
for p in $JOB_ENDING; do rm -f build-fuzz/ir-corpus/*"$p"*; done
# allocator_may_return_null + a malloc limit above ASan's own: an allocation
# sized by a count read from the file fails (LLVM's bad-alloc handler, as in
# the tools) instead of being reported as the fuzzer's out-of-memory.
# A job that ends early (below) writes its reason to this file; libFuzzer's
# count of executions leaves such jobs out.
JOB_ENDS=build-fuzz/ir-job-ends.log
: >"$JOB_ENDS"
W4A4_FUZZ_JOB_END_LOG=$PWD/$JOB_ENDS \
ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 build-fuzz/test/fuzz/w4a4-ir-fuzzer \
  -fork="$FORKS" -ignore_crashes="${IGNORE_CRASHES:-0}" -max_total_time="$SECONDS_TO_RUN" ${RUNS:+-runs=$RUNS} -max_len=65536 -timeout=20 \
  -rss_limit_mb=3000 -malloc_limit_mb=1000000 -artifact_prefix=build-fuzz/ir-findings/ \
  build-fuzz/ir-corpus 2>&1 | tee build-fuzz/ir-fuzz.log | grep -E "^#[0-9]+:|DONE|ERROR|SUMMARY" | tail -5 || true
echo "findings: $(ls build-fuzz/ir-findings | wc -l) (in build-fuzz/ir-findings/)"
echo "jobs ended by the parse watchdog (MLIR bytecode reader loops): $(grep -c 'parse did not finish' "$JOB_ENDS" || true)"
echo "jobs ended by a bytecode reader crash (the tools' error and exit): $(grep -c "reader crashed on this input" "$JOB_ENDS" || true)"
echo "jobs ended by a fatal error in the reader (the tools' error and exit): $(grep -c "fatal error in MLIR's reader" "$JOB_ENDS" || true)"
echo "(executions of jobs that ended early are not in libFuzzer's count)"
