"""Builds the PyTorch reference decoder from a shipped ONNX file and its
manifest: the architecture comes from the manifest's config, the weights from
the ONNX initializers (float16 upcast to float32), by parameter name."""

import json
import os
import sys

import numpy as np
import onnx
import torch
from onnx import numpy_helper

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
from zoo.w4a4zoo.model import Decoder, ModelConfig  # noqa: E402


def load_manifest(model_dir):
    with open(os.path.join(model_dir, "manifest.json")) as f:
        return json.load(f)


def load_decoder(model_dir):
    manifest = load_manifest(model_dir)
    model = Decoder(ModelConfig(**manifest["config"]))
    proto = onnx.load(os.path.join(model_dir, manifest["onnx"]["file"]))
    inits = {i.name: i for i in proto.graph.initializer}
    state = model.state_dict()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name not in inits:
                raise RuntimeError("%s: parameter %s missing from the ONNX initializers" % (model_dir, name))
            arr = numpy_helper.to_array(inits[name]).astype(np.float32)
            if tuple(arr.shape) != tuple(p.shape):
                raise RuntimeError("%s: %s has shape %s, expected %s" % (model_dir, name, arr.shape, tuple(p.shape)))
            state[name].copy_(torch.from_numpy(arr))
    model.eval()
    return model, manifest
