#!/usr/bin/env bash
# Installs what the model zoo needs on a fresh Debian 12 machine, idempotently:
# the Debian packages the corpus is extracted from, Debian's PyTorch/ONNX/
# SentencePiece for /usr/bin/python3, OpenBLAS (torch is ~50x slower on the
# reference BLAS), and onnxruntime-node from npm for the cross-check.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  # Corpus sources.
  sword-text-web diatheke bible-kjv-text bible-kjv debian-handbook postgresql-doc-15
  python3.11-doc linux-doc-6.1 jargon-text dict-devil
  # Python for model work (Debian's, used through /usr/bin/python3).
  python3-torch python3-onnx python3-numpy python3-sentencepiece libopenblas0-pthread
  # onnxruntime-node.
  nodejs npm
)
missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup-models: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ ! -d models/reference/ort/node_modules/onnxruntime-node ]; then
  # --ignore-scripts: the CPU binaries are bundled; the install script only
  # fetches optional CUDA binaries from the network.
  (cd models/reference/ort && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
