#!/usr/bin/python3
"""End-to-end check of the importer on the foreign-style exports
(models/zoo/exports/*, written by models/exporters in the styles of other
exporters), each against independent references:

1. structure: `w4a4-import` gives fully raised IR whose model-level op counts
   and head counts are what the manifest's config says (attention, rope,
   rms_norm, swiglu per layer; GQA heads; Depth Registers);
2. fp32 logits of the raised IR (`w4a4-run --ids`) against onnxruntime-node
   running the ONNX file itself with the export's own inputs
   (attention_mask, position_ids, empty past) and against the PyTorch
   reference decoder built from the file's weights: max |d| / max |ref|
   <= --tol (1e-4);
3. perplexity (`w4a4-run --text`, ctx 64 stride 32) against the reference
   evaluator on the same text, relative difference <= --tol;
4. W4A4 (RTN weights; plain and QuaRot full) compiled by
   `w4a4-quantize-pipeline` with no extra flags (BOS from the model) against
   the reference evaluator's fake-quant, relative difference <= --quant-tol
   (0.5%).

    /usr/bin/python3 models/reference/check_imports.py --run build/bin/w4a4-run [EXPORT_DIR ...]
"""

import argparse
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, ".."))
from check_exports import feeds_for, logits_of, ort_run, presents_of  # noqa: E402
from check_runtime import run_logits, run_ppl  # noqa: E402
from w4a4ref import quant  # noqa: E402
from w4a4ref.loader import load_decoder, load_manifest  # noqa: E402
from w4a4ref.perplexity import perplexity  # noqa: E402
from zoo.w4a4zoo.data import encode_text, load_tokenizer  # noqa: E402

EXPORTS = os.path.join(HERE, "..", "zoo", "exports")


def structure_errors(text, cfg):
    """What in the raised IR disagrees with the config ([] when nothing)."""
    errs = []
    if 'w4a4.onnx "' in text:
        errs.append("generic ops left")
    layers = cfg["layers"]
    for op, want in (("w4a4.attention", layers), ("w4a4.rope", 2 * layers), ("w4a4.swiglu", layers),
                     ("w4a4.rms_norm", 2 * layers + 1)):
        got = len(re.findall(r"= %s " % re.escape(op), text))
        if got != want:
            errs.append("%s: %d, expected %d" % (op, got, want))
    heads = set(re.findall(r"num_heads = (\d+) : i64, num_kv_heads = (\d+)", text))
    if heads != {(str(cfg["heads"]), str(cfg["kv_heads"]))}:
        errs.append("heads %s, expected %s/%s" % (sorted(heads), cfg["heads"], cfg["kv_heads"]))
    interleaved = "interleaved" in text
    if interleaved != bool(cfg.get("rope_interleaved")):
        errs.append("rope interleaved %s, expected %s" % (interleaved, bool(cfg.get("rope_interleaved"))))
    k = cfg.get("registers", 0)
    regs = {m: len(re.findall(r"w4a4.registers %s " % m, text)) for m in ("prepend", "add", "strip")}
    want = {"prepend": 1, "add": layers - 1 if cfg.get("register_layers") == "all" else 0, "strip": 1} if k else \
        {"prepend": 0, "add": 0, "strip": 0}
    if regs != want:
        errs.append("registers %s, expected %s" % (regs, want))
    return errs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dirs", nargs="*")
    ap.add_argument("--run", required=True, help="path of w4a4-run")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--quant-tol", type=float, default=5e-3)
    ap.add_argument("--text", default=os.path.join(HERE, "..", "..", "test", "data", "validation-sample.txt"))
    ap.add_argument("--tokenizer", default=os.path.join(HERE, "..", "tokenizer", "w4a4c_bpe4096.model"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    bindir = os.path.dirname(args.run)
    importer, opt = os.path.join(bindir, "w4a4-import"), os.path.join(bindir, "w4a4-opt")
    dirs = args.dirs or sorted(os.path.dirname(p) for p in glob.glob(os.path.join(EXPORTS, "*", "manifest.json")))
    sp = load_tokenizer(args.tokenizer)
    with open(args.text, encoding="utf-8") as f:
        tokens = encode_text(sp, f.read())
    failed = checks = 0

    def report(ok, line):
        nonlocal failed, checks
        checks += 1
        failed += not ok
        print(line + ("  ok" if ok else "  FAIL"), flush=True)

    for d in dirs:
        manifest = load_manifest(d)
        name, cfg = manifest["name"], manifest["config"]
        onnx_path = os.path.join(d, manifest["onnx"]["file"])
        with tempfile.TemporaryDirectory() as tmp:
            raised = os.path.join(tmp, "m.mlir")
            proc = subprocess.run([importer, onnx_path, "-o", raised], capture_output=True, text=True)
            if proc.returncode != 0:
                first = next((l for l in proc.stderr.splitlines() if "error:" in l), proc.stderr.strip())
                report(False, "import %-26s %s" % (name, first[:300]))
                continue
            with open(raised) as f:
                text = f.read()
            errs = structure_errors(text, cfg)
            report(not errs, "import %-26s fully raised, structure %s" % (name, "; ".join(errs) or "as configured"))
            # fp32 logits: raised IR vs onnxruntime (the file) and PyTorch.
            model, _ = load_decoder(d)
            rng = np.random.default_rng(5)
            ids = rng.integers(3, cfg["vocab_size"], size=(1, 37)).astype(np.int64)
            ids[0, 0] = 1
            got = run_logits(args.run, raised, ids[0])
            ort = logits_of(manifest, ort_run(onnx_path, feeds_for(manifest, ids))).reshape(-1)
            with torch.no_grad():
                ref = model(torch.from_numpy(ids)).numpy().reshape(-1)
            e_ort = float(np.abs(got - ort).max() / np.abs(ort).max()) if got.shape == ort.shape else float("inf")
            e_ref = float(np.abs(got - ref).max() / np.abs(ref).max()) if got.shape == ref.shape else float("inf")
            report(e_ort <= args.tol and e_ref <= args.tol,
                   "logits %-26s vs onnxruntime %.2e  vs torch %.2e" % (name, e_ort, e_ref))
            # KV cache: the ids in three chunks, each reading the cache the
            # previous one returned, on onnxruntime (the export's own past /
            # present convention) and on the raised IR (w4a4-run --kv-split);
            # the logits of every chunk and the final presents must agree.
            if any(i["kind"] == "past_key" for i in manifest["inputs"]):
                cuts = [0, 20, 29, ids.shape[1]]
                past, chunks = None, []
                for a, b in zip(cuts, cuts[1:]):
                    outs = ort_run(onnx_path, feeds_for(manifest, ids[:, a:b], past, a))
                    chunks.append(logits_of(manifest, outs))
                    past = presents_of(manifest, outs)
                ort_kv = np.concatenate(chunks, axis=1).reshape(-1)
                prefix = os.path.join(tmp, "cache")
                kv = os.path.join(tmp, "kv.f32")
                subprocess.run([args.run, raised, "--ids", ",".join(map(str, ids[0])), "--kv-split",
                                ",".join(map(str, cuts[1:-1])), "--dump-logits", kv, "--dump-cache", prefix],
                               check=True, capture_output=True, text=True)
                got_kv = np.fromfile(kv, dtype=np.float32)
                e_kv = float(np.abs(got_kv - ort_kv).max() / np.abs(ort_kv).max()) \
                    if got_kv.shape == ort_kv.shape else float("inf")
                e_cache = 0.0
                present = manifest["outputs"].get("present", [])
                for i, o in enumerate(present):
                    want_p = past[(o["layer"], "key" if o["kind"] == "present_key" else "value")]
                    got_p = np.fromfile("%s.%d.f32" % (prefix, i), dtype=np.float32)
                    e_cache = max(e_cache, float(np.abs(got_p - want_p.reshape(-1)).max() / np.abs(want_p).max())
                                  if got_p.size == want_p.size else float("inf"))
                report(e_kv <= args.tol and e_cache <= args.tol and len(present) > 0,
                       "kv     %-26s chunks %s vs onnxruntime: logits %.2e  presents %.2e (%d)" % (
                           name, cuts[1:-1], e_kv, e_cache, len(present)))
            # Perplexity vs the reference evaluator.
            bos = manifest.get("metadata_props", {}).get("bos_id", 1)
            bos = int(bos)
            want = perplexity(model, tokens, bos, 64, 32)
            res = run_ppl(args.run, raised, args.text, args.tokenizer, tmp)
            rel = abs(res["ppl"] - want["ppl"]) / want["ppl"]
            report(res["tokens"] == want["tokens"] and rel <= args.tol,
                   "ppl    %-26s runtime %.4f  reference %.4f  rel %.2e" % (name, res["ppl"], want["ppl"], rel))
            # W4A4, RTN and QuaRot full, with no extra flags.
            for cname, pipe, qopts in (("rtn", "", {}), ("quarot-full", "rotate=full seed=0", {"rotate": "full"})):
                quantized = os.path.join(tmp, "q.mlirbc")
                pipeline = ("%s wbits=4 abits=4" % pipe).strip()
                subprocess.run([opt, raised, "--w4a4-quantize-pipeline=" + pipeline, "--emit-bytecode", "-o",
                                quantized], check=True)
                res = run_ppl(args.run, quantized, args.text, args.tokenizer, tmp)
                p = quant.params_from_decoder(model)
                hooks = quant.quantize(p, model.cfg, quant.QuantConfig(wbits=4, abits=4, method="rtn", **qopts), [])
                with torch.no_grad():
                    want = perplexity(lambda x: quant.forward(p, model.cfg, x, hooks), tokens, bos, 64, 32)
                rel = abs(res["ppl"] - want["ppl"]) / want["ppl"]
                report(res["tokens"] == want["tokens"] and rel <= args.quant_tol,
                       "w4a4   %-26s %-12s compiled %9.4f  reference %9.4f  rel %.2e" % (
                           name, cname, res["ppl"], want["ppl"], rel))
    print("%d passed, %d failed" % (checks - failed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
