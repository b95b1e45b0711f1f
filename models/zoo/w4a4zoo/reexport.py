"""Re-exports trained models from their checkpoints (models/data/checkpoints)
with the current export code and configs, and updates the manifests' ONNX
hash and config. Weights and therefore perplexities are unchanged.

    /usr/bin/python3 -m models.zoo.w4a4zoo.reexport baseline dr_sink ...
"""

import argparse
import json
import os

import torch

from . import configs
from .export import export_onnx
from .model import Decoder


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="+")
    ap.add_argument("--checkpoints", default="models/data/checkpoints")
    ap.add_argument("--out", default="models/zoo")
    args = ap.parse_args()
    torch.set_num_threads(1)
    for name in args.names:
        cfg = configs.TRAINED[name]["model"]
        model = Decoder(cfg)
        state = torch.load(os.path.join(args.checkpoints, name + ".pt"))
        model.load_state_dict(state["model"])
        out = os.path.join(args.out, name)
        digest = export_onnx(model.eval(), os.path.join(out, "model.onnx"))
        path = os.path.join(out, "manifest.json")
        with open(path) as f:
            manifest = json.load(f)
        manifest["config"] = cfg.to_dict()
        manifest["onnx"]["sha256"] = digest
        with open(path, "w") as f:
            json.dump(manifest, f, indent=2)
            f.write("\n")
        print("re-exported", name, digest[:12])


if __name__ == "__main__":
    main()
