#!/usr/bin/env bash
# Compiles each model under the standard W4A4 configurations (FP32; W4A4,
# +SmoothQuant, +QuaRot readers, +QuaRot full, each with RTN and GPTQ
# weights) with w4a4-opt --w4a4-quantize-pipeline, executes them with w4a4-run
# (fp32 path and integer W4A4 GEMM) and prints the perplexity table.
#   scripts/ppl-table.sh [--text FILE] [--calib FILE] [--max-tokens N] [--out TABLE.md]
#                        [--json RESULTS.json] MODEL_DIR...
# Text: the validation split when models/data/corpus exists, else the
# committed sample test/data/validation-sample.txt. Calibration (SmoothQuant
# scales, GPTQ Hessians): 32 windows of 255 tokens of
# test/data/calibration-sample.txt, the start of the calibration split (the
# reference evaluator's calibration windows). ctx 256, stride 128, seed 0.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${W4A4_BUILD_DIR:-build}
TEXT=models/data/corpus/validation.txt
[ -f "$TEXT" ] || TEXT=test/data/validation-sample.txt
CALIB=test/data/calibration-sample.txt
TOKENIZER=models/tokenizer/w4a4c_bpe4096.model
MAX_TOKENS=65536
OUT=""
JSON=""
MODELS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --text) TEXT=$2; shift 2 ;;
    --calib) CALIB=$2; shift 2 ;;
    --max-tokens) MAX_TOKENS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --json) JSON=$2; shift 2 ;;
    -*) echo "ppl-table.sh: unknown option $1" >&2; exit 2 ;;
    *) MODELS+=("$1"); shift ;;
  esac
done
[ ${#MODELS[@]} -gt 0 ] || MODELS=(models/zoo/dr_sink models/zoo/baseline)

# label | w4a4-quantize-pipeline options ("" = FP32, no pipeline)
CONFIGS=(
  "FP32|"
  "W4A4|"
  "+SmoothQuant|smooth=0.5"
  "+QuaRot readers|rotate=readers seed=0"
  "+QuaRot full|rotate=full seed=0"
)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
/usr/bin/python3 models/reference/tokenize_ids.py "$CALIB" "$TMP/calib.ids" --tokenizer "$TOKENIZER" >&2

ppl() { # IR -> PPL (2 decimals); appends a JSON line to $TMP/results.jsonl
  "$B/bin/w4a4-run" "$1" --text "$TEXT" --tokenizer "$TOKENIZER" \
    --ctx 256 --stride 128 --max-tokens "$MAX_TOKENS" --json "$TMP/r.json" > /dev/null
  /usr/bin/python3 - "$TMP/r.json" "$TMP/results.jsonl" "$2" "$3" "$4" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
with open(sys.argv[2], "a") as f:
    f.write(json.dumps({"model": sys.argv[3], "row": sys.argv[4], "weights": sys.argv[5], "ppl": r["ppl"],
                        "mean_nll": r["mean_nll"], "tokens": r["tokens"], "tokens_per_s": r["tokens_per_s"]}) + "\n")
print("%.2f" % r["ppl"])
PY
}

header="| configuration |"
rule="| --- |"
for m in "${MODELS[@]}"; do
  header="$header $(basename "$m") RTN | $(basename "$m") GPTQ |"
  rule="$rule ---: | ---: |"
done
declare -A CELL
for m in "${MODELS[@]}"; do
  name=$(basename "$m")
  echo "== $name" >&2
  "$B/bin/w4a4-import" "$m/model.onnx" --emit-bytecode -o "$TMP/m.mlirbc"
  for c in "${CONFIGS[@]}"; do
    label=${c%%|*}
    opts=${c#*|}
    if [ "$label" = FP32 ]; then
      p=$(ppl "$TMP/m.mlirbc" "$name" FP32 fp32)
      CELL["$name|$label|rtn"]=$p
      CELL["$name|$label|gptq"]=$p
      echo "   $label: PPL $p" >&2
      continue
    fi
    for w in rtn gptq; do
      start=$(date +%s)
      "$B/bin/w4a4-opt" "$TMP/m.mlirbc" --emit-bytecode -o "$TMP/q.mlirbc" \
        --w4a4-quantize-pipeline="$opts weights=$w wbits=4 abits=4 calib=$TMP/calib.ids calib-windows=32 calib-ctx=256 calib-stats=$TMP/stats.w4a4cal"
      p=$(ppl "$TMP/q.mlirbc" "$name" "$label" "$w")
      CELL["$name|$label|$w"]=$p
      echo "   $label, $w weights: PPL $p ($(( $(date +%s) - start )) s)" >&2
    done
  done
done
{
  echo "$header"
  echo "$rule"
  for c in "${CONFIGS[@]}"; do
    label=${c%%|*}
    row="| $label |"
    for m in "${MODELS[@]}"; do
      name=$(basename "$m")
      row="$row ${CELL["$name|$label|rtn"]} | ${CELL["$name|$label|gptq"]} |"
    done
    echo "$row"
  done
  echo
  tokens=$(tail -1 "$TMP/results.jsonl" | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['tokens'])")
  echo "Perplexity on $tokens tokens of $TEXT (ctx 256, stride 128), compiled by w4a4-opt and executed by w4a4-run"
  echo "(integer W4A4 GEMM); W4A4 = 4-bit weights per output row, 4-bit per-token activations at every site;"
  echo "calibration: 32 windows of 255 tokens of $CALIB."
} > "$TMP/table.md"
cat "$TMP/table.md"
[ -z "$OUT" ] || cp "$TMP/table.md" "$OUT"
[ -z "$JSON" ] || cp "$TMP/results.jsonl" "$JSON"
