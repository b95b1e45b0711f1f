"""Builds the PyTorch reference decoder from a shipped ONNX file and its
manifest: the architecture comes from the manifest's config, the weights from
the ONNX initializers (float16 / bfloat16 upcast to float32, inline or
external data), by parameter name, or, where manifest["onnx"] has a
"param_map" (the foreign-style exports under models/zoo/exports/), by that map:

    {our parameter: {"name": initializer, "transpose": bool,
                     optional "rows": [start, end] / "cols": [start, end]}}
    or {our parameter: {"stack": [entry, ...]}}   (e.g. per-layer registers)

An entry's array is the initializer, sliced by rows / cols, then transposed
when asked, then (stack) stacked along a new first axis."""

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


def initializer_f32(init):
    """An initializer as a float32 numpy array; bfloat16 (which numpy lacks)
    decoded from its 16-bit patterns. External data must already be loaded
    (onnx.load does it)."""
    if init.data_type == onnx.TensorProto.BFLOAT16:
        if init.raw_data:
            bits = np.frombuffer(init.raw_data, dtype="<u2")
        else:
            bits = np.asarray(init.int32_data, dtype=np.uint32).astype(np.uint16)
        return (bits.astype(np.uint32) << 16).view(np.float32).reshape(tuple(init.dims))
    return numpy_helper.to_array(init).astype(np.float32)


def mapped_array(inits, entry, where):
    if "stack" in entry:
        return np.stack([mapped_array(inits, e, where) for e in entry["stack"]])
    if entry["name"] not in inits:
        raise RuntimeError("%s: initializer %s (param_map) missing" % (where, entry["name"]))
    arr = initializer_f32(inits[entry["name"]])
    if "rows" in entry:
        arr = arr[entry["rows"][0]:entry["rows"][1]]
    if "cols" in entry:
        arr = arr[:, entry["cols"][0]:entry["cols"][1]]
    return arr.T if entry.get("transpose") else arr


def load_decoder(model_dir):
    manifest = load_manifest(model_dir)
    model = Decoder(ModelConfig(**manifest["config"]))
    proto = onnx.load(os.path.join(model_dir, manifest["onnx"]["file"]))
    inits = {i.name: i for i in proto.graph.initializer}
    param_map = manifest["onnx"].get("param_map")
    state = model.state_dict()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if param_map is not None:
                if name not in param_map:
                    raise RuntimeError("%s: parameter %s missing from the manifest's param_map" % (model_dir, name))
                arr = mapped_array(inits, param_map[name], model_dir)
                if arr.size != p.numel():  # e.g. [1, k, hidden] registers are reshaped
                    raise RuntimeError("%s: %s maps to shape %s, expected %s" % (model_dir, name, arr.shape,
                                                                              tuple(p.shape)))
                state[name].copy_(torch.from_numpy(np.ascontiguousarray(arr).reshape(tuple(p.shape))))
                continue
            if name not in inits:
                raise RuntimeError("%s: parameter %s missing from the ONNX initializers" % (model_dir, name))
            arr = initializer_f32(inits[name])
            if tuple(arr.shape) != tuple(p.shape):
                raise RuntimeError("%s: %s has shape %s, expected %s" % (model_dir, name, arr.shape, tuple(p.shape)))
            state[name].copy_(torch.from_numpy(arr))
    model.eval()
    return model, manifest
