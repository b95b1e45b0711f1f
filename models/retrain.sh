#!/usr/bin/env bash
# Retrains the whole model zoo from scratch on this machine: corpus from Debian
# packages, tokenizer, every model in models/zoo/w4a4zoo/configs.py (ONNX +
# manifest per model), then the onnxruntime-node cross-check. About 1.5 hours on
# 2 cores. Intermediate data goes to models/data/ (not committed).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3

models/setup-models.sh
echo "== corpus"
$PY models/corpus/build_corpus.py --out models/data/corpus
echo "== tokenizer"
$PY models/tokenizer/train_tokenizer.py --corpus models/data/corpus --out models/tokenizer/w4a4c_bpe4096
echo "== models"
$PY -m models.zoo.w4a4zoo.train all "$@"
echo "== onnxruntime-node cross-check"
$PY models/reference/check_ort.py
