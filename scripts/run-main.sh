#!/usr/bin/env bash
# The main job: set up a fresh machine, build w4a4-opt, and round-trip the
# bundled example model IR (models/examples/tiny_decoder.mlir) through it:
# text -> text, text -> bytecode -> text, then the w4a4-simplify cleanup.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
scripts/build.sh w4a4-opt

BUILD_DIR=${W4A4_BUILD_DIR:-build}
OPT="$BUILD_DIR/bin/w4a4-opt"
IN=${1:-models/examples/tiny_decoder.mlir}
OUT="$BUILD_DIR/main"
mkdir -p "$OUT"

echo "== [1/3] round trip (text): $IN"
"$OPT" "$IN" -o "$OUT/roundtrip1.mlir"
"$OPT" "$OUT/roundtrip1.mlir" -o "$OUT/roundtrip2.mlir"
cmp "$OUT/roundtrip1.mlir" "$OUT/roundtrip2.mlir"
echo "   printed IR is a fixed point of parse+print"

echo "== [2/3] round trip (bytecode)"
"$OPT" "$IN" --emit-bytecode -o "$OUT/model.mlirbc"
"$OPT" "$OUT/model.mlirbc" -o "$OUT/roundtrip3.mlir"
cmp "$OUT/roundtrip1.mlir" "$OUT/roundtrip3.mlir"
echo "   bytecode $(stat -c %s "$OUT/model.mlirbc") bytes, text $(stat -c %s "$OUT/roundtrip1.mlir") bytes; identical after reload"

echo "== [3/3] w4a4-simplify"
"$OPT" "$IN" --print-op-stats -o /dev/null 2> "$OUT/before.stats"
"$OPT" "$IN" --w4a4-simplify -o "$OUT/simplified.mlir" --print-op-stats 2> "$OUT/after.stats"
# Join the two op-count tables by op name (an op kind may vanish).
printf "   %-18s %8s %8s\n" op before after
awk -F',' 'NF == 2 { gsub(/ /, "", $1); n[$1] = 1; c[FILENAME, $1] = $2 + 0 }
           END { for (op in n) printf "   %-18s %8d %8d\n", op, c[ARGV[1], op], c[ARGV[2], op] }' \
  "$OUT/before.stats" "$OUT/after.stats" | sort
echo "   simplified IR: $OUT/simplified.mlir"
