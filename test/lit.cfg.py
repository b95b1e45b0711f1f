# -*- Python -*-
# lit configuration for the w4a4c test suite.

import os
import shutil
import subprocess

import lit.formats
from lit.llvm import llvm_config

config.name = "W4A4"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.excludes = ["CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py", "Inputs", "regressions", "seeds",
                   "ir-seeds", "ir-regressions"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.w4a4_obj_root, "test")

config.substitutions.append(("%w4a4_src_root", config.w4a4_src_root))
config.substitutions.append(("%w4a4_obj_root", config.w4a4_obj_root))

llvm_config.use_default_substitutions()
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)
llvm_config.add_tool_substitutions(["w4a4-opt", "w4a4-import", "w4a4-run", "w4a4-compile", "run-artifact", "w4a4-cuda-model-check"], [config.w4a4_tools_dir])

# GPU gating: `REQUIRES: cuda-toolkit` needs nvcc (code for GPUs compiles);
# `REQUIRES: cuda` needs a visible NVIDIA GPU (code runs). Tests that need a GPU
# are never skipped from inside their bodies.
nvcc = shutil.which("nvcc") or (
    "/usr/local/cuda/bin/nvcc" if os.path.exists("/usr/local/cuda/bin/nvcc") else None
)
if nvcc:
    config.available_features.add("cuda-toolkit")
    config.substitutions.append(("%nvcc", nvcc))


def _has_gpu():
    smi = shutil.which("nvidia-smi")
    if not smi:
        return False
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


if _has_gpu():
    config.available_features.add("cuda")
