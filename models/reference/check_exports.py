#!/usr/bin/python3
"""Cross-checks the foreign-style ONNX exports (models/zoo/exports/*): for
each, feeds built from its manifest's "inputs" (input_ids [2, 40] random with
BOS first, attention_mask all ones, position_ids arange, past tensors of
length 0) run through onnxruntime-node (CPU, ort/ort_run.js); the logits
(register positions stripped where the manifest says the graph returns them)
are compared with the PyTorch reference decoder that w4a4ref.loader builds
from the file's initializers: max |ort - torch| / max |torch| <= --tol (1e-4).
Models with past_key/past_value inputs are also run incrementally: the first
7 tokens, then the rest with the first run's presents fed back as the past
(position_ids and attention_mask extended accordingly); those logits must
match the full run's (same measure).

    /usr/bin/python3 models/reference/check_exports.py [EXPORT_DIR ...]

Importable helpers: feeds_for(manifest, ids, ...) -> {input name: array},
ort_run(onnx_path, feeds) -> {output name: array}.
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from w4a4ref.loader import load_decoder  # noqa: E402

EXPORTS = os.path.join(HERE, "..", "zoo", "exports")
PREFIX = 7  # tokens of the first run in the incremental check


def feeds_for(manifest, ids, past=None, past_len=0):
    """The named input arrays of an export for int64 ids [batch, seq].
    past: {(layer, "key"|"value"): array [batch, kv_heads, past_len, head_dim]}
    (e.g. a previous run's presents, see presents_of), or None for empty
    past tensors; past_len: the number of positions before ids (attention
    mask covers past_len + seq, position_ids start at past_len)."""
    cfg = manifest["config"]
    b, t = ids.shape
    feeds = {}
    for inp in manifest["inputs"]:
        kind, dtype = inp["kind"], np.dtype(inp.get("dtype", "int64"))
        if kind == "input_ids":
            arr = ids.astype(dtype)
        elif kind == "attention_mask":
            arr = np.ones((b, past_len + t), dtype=dtype)
        elif kind == "position_ids":
            arr = np.broadcast_to(np.arange(past_len, past_len + t, dtype=dtype), (b, t)).copy()
        elif kind in ("past_key", "past_value"):
            which = "key" if kind == "past_key" else "value"
            if past is None:
                arr = np.zeros((b, cfg["kv_heads"], 0, cfg["head_dim"]), dtype=dtype)
            else:
                arr = np.ascontiguousarray(past[(inp["layer"], which)], dtype=dtype)
        else:
            raise ValueError("unknown input kind %r (%s)" % (kind, inp["name"]))
        feeds[inp["name"]] = arr
    return feeds


def presents_of(manifest, outputs):
    """{(layer, "key"|"value"): array} from a run's outputs."""
    return {(o["layer"], "key" if o["kind"] == "present_key" else "value"): outputs[o["name"]]
            for o in manifest["outputs"].get("present", [])}


def logits_of(manifest, outputs):
    """The logits output, register positions stripped where included."""
    logits = outputs[manifest["outputs"]["logits"]]
    k = manifest["outputs"].get("logits_include_registers", 0)
    return logits[:, k:] if k else logits


DTYPES = {np.dtype(np.int64): "int64", np.dtype(np.int32): "int32", np.dtype(np.float32): "float32"}


def ort_run(onnx_path, feeds, optimization="all"):
    """Runs onnxruntime-node (CPU) on {name: numpy array} (int64, int32 or
    float32) and returns {output name: numpy array}."""
    with tempfile.TemporaryDirectory() as tmp:
        spec = {"model": os.path.abspath(onnx_path), "out_dir": tmp, "optimization": optimization, "feeds": []}
        for i, (name, arr) in enumerate(feeds.items()):
            arr = np.ascontiguousarray(arr)
            path = os.path.join(tmp, "feed%d.bin" % i)
            arr.tofile(path)
            spec["feeds"].append({"name": name, "dtype": DTYPES[arr.dtype], "dims": list(arr.shape), "file": path})
        spec_path = os.path.join(tmp, "spec.json")
        with open(spec_path, "w") as f:
            json.dump(spec, f)
        proc = subprocess.run(["node", os.path.join(HERE, "ort", "ort_run.js"), spec_path],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError("onnxruntime-node failed on %s: %s" % (onnx_path, proc.stderr.strip()))
        outs = {}
        for o in json.loads(proc.stdout)["outputs"]:
            dt = {"float32": np.float32, "int64": np.int64, "int32": np.int32, "float16": np.float16}[o["dtype"]]
            outs[o["name"]] = np.fromfile(o["file"], dtype=dt).reshape(o["dims"])
        return outs


def rel_err(got, ref):
    return float(np.abs(got - ref).max() / np.abs(ref).max())


def check(model_dir, batch=2, seq=40, seed=0):
    """{"full": rel err of the full run vs torch, "incremental": rel err of
    the past-fed run vs the full run (None without past inputs)}."""
    model, manifest = load_decoder(model_dir)
    onnx_path = os.path.join(model_dir, manifest["onnx"]["file"])
    rng = np.random.default_rng(seed)
    ids = rng.integers(3, manifest["config"]["vocab_size"], size=(batch, seq)).astype(np.int64)
    ids[:, 0] = 1  # BOS
    with torch.no_grad():
        ref = model(torch.from_numpy(ids)).numpy()
    full = logits_of(manifest, ort_run(onnx_path, feeds_for(manifest, ids)))
    if full.shape != ref.shape:
        raise RuntimeError("%s: onnxruntime gives %s, PyTorch %s" % (model_dir, full.shape, ref.shape))
    result = {"full": rel_err(full, ref), "incremental": None}
    if any(i["kind"] == "past_key" for i in manifest["inputs"]):
        # manifest "incremental_batch": 1 where the runtime takes a past with
        # several new tokens only one sequence at a time (GroupQueryAttention).
        step = manifest.get("incremental_batch") or batch
        parts = []
        for r in range(0, batch, step):
            rows = ids[r:r + step]
            first = ort_run(onnx_path, feeds_for(manifest, rows[:, :PREFIX]))
            past = presents_of(manifest, first)
            second = ort_run(onnx_path, feeds_for(manifest, rows[:, PREFIX:], past=past, past_len=PREFIX))
            parts.append(logits_of(manifest, second))
            present = presents_of(manifest, second)[(0, "key")]
            if present.shape[2] != seq:
                raise RuntimeError("%s: present length %d after the incremental run, expected %d"
                                   % (model_dir, present.shape[2], seq))
        result["incremental"] = rel_err(np.concatenate(parts), full[:, PREFIX:])
    return result


def export_dirs():
    return sorted(os.path.dirname(p) for p in glob.glob(os.path.join(EXPORTS, "*", "manifest.json")))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dirs", nargs="*")
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()
    torch.set_num_threads(1)
    dirs = args.dirs or export_dirs()
    if not dirs:
        sys.exit("check_exports: no exports found under %s" % EXPORTS)
    failed = 0
    for d in dirs:
        name = os.path.basename(os.path.normpath(d))
        try:
            r = check(d)
        except Exception as e:  # report and go on with the next model
            failed += 1
            print("%-26s ERROR %s" % (name, str(e).splitlines()[0][:300]), flush=True)
            continue
        ok = r["full"] <= args.tol and (r["incremental"] is None or r["incremental"] <= args.tol)
        failed += not ok
        inc = "" if r["incremental"] is None else "  with past %.2e" % r["incremental"]
        print("%-26s max rel err %.2e%s  %s" % (name, r["full"], inc, "ok" if ok else "FAIL"), flush=True)
    print("%d passed, %d failed" % (len(dirs) - failed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
