#!/usr/bin/env bash
# Installs every Debian package w4a4c needs on a fresh Debian 12 machine.
# Idempotent: packages already installed are not touched, and apt-get runs only
# when something is missing.
set -euo pipefail

PACKAGES=(
  # Build: LLVM/MLIR 22 (static libraries, mlir-tblgen, FileCheck, lit).
  cmake ninja-build ccache g++
  llvm-22-dev libmlir-22-dev mlir-22-tools llvm-22-tools zlib1g-dev
  # Tests: GoogleTest.
  libgtest-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
