#!/usr/bin/python3
"""Regenerates every foreign-style export under models/zoo/exports/ (seeded,
deterministic), then cross-checks each against the PyTorch reference
(models/reference/check_exports.py) and records the result in its manifest
("reference_check").

    /usr/bin/python3 models/exporters/build_all.py [NAME ...]
"""

import importlib
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import common  # noqa: E402

sys.path.insert(0, os.path.join(common.MODELS, "reference"))
import check_exports  # noqa: E402
from w4a4ref.loader import load_manifest  # noqa: E402


# One module per style family; each has BUILDERS = {export name: build(name) -> dir}.
STYLES = ["hf_llama", "gqa_split", "dr_zeros", "gemm_lowp", "opset23", "genai_contrib", "gptj_rope"]


def builders():
    """{export name: build function}, in build order."""
    out = {}
    for mod in STYLES:
        out.update(importlib.import_module(mod).BUILDERS)
    return out


def main():
    torch.set_num_threads(1)
    table = builders()
    names = sys.argv[1:] or list(table)
    unknown = [n for n in names if n not in table]
    if unknown:
        sys.exit("build_all: unknown export(s) %s; known: %s" % (unknown, ", ".join(table)))
    failed = 0
    for name in names:
        out_dir = table[name](name)
        r = check_exports.check(out_dir)
        manifest = load_manifest(out_dir)
        manifest["reference_check"] = {
            "measure": "max |onnxruntime-node - torch| / max |torch|, logits of 2 x 40 random ids (BOS first)",
            "onnxruntime_node": "1.30.0",
            "max_rel_err": float("%.3g" % r["full"]),
        }
        if r["incremental"] is not None:
            manifest["reference_check"]["incremental_max_rel_err"] = float("%.3g" % r["incremental"])
            manifest["reference_check"]["incremental"] = ("first %d tokens, then the rest with the presents fed "
                                                          "back as past, vs the full run" % check_exports.PREFIX)
        common.write_manifest(out_dir, manifest)
        ok = r["full"] <= 1e-4 and (r["incremental"] is None or r["incremental"] <= 1e-4)
        failed += not ok
        print("%-26s %s  rel err %.2e%s" % (name, "ok" if ok else "FAIL", r["full"],
                                            "" if r["incremental"] is None else " (past %.2e)" % r["incremental"]),
              flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
