#!/usr/bin/env bash
# The CUDA kernels' build gate (no GPU needed): every kernel compiles for its
# targets with ptxas -v, a spill or local-memory use is an error, the sm_90a
# code has no emulated sub-byte MMA helper, and register and shared-memory
# use per kernel goes to the log.
#   test/cuda/build-gate.sh [NVCC] [WORKDIR]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
NVCC=${1:-${NVCC:-/usr/local/cuda/bin/nvcc}}
WORK=${2:-$(mktemp -d)}
mkdir -p "$WORK"
if ! command -v "$NVCC" >/dev/null 2>&1; then
  echo "build-gate: nvcc not found at $NVCC (install the CUDA toolkit, or configure with -DW4A4_CUDA_GATE=OFF)" >&2
  exit 1
fi
INC="-I$ROOT/runtime/cuda/include"
HELPER=mma_sub_byte_internal
status=0

# compile SOURCE ARCH: a cubin with ptxas's report; fails on spills.
compile() {
  local src=$1 arch=$2 out="$WORK/$(basename "$1" .cu)-$2.cubin"
  local log="$out.log"
  if ! "$NVCC" -std=c++17 -cubin -arch="$arch" $INC -Xptxas -v,-warn-spills,-warn-lmem-usage \
      -o "$out" "$src" >"$log" 2>&1; then
    cat "$log"
    echo "build-gate: FAIL $(basename "$src") for $arch does not compile" >&2
    status=1
    return
  fi
  # One "Compiling entry function" line per kernel, then its resources.
  awk -v arch="$arch" '
    /Compiling entry function/ { match($0, /'"'"'[^'"'"']*'"'"'/); fn = substr($0, RSTART + 1, RLENGTH - 2) }
    /bytes stack frame/ { frame = $0 }
    /Used [0-9]+ registers/ { sub(/.*Used/, "Used"); printf "%-7s %s: %s;%s\n", arch, fn, $0, frame }
  ' "$log"
  if grep -Eq "[1-9][0-9]* bytes spill (stores|loads)|[1-9][0-9]* bytes stack frame|Local memory" "$log"; then
    grep -E "spill|stack frame|Local memory" "$log"
    echo "build-gate: FAIL $(basename "$src") for $arch spills or uses local memory" >&2
    status=1
  fi
  CUBIN=$out
}

CUBIN=
for arch in sm_80 sm_86 sm_89; do
  compile "$ROOT/runtime/cuda/lib/GemmSm80.cu" "$arch"
done
compile "$ROOT/runtime/cuda/lib/GemmSm90.cu" sm_90a
cubin90=$CUBIN
# The fp32 and producer kernels run on every target.
for arch in sm_80 sm_86 sm_89 sm_90a; do
  compile "$ROOT/runtime/cuda/lib/Blocks.cu" "$arch"
done
if readelf -sW "$cubin90" | grep -q "$HELPER"; then
  echo "build-gate: FAIL the sm_90a GEMM links the emulated sub-byte MMA helper" >&2
  status=1
else
  echo "sm_90a  no $HELPER in $(basename "$cubin90")"
fi
# The check itself can fail: the s4 kernel built for sm_90a has the helper.
"$NVCC" -std=c++17 -cubin -arch=sm_90a $INC -o "$WORK/s4-on-sm90a.cubin" \
  "$ROOT/runtime/cuda/lib/GemmSm80.cu"
if ! readelf -sW "$WORK/s4-on-sm90a.cubin" | grep -q "$HELPER"; then
  echo "build-gate: FAIL the helper check finds nothing even in an s4 MMA built for sm_90a" >&2
  status=1
else
  echo "check   an s4 MMA built for sm_90a does link $HELPER (the check can fail)"
fi

# Dynamic shared memory per block (the kernels' constants).
cat >"$WORK/smem.cpp" <<'EOF'
#include "w4a4/cuda/Gemm.cuh"
#include <cstdio>
int main() {
  std::printf("smem    w4a4Gemm: %d bytes dynamic shared memory per block, %d threads\n",
              w4a4::cuda::gemm::kSharedBytes, w4a4::cuda::gemm::kThreads);
}
EOF
${CXX:-c++} -std=c++17 $INC -o "$WORK/smem" "$WORK/smem.cpp"
"$WORK/smem"

# scripts/gpu-check.sh's device program builds and links (for sm_80 here:
# the script builds it for the GPU it finds).
if "$NVCC" -O2 -std=c++17 -arch=sm_80 -I"$ROOT/runtime/include" $INC \
    -Xcompiler -fopenmp,-ffp-contract=off \
    "$ROOT/test/cuda/gpu/GemmCheck.cu" "$ROOT/runtime/cuda/lib/GemmSm80.cu" \
    "$ROOT/runtime/cuda/lib/GemmSm90.cu" "$ROOT/runtime/cuda/lib/Blocks.cu" \
    "$ROOT/runtime/lib/IntGemm.cpp" \
    "$ROOT/runtime/cuda/lib/Pack.cpp" "$ROOT/runtime/lib/Hadamard.cpp" -lcublasLt -lgomp \
    -o "$WORK/gemm-check" >"$WORK/gemm-check.log" 2>&1; then
  echo "gpu     scripts/gpu-check.sh's program builds ($(basename "$WORK")/gemm-check)"
else
  cat "$WORK/gemm-check.log"
  echo "build-gate: FAIL test/cuda/gpu/GemmCheck.cu does not build" >&2
  status=1
fi

[ "$status" = 0 ] && echo "build-gate: PASS"
exit "$status"
