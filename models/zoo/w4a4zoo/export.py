"""ONNX export (opset 17, dynamic batch and sequence axes) with the model's
parameters stored as float16 initializers, each followed by a Cast to float32,
so that the graph computes in fp32 on exactly the fp16-rounded weights the
manifest's perplexity was measured with. Initializers keep the PyTorch
parameter names (do_constant_folding=False)."""

import hashlib
import os
import tempfile

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def export_onnx(model, path, fp16_weights=True):
    model.eval()
    dummy = torch.ones(1, 8, dtype=torch.long)
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "raw.onnx")
        torch.onnx.export(model, (dummy,), raw, input_names=["input_ids"], output_names=["logits"],
                          dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "logits": {0: "batch", 1: "seq"}},
                          opset_version=OPSET, do_constant_folding=False)
        proto = onnx.load(raw)
    if fp16_weights:
        params = {name for name, _ in model.named_parameters()}
        to_half(proto, params)
    onnx.checker.check_model(proto)
    data = proto.SerializeToString()
    with open(path, "wb") as f:
        f.write(data)
    return hashlib.sha256(data).hexdigest()


def to_half(proto, names):
    graph = proto.graph
    missing = set(names) - {init.name for init in graph.initializer}
    if missing:
        raise RuntimeError("parameters not found as initializers: %s" % sorted(missing)[:5])
    casts = []
    for init in graph.initializer:
        if init.name not in names or init.data_type != TensorProto.FLOAT:
            continue
        arr = numpy_helper.to_array(init).astype(np.float16)
        init.CopyFrom(numpy_helper.from_array(arr, init.name))
        fp32 = init.name + "_fp32"
        for node in graph.node:
            for i, inp in enumerate(node.input):
                if inp == init.name:
                    node.input[i] = fp32
        casts.append(helper.make_node("Cast", [init.name], [fp32], name="Cast_" + init.name, to=TensorProto.FLOAT))
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
