#!/usr/bin/python3
"""Exports a zoo model (models/zoo/NAME: our Decoder) the way optimum exports
Hugging Face's LlamaForCausalLM with a KV cache (decoder-with-past:
past_key_values.{i}.key/value in, present.{i}.key/value out), into OUT_DIR
(model.onnx + model.onnx.data + manifest.json). For the decode benchmark
(scripts/bench-ppl.sh): onnxruntime-node decodes through this export's
past, w4a4 through its compiled KV cache, on the same weights.

    /usr/bin/python3 models/exporters/export_past.py models/zoo/baseline OUT_DIR
"""

import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import common  # noqa: E402
import hf_llama  # noqa: E402


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: export_past.py MODEL_DIR OUT_DIR")
    model_dir, out_dir = sys.argv[1:]
    torch.set_num_threads(1)
    decoder, _ = common.load_decoder(os.path.abspath(model_dir))
    if decoder.cfg.registers:
        sys.exit("export_past.py: %s has Depth Registers; the HF-style past export has no prefix" % model_dir)
    parent = os.path.abspath(os.path.dirname(out_dir.rstrip("/")) or ".")
    common.EXPORTS = parent
    hf_llama.EXPORTS = parent
    hf_llama._export_past(decoder, os.path.basename(out_dir.rstrip("/")),
                          "optimum decoder-with-past export of %s (benchmark)" % model_dir,
                          os.path.basename(model_dir.rstrip("/")))


if __name__ == "__main__":
    main()
