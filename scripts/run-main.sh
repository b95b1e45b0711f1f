#!/usr/bin/env bash
# The main job: set up a fresh machine, build the tools, and run the compiler
# on the bundled default model (models/zoo/dr_sink, the Depth Registers model):
# ONNX import into fully raised w4a4 IR, text and bytecode round trips, the
# w4a4-simplify cleanup (op tables), then the perplexity table of the standard
# W4A4 configurations (W4A4, +SmoothQuant, +QuaRot readers, +QuaRot full, each
# with RTN and GPTQ weights) for it and the baseline, executed by the runtime.
#   scripts/run-main.sh [MODEL_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
scripts/build.sh w4a4-opt w4a4-import w4a4-run

BUILD_DIR=${W4A4_BUILD_DIR:-build}
OPT="$BUILD_DIR/bin/w4a4-opt"
IMPORT="$BUILD_DIR/bin/w4a4-import"
MODEL_DIR=${1:-models/zoo/dr_sink}
OUT="$BUILD_DIR/main"
mkdir -p "$OUT"

op_table() { # before.stats after.stats: op counts side by side
  printf "   %-18s %8s %8s\n" op "$3" "$4"
  awk -F',' 'NF == 2 { gsub(/ /, "", $1); n[$1] = 1; c[FILENAME, $1] = $2 + 0 }
             END { for (op in n) printf "   %-18s %8d %8d\n", op, c[ARGV[1], op], c[ARGV[2], op] }' \
    "$1" "$2" | sort
}

echo "== [1/5] import $MODEL_DIR/model.onnx"
start=$(date +%s.%N)
"$IMPORT" "$MODEL_DIR/model.onnx" --raise=false -o "$OUT/generic.mlir"
"$IMPORT" "$MODEL_DIR/model.onnx" -o "$OUT/model.mlir"
echo "   imported and raised in $(echo "$(date +%s.%N) - $start" | bc) s (both stages, twice)"
"$OPT" "$OUT/generic.mlir" --print-op-stats -o /dev/null 2> "$OUT/generic.stats"
"$OPT" "$OUT/model.mlir" --print-op-stats -o /dev/null 2> "$OUT/model.stats"
op_table "$OUT/generic.stats" "$OUT/model.stats" "stage 1" raised
if grep -q 'w4a4.onnx "' "$OUT/model.mlir"; then
  echo "error: generic ops left in $OUT/model.mlir" >&2
  exit 1
fi

echo "== [2/5] round trip (text)"
"$OPT" "$OUT/model.mlir" -o "$OUT/roundtrip.mlir"
cmp "$OUT/model.mlir" "$OUT/roundtrip.mlir"
echo "   printed IR is a fixed point of parse+print ($(stat -c %s "$OUT/model.mlir") bytes)"

echo "== [3/5] round trip (bytecode)"
"$OPT" "$OUT/model.mlir" --emit-bytecode -o "$OUT/model.mlirbc"
"$OPT" "$OUT/model.mlirbc" -o "$OUT/roundtrip-bc.mlir"
cmp "$OUT/model.mlir" "$OUT/roundtrip-bc.mlir"
echo "   bytecode $(stat -c %s "$OUT/model.mlirbc") bytes; identical after reload"

echo "== [4/5] w4a4-simplify"
"$OPT" "$OUT/model.mlir" --w4a4-simplify -o "$OUT/simplified.mlir" --print-op-stats 2> "$OUT/simplified.stats"
op_table "$OUT/model.stats" "$OUT/simplified.stats" before after
echo "   outputs in $OUT/: model.mlir (raised IR), simplified.mlir, model.mlirbc"

echo "== [5/5] perplexity table (FP32 and W4A4 configurations, runtime-executed)"
scripts/ppl-table.sh "$MODEL_DIR" models/zoo/baseline --out "$OUT/ppl-table.md" --json "$OUT/ppl-table.jsonl"
