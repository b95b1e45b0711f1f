#!/usr/bin/env bash
# Installs what retraining the model zoo needs on a fresh Debian 12 machine,
# idempotently: the Debian packages the corpus is extracted from and matplotlib
# for the report plots, on top of scripts/setup.sh (PyTorch, ONNX,
# SentencePiece, OpenBLAS, onnxruntime-node, the build tools).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh \
  sword-text-web diatheke bible-kjv-text bible-kjv debian-handbook postgresql-doc-15 \
  python3.11-doc linux-doc-6.1 jargon-text dict-devil \
  python3-matplotlib
