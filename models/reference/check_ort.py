#!/usr/bin/python3
"""Cross-checks every shipped ONNX model: logits from onnxruntime-node (CPU)
against the PyTorch reference decoder built from the same file
(w4a4ref.loader). Error measure: max |ort - torch| / max |torch| over all
logits of a random batch. Fails above --tol (default 1e-4).

    /usr/bin/python3 models/reference/check_ort.py [MODEL_DIR ...]
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


def ort_logits(onnx_path, ids):
    """Logits of int64 ids [batch, seq] from onnxruntime-node (CPU)."""
    batch, seq = ids.shape
    with tempfile.TemporaryDirectory() as tmp:
        ids_path, out_path = os.path.join(tmp, "ids.bin"), os.path.join(tmp, "logits.bin")
        ids.astype(np.int64).tofile(ids_path)
        proc = subprocess.run(["node", os.path.join(HERE, "ort", "ort_logits.js"), onnx_path, ids_path,
                               str(batch), str(seq), out_path], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError("onnxruntime-node failed on %s: %s" % (onnx_path, proc.stderr.strip()))
        dims = json.loads(proc.stdout)["dims"]
        return np.fromfile(out_path, dtype=np.float32).reshape(dims)


def check(model_dir, tol, batch=2, seq=40, seed=0):
    model, manifest = load_decoder(model_dir)
    rng = np.random.default_rng(seed)
    ids = rng.integers(3, manifest["config"]["vocab_size"], size=(batch, seq)).astype(np.int64)
    ids[:, 0] = 1  # BOS
    with torch.no_grad():
        ref = model(torch.from_numpy(ids)).numpy()
    got = ort_logits(os.path.join(model_dir, manifest["onnx"]["file"]), ids)
    if got.shape != ref.shape:
        raise RuntimeError("%s: onnxruntime gives %s, PyTorch %s" % (model_dir, got.shape, ref.shape))
    return float(np.abs(got - ref).max() / np.abs(ref).max())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dirs", nargs="*")
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()
    torch.set_num_threads(1)
    zoo = os.path.join(HERE, "..", "zoo")
    dirs = args.dirs or sorted(os.path.dirname(p) for pattern in ("*", "synthetic/*")
                               for p in glob.glob(os.path.join(zoo, pattern, "manifest.json")))
    if not dirs:
        sys.exit("check_ort: no models found")
    failed = 0
    for d in dirs:
        err = check(d, args.tol)
        ok = err <= args.tol
        failed += not ok
        print("%-22s max rel err %.2e  %s" % (os.path.basename(os.path.normpath(d)), err, "ok" if ok else "FAIL"),
              flush=True)
    print("%d passed, %d failed" % (len(dirs) - failed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
