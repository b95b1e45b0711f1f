#!/usr/bin/env bash
# Rebuilds the whole model zoo from scratch on this machine (about 1.5 hours on
# 2 cores): corpus from Debian packages, tokenizer, every trained model in
# models/zoo/w4a4zoo/configs.py (ONNX + manifest), the synthetic importer
# variants, the onnxruntime-node cross-check, the reference W4A4 tables and
# activation reports, and docs/models.md. Intermediate data goes to models/data/
# (not committed). Arguments are passed to the trainer (e.g. a model list).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
export OMP_NUM_THREADS=1

models/setup-models.sh
echo "== [1/7] corpus"
$PY models/corpus/build_corpus.py --out models/data/corpus --manifest models/corpus/corpus.json
echo "== [2/7] tokenizer"
$PY models/tokenizer/train_tokenizer.py --corpus models/data/corpus --out models/tokenizer/w4a4c_bpe4096
echo "== [3/7] trained models"
$PY -m models.zoo.w4a4zoo.train "${@:-all}"
echo "== [4/7] synthetic variants"
$PY -m models.zoo.w4a4zoo.synthetic --out models/zoo/synthetic
echo "== [5/7] onnxruntime-node cross-check"
$PY models/reference/check_ort.py
echo "== [6/7] reference W4A4 tables and activation reports"
for m in tiny_baseline tiny_dr_sink tiny_qat_kurtosis; do
  $PY models/reference/evaluate.py "models/zoo/$m" --table --json "docs/models/$m-w4a4.json"
done
for m in baseline dr_sink qat_kurtosis; do
  $PY models/reference/evaluate.py "models/zoo/$m" --table --max-tokens 16384 --json "docs/models/$m-w4a4.json"
done
$PY models/reference/report.py models/zoo/{baseline,dr_sink,qat_kurtosis,tiny_baseline,tiny_dr_sink,tiny_qat_kurtosis} --out docs/models
echo "== [7/7] docs/models.md"
$PY models/reference/make_models_doc.py
