"""Synthetic model variants for the importer (random weights, not trained):
GQA, tied embeddings, hidden sizes that are not powers of two, head dims 32
and 64, several register counts. Exported like the trained models (opset 17,
fp16 initializers) with a manifest.

    /usr/bin/python3 -m models.zoo.w4a4zoo.synthetic --out models/zoo/synthetic
"""

import argparse
import json
import os

import torch

from .export import OPSET, export_onnx
from .model import Decoder, ModelConfig, num_params

BASE = dict(vocab_size=256, layers=2, max_seq=128)
VARIANTS = {
    "gqa": dict(hidden=128, heads=4, kv_heads=2, head_dim=32, ffn=384),
    "tied": dict(hidden=128, heads=2, kv_heads=2, head_dim=64, ffn=384, tied=True),
    "hidden192": dict(hidden=192, heads=6, kv_heads=6, head_dim=32, ffn=384),
    "hidden320": dict(hidden=320, heads=5, kv_heads=5, head_dim=64, ffn=320, layers=1),
    "registers8_hd64": dict(hidden=128, heads=2, kv_heads=2, head_dim=64, ffn=384, registers=8),
    "registers1_first": dict(hidden=128, heads=4, kv_heads=4, head_dim=32, ffn=384, registers=1,
                             register_layers="first"),
    "registers4_gqa_tied": dict(hidden=192, heads=6, kv_heads=2, head_dim=32, ffn=384, registers=4, tied=True),
}


def build(name, seed):
    torch.manual_seed(seed)
    model = Decoder(ModelConfig(**dict(BASE, **VARIANTS[name])))
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if pname.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))     # non-trivial gains
            elif pname == "registers":
                p.copy_(torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) / p.shape[-1] ** 0.5)
            p.copy_(p.half().float())
    return model.eval()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="models/zoo/synthetic")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    torch.set_num_threads(1)
    for i, name in enumerate(VARIANTS):
        model = build(name, args.seed + i)
        out = os.path.join(args.out, name)
        os.makedirs(out, exist_ok=True)
        digest = export_onnx(model, os.path.join(out, "model.onnx"))
        manifest = {"name": name, "synthetic": True, "config": model.cfg.to_dict(), "seed": args.seed + i,
                    "parameters": num_params(model),
                    "onnx": {"file": "model.onnx", "opset": OPSET, "weights": "float16", "sha256": digest}}
        with open(os.path.join(out, "manifest.json"), "w") as f:
            json.dump(manifest, f, indent=2)
            f.write("\n")
        print("synthetic %-20s %7d parameters" % (name, num_params(model)), flush=True)


if __name__ == "__main__":
    main()
