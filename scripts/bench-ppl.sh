#!/usr/bin/env bash
# Perplexity-evaluation throughput, measured in one run on the same tokens:
# the w4a4 fp32 path, the w4a4 W4A4 integer path (fold-registers + RTN
# weights + per-token 4-bit activations), both through the interpreter and
# compiled (w4a4-compile, libmodel.so), and onnxruntime-node fp32 on the
# same ONNX file. w4a4-run computes the logits of the scored positions only;
# the "all positions" rows do onnxruntime's work (every position's logits).
# Then decoding: greedy generation through a KV cache at contexts 128 and
# 512 (a prompt of CTX - 64 tokens, then 64 one-token steps; tokens/s of the
# steps), onnxruntime-node on a decoder-with-past export of the same model
# (models/exporters/export_past.py) against the compiled artifacts' cache
# and the interpreter on the imported past export. Peak RSS of every run
# (GNU time). Prints tokens/s, PPL, ratios and MB per model. Not a test.
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
scripts/build.sh w4a4-opt w4a4-import w4a4-run w4a4-compile >/dev/null
command -v /usr/bin/time >/dev/null || { echo "bench-ppl.sh: needs GNU time (apt-get install time)" >&2; exit 2; }

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
# Every run's peak RSS (KB) goes next to its JSON (NAME.json -> NAME.rss).
timed() { local json=$1; shift; /usr/bin/time -f %M -o "${json%.json}.rss" "$@"; }
run() { timed "$2" "$B/bin/w4a4-run" "$1" --tokens "$TMP/ids.txt" --ctx "$CTX" --stride "$STRIDE" \
          --num-threads "$THREADS" --json "$2" "${@:3}" > /dev/null; }
for MODEL_DIR in "${MODELS[@]}"; do
  rm -f "$TMP"/*.json
  "$B/bin/w4a4-import" "$MODEL_DIR/model.onnx" --emit-bytecode -o "$TMP/fp32.mlirbc"
  "$B/bin/w4a4-opt" "$TMP/fp32.mlirbc" --w4a4-fold-registers --w4a4-quantize-weights \
    --w4a4-quantize-activations --emit-bytecode -o "$TMP/w4a4.mlirbc"
  rm -rf "$TMP/fp32.out" "$TMP/w4a4.out"
  "$B/bin/w4a4-compile" "$TMP/fp32.mlirbc" -o "$TMP/fp32.out" > /dev/null
  "$B/bin/w4a4-compile" "$TMP/w4a4.mlirbc" -o "$TMP/w4a4.out" > /dev/null
  run "$TMP/fp32.mlirbc" "$TMP/fp32.json"
  run "$TMP/w4a4.mlirbc" "$TMP/w4a4.json"
  run "$TMP/fp32.out" "$TMP/fp32-compiled.json"
  run "$TMP/w4a4.out" "$TMP/w4a4-compiled.json"
  # The same runs computing the logits of every window position (the work
  # onnxruntime does: the ONNX graph returns them all), and W4A4 with the
  # VNNI GEMM where the CPU has AMX (the default there).
  run "$TMP/fp32.mlirbc" "$TMP/fp32-all.json" --all-positions
  run "$TMP/w4a4.mlirbc" "$TMP/w4a4-all.json" --all-positions
  if grep -q AMX "$TMP/w4a4.json"; then
    run "$TMP/w4a4.mlirbc" "$TMP/w4a4-vnni.json" --int-gemm=vnni
  fi
  if grep -q AVX2 "$TMP/w4a4.json"; then
    run "$TMP/w4a4.mlirbc" "$TMP/w4a4-portable.json" --int-gemm=portable
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
  timed "$TMP/ort.json" node models/reference/ort/ort_ppl.js "$MODEL_DIR/model.onnx" "$TMP/ids.txt" \
    "$CTX" "$STRIDE" 1 "$THREADS" > "$TMP/ort.json"

  # Decoding. The past export has no Depth Registers (the compiled register
  # model folds its prefix into the cache; onnxruntime has nothing to
  # compare with): decode rows for models without registers only.
  DECODE=0
  if [ "${DECODE_BENCH:-1}" = 1 ] && \
     /usr/bin/python3 models/exporters/export_past.py "$MODEL_DIR" "$TMP/past" > "$TMP/past.log" 2>&1; then
    DECODE=1
    "$B/bin/w4a4-import" "$TMP/past/model.onnx" --emit-bytecode -o "$TMP/past-fp32.mlirbc"
    "$B/bin/w4a4-opt" "$TMP/past-fp32.mlirbc" --w4a4-quantize-weights --w4a4-quantize-activations \
      --emit-bytecode -o "$TMP/past-w4a4.mlirbc"
    for DCTX in 128 512; do
      PROMPT=$(tr ' ' '\n' < "$TMP/ids.txt" | head -n $((DCTX - 64)) | paste -sd, -)
      gen() { timed "$2" "$B/bin/w4a4-run" "$1" --generate --ids "$PROMPT" --max-new-tokens 64 \
                --num-threads "$THREADS" --json "$2" > /dev/null 2>&1; }
      timed "$TMP/dec$DCTX-ort.json" node models/reference/ort/ort_decode.js "$TMP/past/model.onnx" \
        "$PROMPT" 64 "$THREADS" > "$TMP/dec$DCTX-ort.json"
      gen "$TMP/fp32.out" "$TMP/dec$DCTX-fp32-compiled.json"
      gen "$TMP/w4a4.out" "$TMP/dec$DCTX-w4a4-compiled.json"
      gen "$TMP/past-fp32.mlirbc" "$TMP/dec$DCTX-fp32.json"
      gen "$TMP/past-w4a4.mlirbc" "$TMP/dec$DCTX-w4a4.json"
    done
  fi

  /usr/bin/python3 - "$MODEL_DIR" "$TMP" "$CTX" "$STRIDE" "$THREADS" "$DECODE" <<'PY'
import json, os, sys
model, tmp, ctx, stride, threads, decode = sys.argv[1:]
def load(k):
    r = json.load(open("%s/%s.json" % (tmp, k)))
    rss = "%s/%s.rss" % (tmp, k)
    r["rss_mb"] = int(open(rss).read().split()[-1]) / 1024.0 if os.path.exists(rss) else float("nan")
    return r
keys = [k for k in ("ort", "fp32", "fp32-compiled", "w4a4", "w4a4-compiled", "fp32-all", "w4a4-all", "w4a4-vnni",
                    "w4a4-portable", "busy-2", "busy-1", "busy-2-active")
        if os.path.exists("%s/%s.json" % (tmp, k))]
r = {k: load(k) for k in keys}
print("model %s, %d tokens, ctx %s, stride %s, %s threads; %s" % (
    model, r["fp32"]["tokens"], ctx, stride, threads, r["w4a4"].get("device", "")))
print("%-46s %10s %10s %8s %9s" % ("perplexity run", "tokens/s", "PPL", "vs ORT", "peak MB"))
names = {"ort": "onnxruntime-node fp32", "fp32": "w4a4 fp32 (interpreter)",
         "fp32-compiled": "w4a4 fp32 compiled (libmodel.so)",
         "w4a4": "w4a4 W4A4 (interpreter, integer GEMM)",
         "w4a4-compiled": "w4a4 W4A4 compiled (libmodel.so)",
         "fp32-all": "w4a4 fp32, logits at all positions",
         "w4a4-all": "w4a4 W4A4, logits at all positions",
         "w4a4-vnni": "w4a4 W4A4, VNNI GEMM instead of AMX",
         "w4a4-portable": "w4a4 W4A4, portable GEMM instead of AVX2",
         "busy-2": "W4A4, one core busy: %s threads (parking)" % threads,
         "busy-1": "W4A4, one core busy: 1 thread",
         "busy-2-active": "W4A4, one core busy: %s threads spinning" % threads}
for k in keys:
    print("%-46s %10.1f %10.3f %7.2fx %9.1f" % (names[k], r[k]["tokens_per_s"], r[k]["ppl"],
                                               r[k]["tokens_per_s"] / r["ort"]["tokens_per_s"], r[k]["rss_mb"]))
print("compiled / interpreter: fp32 %.2fx, W4A4 %.2fx" % (
    r["fp32-compiled"]["tokens_per_s"] / r["fp32"]["tokens_per_s"],
    r["w4a4-compiled"]["tokens_per_s"] / r["w4a4"]["tokens_per_s"]))
if decode == "1":
    print()
    print("%-46s %10s %10s %8s %9s" % ("greedy decode, 64 steps", "tokens/s", "prefill s", "vs ORT", "peak MB"))
    dnames = [("ort", "onnxruntime-node fp32 (past export)"),
              ("fp32-compiled", "w4a4 fp32 compiled (KV cache)"),
              ("w4a4-compiled", "w4a4 W4A4 compiled (KV cache)"),
              ("fp32", "w4a4 fp32 interpreter (past export)"),
              ("w4a4", "w4a4 W4A4 interpreter (past export)")]
    for dctx in (128, 512):
        d = {k: load("dec%d-%s" % (dctx, k)) for k, _ in dnames}
        for k, name in dnames:
            print("%-46s %10.1f %10.3f %7.2fx %9.1f" % (
                "ctx %d: %s" % (dctx, name), d[k]["decode_tokens_per_s"], d[k]["prefill_s"],
                d[k]["decode_tokens_per_s"] / d["ort"]["decode_tokens_per_s"], d[k]["rss_mb"]))
        same = d["ort"]["generated"] == d["fp32-compiled"]["generated"]
        print("ctx %d: fp32 compiled greedy tokens %s onnxruntime's" % (dctx, "equal" if same else "DIFFER from"))
print()
PY
done
