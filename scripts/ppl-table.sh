#!/usr/bin/env bash
# Compiles each model under the standard W4A4 configurations and prints the
# perplexity table (executed by the runtime: fp32 path and integer W4A4 GEMM).
#   scripts/ppl-table.sh [--text FILE] [--max-tokens N] [--out TABLE.md] MODEL_DIR...
# Default text: the validation split when models/data/corpus exists, else the
# committed sample test/data/validation-sample.txt. ctx 256, stride 128.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${W4A4_BUILD_DIR:-build}
TEXT=models/data/corpus/validation.txt
[ -f "$TEXT" ] || TEXT=test/data/validation-sample.txt
MAX_TOKENS=65536
OUT=""
MODELS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --text) TEXT=$2; shift 2 ;;
    --max-tokens) MAX_TOKENS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) MODELS+=("$1"); shift ;;
  esac
done
[ ${#MODELS[@]} -gt 0 ] || MODELS=(models/zoo/dr_sink models/zoo/baseline)

# name | passes after import (W4A4 rows quantize weights and activations to 4 bits)
CONFIGS=(
  "FP32|"
  "W4A4 RTN|--w4a4-fold-registers --w4a4-quantize-weights=bits=4 --w4a4-quantize-activations=bits=4"
  "W4A4 +QuaRot readers|--w4a4-fold-registers --w4a4-fold-norms --w4a4-rotate=mode=readers --w4a4-quantize-weights=bits=4 --w4a4-quantize-activations=bits=4"
  "W4A4 +QuaRot full|--w4a4-fold-registers --w4a4-fold-norms --w4a4-rotate=mode=full --w4a4-quantize-weights=bits=4 --w4a4-quantize-activations=bits=4"
)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
{
  printf "| model |"
  for c in "${CONFIGS[@]}"; do printf " %s |" "${c%%|*}"; done
  printf "\n| --- |"
  for c in "${CONFIGS[@]}"; do printf " ---: |"; done
  printf "\n"
} > "$TMP/table.md"
tokens=0
for m in "${MODELS[@]}"; do
  name=$(basename "$m")
  echo "== $name" >&2
  "$B/bin/w4a4-import" "$m/model.onnx" --emit-bytecode -o "$TMP/m.mlirbc"
  row="| $name |"
  for c in "${CONFIGS[@]}"; do
    label=${c%%|*}
    passes=${c#*|}
    # shellcheck disable=SC2086
    "$B/bin/w4a4-opt" "$TMP/m.mlirbc" $passes --emit-bytecode -o "$TMP/q.mlirbc"
    "$B/bin/w4a4-run" "$TMP/q.mlirbc" --text "$TEXT" --tokenizer models/tokenizer/w4a4c_bpe4096.model \
      --ctx 256 --stride 128 --max-tokens "$MAX_TOKENS" --json "$TMP/r.json" > /dev/null
    ppl=$(/usr/bin/python3 -c "import json; print('%.2f' % json.load(open('$TMP/r.json'))['ppl'])")
    tokens=$(/usr/bin/python3 -c "import json; print(json.load(open('$TMP/r.json'))['tokens'])")
    echo "   $label: PPL $ppl" >&2
    row="$row $ppl |"
  done
  echo "$row" >> "$TMP/table.md"
done
echo >> "$TMP/table.md"
echo "Perplexity on $tokens tokens of $TEXT (ctx 256, stride 128), executed by w4a4-run." >> "$TMP/table.md"
cat "$TMP/table.md"
[ -z "$OUT" ] || cp "$TMP/table.md" "$OUT"
