#!/usr/bin/python3
"""Reference evaluator: fp32 and fake-quant W4A4 perplexity of a shipped
model, with DESIGN.md's sliding window.

    /usr/bin/python3 models/reference/evaluate.py models/zoo/baseline            # fp32
    /usr/bin/python3 models/reference/evaluate.py models/zoo/baseline --wbits 4 --abits 4 \
        --method gptq --rotate full --seed 0
    /usr/bin/python3 models/reference/evaluate.py models/zoo/baseline --table      # standard rows

Calibration: the first --calib-windows windows of --ctx tokens of the
calibration split, each [BOS] + tokens. Validation: the first --max-tokens
tokens of the validation split.
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, ".."))
from w4a4ref import quant  # noqa: E402
from w4a4ref.loader import load_decoder  # noqa: E402
from w4a4ref.perplexity import perplexity  # noqa: E402
from zoo.w4a4zoo.data import load_tokenizer, split_tokens  # noqa: E402

STANDARD = [
    ("RTN", dict()),
    ("+SmoothQuant", dict(smooth=0.5)),
    ("+QuaRot readers", dict(rotate="readers")),
    ("+QuaRot full", dict(rotate="full")),
]


def load_data(args, bos):
    sp = load_tokenizer(args.tokenizer)
    val = split_tokens(sp, args.tokenizer, args.corpus, "validation", args.cache)
    cal = split_tokens(sp, args.tokenizer, args.corpus, "calibration", args.cache)
    n = args.ctx - 1
    windows = [torch.from_numpy(np.concatenate([[bos], cal[i * n:(i + 1) * n]]).astype(np.int64))[None]
               for i in range(args.calib_windows)]
    return val, windows


def run(model_dir, args, qcfg=None, data=None):
    model, manifest = load_decoder(model_dir)
    cfg = model.cfg
    bos = 1
    val, calib = data or load_data(args, bos)
    if qcfg is None:
        fn = model
    else:
        p = quant.params_from_decoder(model)
        hooks = quant.quantize(p, cfg, qcfg, calib)
        fn = lambda ids: quant.forward(p, cfg, ids, hooks)
    with torch.no_grad():
        return perplexity(fn, val, bos, args.ctx, args.stride, args.max_tokens)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("--corpus", default="models/data/corpus")
    ap.add_argument("--tokenizer", default="models/tokenizer/w4a4c_bpe4096.model")
    ap.add_argument("--cache", default="models/data/tokens")
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--stride", type=int, default=128)
    ap.add_argument("--max-tokens", type=int, default=65536)
    ap.add_argument("--calib-windows", type=int, default=32)
    ap.add_argument("--wbits", type=int, default=0, help="0: fp32 evaluation")
    ap.add_argument("--abits", type=int, default=4)
    ap.add_argument("--method", default="rtn")
    ap.add_argument("--group", type=int, default=0)
    ap.add_argument("--smooth", type=float, default=None)
    ap.add_argument("--rotate", default="none")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kv-bits", type=int, default=0)
    ap.add_argument("--keep-fp", default="", help="comma-separated sites: qkv,o_proj,w1w3,w2")
    ap.add_argument("--table", action="store_true", help="fp32 + the standard W4A4 rows, RTN and GPTQ weights")
    ap.add_argument("--json", help="write results here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    name = os.path.basename(os.path.normpath(args.model_dir))
    data = load_data(args, 1)
    results = []
    if args.table:
        t0 = time.time()
        fp = run(args.model_dir, args, None, data)
        results.append({"row": "FP32", "ppl": fp["ppl"], "mean_nll": fp["mean_nll"], "tokens": fp["tokens"]})
        print("%-16s %-16s %9.3f" % (name, "FP32", fp["ppl"]), flush=True)
        for row, extra in STANDARD:
            for method in ("rtn", "gptq"):
                q = quant.QuantConfig(wbits=4, abits=4, method=method, seed=args.seed, **extra)
                r = run(args.model_dir, args, q, data)
                results.append({"row": row, "weights": method, "ppl": r["ppl"], "mean_nll": r["mean_nll"],
                                "tokens": r["tokens"], "config": q.__dict__})
                print("%-16s %-16s %-5s %9.3f  (%.0fs)" % (name, row, method, r["ppl"], time.time() - t0),
                      flush=True)
    else:
        q = None
        if args.wbits:
            q = quant.QuantConfig(wbits=args.wbits, abits=args.abits, method=args.method, group=args.group,
                                  smooth=args.smooth, rotate=args.rotate, seed=args.seed, kv_bits=args.kv_bits,
                                  keep_fp=tuple(s for s in args.keep_fp.split(",") if s))
        r = run(args.model_dir, args, q, data)
        results.append(dict(r, config=q.__dict__ if q else "fp32"))
        print(json.dumps(results[-1], default=str))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": name, "ctx": args.ctx, "stride": args.stride, "max_tokens": args.max_tokens,
                       "calib_windows": args.calib_windows, "results": results}, f, indent=2, default=str)
            f.write("\n")


if __name__ == "__main__":
    main()
