#!/usr/bin/env bash
# Installs every Debian package w4a4c needs on a fresh Debian 12 machine, plus
# any extra package names given as arguments (models/setup-models.sh adds the
# corpus sources). Idempotent: packages already installed are not touched, and
# apt-get runs only when something is missing.
set -euo pipefail

PACKAGES=(
  # Build: LLVM/MLIR 22 (static libraries, mlir-tblgen, FileCheck, lit).
  cmake ninja-build ccache g++
  llvm-22-dev libmlir-22-dev mlir-22-tools llvm-22-tools zlib1g-dev
  # The runtime: OpenBLAS (with its CBLAS header); w4a4-run's tokenizer and
  # JSON output.
  libopenblas-pthread-dev libsentencepiece-dev nlohmann-json3-dev
  # The ONNX importer: the ONNX protobuf library.
  libonnx-dev libprotobuf-dev protobuf-compiler
  # Tests: GoogleTest; the PyTorch reference evaluator (Debian's torch, onnx,
  # sentencepiece for /usr/bin/python3, OpenBLAS so torch is not ~50x slower)
  # and onnxruntime-node (npm) for the cross-checks.
  libgtest-dev time
  python3-torch python3-onnx python3-numpy python3-sentencepiece libopenblas0-pthread
  "$@"
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# Node.js and npm may come from another source than Debian (the machine image
# ships NodeSource's); install Debian's only when there is none.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
else
  echo "setup: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# onnxruntime-node, pinned by models/reference/ort/package-lock.json.
# --ignore-scripts: the CPU binaries are bundled; the install script would only
# fetch optional CUDA binaries.
cd "$(dirname "$0")/.."
if [ ! -d models/reference/ort/node_modules/onnxruntime-node ]; then
  (cd models/reference/ort && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
