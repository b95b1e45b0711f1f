#!/usr/bin/python3
"""Activation-statistics report of a shipped model (DESIGN.md diagnostics):
per layer and site, max|x|, Pearson kurtosis of each token's input vector
(mean and max over tokens) and the channel outlier ratio
max_j mean_t |X[t,j]| / median_j mean_t |X[t,j]|; and the residual stream's
max|x| at the register positions, at BOS and at the other tokens, which shows
where massive activations sit. Statistics cover BOS and token positions of the
first --windows calibration windows; register positions only in their own
column. Writes JSON and a PNG plot.

    /usr/bin/python3 models/reference/report.py models/zoo/baseline --out docs/models
"""

import argparse
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, ".."))
from w4a4ref import quant  # noqa: E402
from w4a4ref.loader import load_decoder  # noqa: E402
from zoo.w4a4zoo.data import load_tokenizer, split_tokens  # noqa: E402


class StatHooks(quant.Hooks):
    def __init__(self, k):
        super().__init__(None, k, None)
        self.sites, self.res = {}, {}

    def site(self, kind, layer, x):
        flat = x[:, self.k:].reshape(-1, x.shape[-1]).double()
        st = self.sites.setdefault((kind, layer), {"absmax": 0.0, "kurt": [], "chan": 0, "n": 0})
        st["absmax"] = max(st["absmax"], float(flat.abs().max()))
        d = flat - flat.mean(dim=1, keepdim=True)
        var = d.pow(2).mean(dim=1)
        st["kurt"].append(d.pow(4).mean(dim=1) / var.pow(2).clamp(min=1e-30))
        st["chan"] = st["chan"] + flat.abs().sum(dim=0)
        st["n"] += flat.shape[0]
        return x

    def residual(self, layer, h):
        k = self.k
        r = self.res.setdefault(layer, {"registers": 0.0, "bos": 0.0, "tokens": 0.0})
        if k:
            r["registers"] = max(r["registers"], float(h[:, :k].abs().max()))
        r["bos"] = max(r["bos"], float(h[:, k].abs().max()))
        r["tokens"] = max(r["tokens"], float(h[:, k + 1:].abs().max()))


def collect(model_dir, args):
    model, manifest = load_decoder(model_dir)
    cfg = model.cfg
    sp = load_tokenizer(args.tokenizer)
    cal = split_tokens(sp, args.tokenizer, args.corpus, "calibration", args.cache)
    n = args.ctx - 1
    hooks = StatHooks(cfg.registers)
    p = quant.params_from_decoder(model)
    with torch.no_grad():
        for i in range(args.windows):
            ids = torch.from_numpy(np.concatenate([[1], cal[i * n:(i + 1) * n]]).astype(np.int64))[None]
            quant.forward(p, cfg, ids, hooks)
    layers = []
    for l in range(cfg.layers):
        row = {"layer": l, "residual_max_abs": hooks.res[l], "sites": {}}
        for site in quant.SITES:
            st = hooks.sites[(site, l)]
            kurt = torch.cat(st["kurt"])
            chan = st["chan"] / st["n"]
            row["sites"][site] = {"max_abs": st["absmax"], "kurtosis_mean": float(kurt.mean()),
                                  "kurtosis_max": float(kurt.max()),
                                  "channel_outlier_ratio": float(chan.max() / chan.median())}
        layers.append(row)
    return {"model": manifest["name"], "registers": cfg.registers, "windows": args.windows, "ctx": args.ctx,
            "layers": layers}


def plot(rep, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    L = [r["layer"] for r in rep["layers"]]
    fig, ax = plt.subplots(1, 3, figsize=(15, 4))
    for key, style in (("registers", "s-"), ("bos", "o-"), ("tokens", "^-")):
        if key == "registers" and not rep["registers"]:
            continue
        ax[0].plot(L, [r["residual_max_abs"][key] for r in rep["layers"]], style, label=key)
    ax[0].set_yscale("log")
    ax[0].set_title("residual stream max|x| at layer input")
    for site in quant.SITES:
        ax[1].plot(L, [r["sites"][site]["kurtosis_mean"] for r in rep["layers"]], "o-", label=site)
        ax[2].plot(L, [r["sites"][site]["channel_outlier_ratio"] for r in rep["layers"]], "o-", label=site)
    ax[1].axhline(3.0, color="gray", lw=0.8, ls="--")
    ax[1].set_yscale("log")
    ax[1].set_title("site input kurtosis (mean over tokens; normal = 3)")
    ax[2].set_yscale("log")
    ax[2].set_title("channel outlier ratio (max / median mean|x|)")
    for a in ax:
        a.set_xlabel("layer")
        a.set_xticks(L)
        a.legend(fontsize=8)
    fig.suptitle(rep["model"])
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dirs", nargs="+")
    ap.add_argument("--out", default="docs/models")
    ap.add_argument("--corpus", default="models/data/corpus")
    ap.add_argument("--tokenizer", default="models/tokenizer/w4a4c_bpe4096.model")
    ap.add_argument("--cache", default="models/data/tokens")
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--windows", type=int, default=8)
    args = ap.parse_args()
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    for d in args.model_dirs:
        rep = collect(d, args)
        name = rep["model"]
        with open(os.path.join(args.out, name + "-activations.json"), "w") as f:
            json.dump(rep, f, indent=1)
            f.write("\n")
        plot(rep, os.path.join(args.out, name + "-activations.png"))
        for r in rep["layers"]:
            res = r["residual_max_abs"]
            print("%-18s layer %d  residual max|x| regs %8.2f bos %8.2f tokens %8.2f  | kurtosis %s" % (
                name, r["layer"], res["registers"], res["bos"], res["tokens"],
                " ".join("%s=%.1f" % (s, r["sites"][s]["kurtosis_mean"]) for s in quant.SITES)), flush=True)


if __name__ == "__main__":
    main()
