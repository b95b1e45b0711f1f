"""Trains one model of the zoo (configs.TRAINED), evaluates its validation
perplexity with the reference evaluator, exports ONNX and writes a manifest."""

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch

from . import configs
from .data import load_tokenizer, split_tokens
from .export import export_onnx
from .model import Decoder, num_params, training_loss

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "reference"))
from w4a4ref.perplexity import perplexity  # noqa: E402

EVAL_CTX, EVAL_STRIDE, EVAL_TOKENS = 256, 128, 65536


def lr_at(step, steps, base, warmup):
    if step < warmup:
        return base * (step + 1) / warmup
    p = (step - warmup) / max(1, steps - warmup)
    return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)))


def bar(done, total, width=30):
    n = int(width * done / total)
    return "[" + "#" * n + "." * (width - n) + "]"


def train(name, args):
    spec = configs.TRAINED[name]
    cfg, loss_cfg = spec["model"], spec["loss"]
    torch.manual_seed(spec["seed"])
    sp = load_tokenizer(args.tokenizer)
    bos = sp.bos_id()
    stream = split_tokens(sp, args.tokenizer, args.corpus, "train", args.cache)
    model = Decoder(cfg)
    if spec.get("init"):
        state = torch.load(os.path.join(args.checkpoints, spec["init"] + ".pt"))
        model.load_state_dict(state["model"])
    model.set_qat(loss_cfg.qat_act_bits, loss_cfg.qat_weight_bits)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}], lr=spec["lr"], betas=(0.9, 0.95))
    rng = np.random.default_rng(spec["seed"])
    steps, batch, seq = spec["steps"], spec["batch"], spec["seq"]
    warmup = max(1, steps // 20)
    print("train %s: %d parameters, %d steps x %d x %d tokens" % (name, num_params(model), steps, batch, seq),
          flush=True)
    t0 = time.time()
    model.train()
    for step in range(steps):
        starts = rng.integers(0, len(stream) - seq, size=batch)
        x = np.stack([np.concatenate([[bos], stream[s:s + seq - 1]]) for s in starts]).astype(np.int64)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, spec["lr"], warmup)
        loss, parts = training_loss(model, torch.from_numpy(x), loss_cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 10 == 0 or step == steps - 1:
            el = time.time() - t0
            tps = (step + 1) * batch * seq / el
            eta = el / (step + 1) * (steps - step - 1)
            info = " ".join("%s=%.3f" % kv for kv in parts.items())
            print("  %s %s step %d/%d %s %.0f tok/s eta %.0fs" % (name, bar(step + 1, steps), step + 1, steps,
                                                                info, tps, eta), flush=True)
    train_seconds = time.time() - t0
    model.eval()
    model.set_qat(0, 0)
    # Shipped weights are fp16: evaluate exactly what ships.
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
    os.makedirs(args.checkpoints, exist_ok=True)
    torch.save({"model": model.state_dict(), "config": cfg.to_dict()}, os.path.join(args.checkpoints, name + ".pt"))
    val = split_tokens(sp, args.tokenizer, args.corpus, "validation", args.cache)
    res = perplexity(model, val, bos, EVAL_CTX, EVAL_STRIDE, EVAL_TOKENS)
    print("  %s validation: %d tokens, mean NLL %.4f, PPL %.3f" % (name, res["tokens"], res["mean_nll"], res["ppl"]),
          flush=True)
    out_dir = os.path.join(args.out, name)
    os.makedirs(out_dir, exist_ok=True)
    onnx_path = os.path.join(out_dir, "model.onnx")
    digest = export_onnx(model, onnx_path)
    manifest = {
        "name": name, "config": cfg.to_dict(), "loss": loss_cfg.to_dict(), "seed": spec["seed"],
        "steps": steps, "batch": batch, "seq": seq, "lr": spec["lr"], "init": spec.get("init"),
        "tokens": steps * batch * seq, "parameters": num_params(model), "train_seconds": round(train_seconds, 1),
        "validation": {"ctx": EVAL_CTX, "stride": EVAL_STRIDE, "max_tokens": EVAL_TOKENS,
                       "tokens": res["tokens"], "mean_nll": res["mean_nll"], "ppl": res["ppl"]},
        "onnx": {"file": "model.onnx", "opset": 17, "weights": "float16", "sha256": digest},
        "tokenizer": os.path.basename(args.tokenizer),
    }
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("names", nargs="+", help="models to train: %s or all" % ", ".join(configs.TRAINED))
    ap.add_argument("--corpus", default="models/data/corpus")
    ap.add_argument("--tokenizer", default="models/tokenizer/w4a4c_bpe4096.model")
    ap.add_argument("--cache", default="models/data/tokens")
    ap.add_argument("--checkpoints", default="models/data/checkpoints")
    ap.add_argument("--out", default="models/zoo")
    ap.add_argument("--probe", type=int, default=0, help="only time this many steps")
    args = ap.parse_args()
    torch.set_num_threads(1)
    names = list(configs.TRAINED) if args.names == ["all"] else args.names
    for name in names:
        if name not in configs.TRAINED:
            sys.exit("train: unknown model %r (known: %s)" % (name, ", ".join(configs.TRAINED)))
        if args.probe:
            configs.TRAINED[name]["steps"] = args.probe
        train(name, args)


if __name__ == "__main__":
    main()
