#!/usr/bin/env bash
# Perplexity-evaluation throughput, measured in one run on the same tokens:
# the w4a4 fp32 path, the w4a4 W4A4 integer path (fold-registers + RTN
# weights + per-token 4-bit activations), and onnxruntime-node fp32 on the
# same ONNX file. w4a4-run computes the logits of the scored positions only;
# the "all positions" rows do onnxruntime's work (every position's logits).
# Prints tokens/s, PPL and the ratios per model. Not a test.
#   scripts/bench-ppl.sh [MODEL_DIR...] [MAX_TOKENS]
# Default: the three 7M models (baseline, dr_sink, qat_kurtosis), 8192 tokens.
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS=()
MAX_TOKENS=8192
for a in "$@"; do
  if [[ "$a" =~ ^[0-9]+$ ]]; then MAX_TOKENS=$a
  elif [ -f "$a/model.onnx" ]; then MODELS+=("$a")
  else echo "bench-ppl.sh: $a: not a model directory (no model.onnx) nor a token count" >&2; exit 2
  fi
done
[ ${#MODELS[@]} -gt 0 ] || MODELS=(models/zoo/baseline models/zoo/dr_sink models/zoo/qat_kurtosis)
CTX=${CTX:-256}
STRIDE=${STRIDE:-128}
THREADS=${THREADS:-2}
B=${W4A4_BUILD_DIR:-build}
scripts/setup.sh >/dev/null
scripts/build.sh w4a4-opt w4a4-import w4a4-run >/dev/null

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
TEXT=models/data/corpus/validation.txt
[ -f "$TEXT" ] || TEXT=test/data/validation-sample.txt
/usr/bin/python3 - "$TEXT" "$MAX_TOKENS" > "$TMP/ids.txt" <<'PY'
import sys
sys.path.insert(0, "models")
from zoo.w4a4zoo.data import encode_text, load_tokenizer
sp = load_tokenizer("models/tokenizer/w4a4c_bpe4096.model")
ids = encode_text(sp, open(sys.argv[1], encoding="utf-8").read())[: int(sys.argv[2])]
print(" ".join(map(str, ids)))
PY
run() { "$B/bin/w4a4-run" "$1" --tokens "$TMP/ids.txt" --ctx "$CTX" --stride "$STRIDE" \
          --num-threads "$THREADS" --json "$2" "${@:3}" > /dev/null; }
for MODEL_DIR in "${MODELS[@]}"; do
  rm -f "$TMP"/*.json
  "$B/bin/w4a4-import" "$MODEL_DIR/model.onnx" --emit-bytecode -o "$TMP/fp32.mlirbc"
  "$B/bin/w4a4-opt" "$TMP/fp32.mlirbc" --w4a4-fold-registers --w4a4-quantize-weights \
    --w4a4-quantize-activations --emit-bytecode -o "$TMP/w4a4.mlirbc"
  run "$TMP/fp32.mlirbc" "$TMP/fp32.json"
  run "$TMP/w4a4.mlirbc" "$TMP/w4a4.json"
  # The same runs computing the logits of every window position (the work
  # onnxruntime does: the ONNX graph returns them all), and W4A4 with the
  # VNNI GEMM where the CPU has AMX (the default there).
  run "$TMP/fp32.mlirbc" "$TMP/fp32-all.json" --all-positions
  run "$TMP/w4a4.mlirbc" "$TMP/w4a4-all.json" --all-positions
  if grep -q AMX "$TMP/w4a4.json"; then
    run "$TMP/w4a4.mlirbc" "$TMP/w4a4-vnni.json" --int-gemm=vnni
  fi
  # A busy machine: one core taken by a competing process. Parking OpenMP
  # workers (the tools' default, OMP_WAIT_POLICY=passive) against 1 thread
  # and against libgomp's spinning default (OMP_WAIT_POLICY=active).
  if [ "${BUSY:-1}" = 1 ]; then
    ( while :; do :; done ) &
    BUSY_PID=$!
    run "$TMP/w4a4.mlirbc" "$TMP/busy-2.json"
    THREADS=1 run "$TMP/w4a4.mlirbc" "$TMP/busy-1.json"
    OMP_WAIT_POLICY=active run "$TMP/w4a4.mlirbc" "$TMP/busy-2-active.json"
    kill "$BUSY_PID"; wait "$BUSY_PID" 2>/dev/null || true
  fi
  node models/reference/ort/ort_ppl.js "$MODEL_DIR/model.onnx" "$TMP/ids.txt" "$CTX" "$STRIDE" 1 \
    "$THREADS" > "$TMP/ort.json"

  /usr/bin/python3 - "$MODEL_DIR" "$TMP" "$CTX" "$STRIDE" "$THREADS" <<'PY'
import json, os, sys
model, tmp, ctx, stride, threads = sys.argv[1:]
keys = [k for k in ("ort", "fp32", "w4a4", "fp32-all", "w4a4-all", "w4a4-vnni", "busy-2", "busy-1",
                    "busy-2-active")
        if os.path.exists("%s/%s.json" % (tmp, k))]
r = {k: json.load(open("%s/%s.json" % (tmp, k))) for k in keys}
print("model %s, %d tokens, ctx %s, stride %s, %s threads; %s" % (
    model, r["fp32"]["tokens"], ctx, stride, threads, r["w4a4"].get("device", "")))
print("%-44s %10s %10s %8s" % ("path", "tokens/s", "PPL", "vs ORT"))
names = {"ort": "onnxruntime-node fp32", "fp32": "w4a4 fp32",
         "w4a4": "w4a4 W4A4 (integer GEMM)",
         "fp32-all": "w4a4 fp32, logits at all positions",
         "w4a4-all": "w4a4 W4A4, logits at all positions",
         "w4a4-vnni": "w4a4 W4A4, VNNI GEMM instead of AMX",
         "busy-2": "W4A4, one core busy: %s threads (parking)" % threads,
         "busy-1": "W4A4, one core busy: 1 thread",
         "busy-2-active": "W4A4, one core busy: %s threads spinning" % threads}
for k in keys:
    print("%-44s %10.1f %10.3f %7.2fx" % (names[k], r[k]["tokens_per_s"], r[k]["ppl"],
                                         r[k]["tokens_per_s"] / r["ort"]["tokens_per_s"]))
print()
PY
done
