"""Hand-built decoder graphs (onnx.helper, no torch export) shared by the
opset23 and genai_contrib styles: our Decoder's weights laid out the way
ONNX-native builders do (linears as MatMul with [in, out] initializers named
like the onnxruntime-genai model builder: model.layers.{i}.attn.q_proj.MatMul.weight
...), plus the param_map that reads them back."""

import numpy as np
import torch
from onnx import TensorProto, helper

from common import GraphBuilder


def rope_cache(cfg, n=None):
    """cos/sin caches [max_pos, head_dim/2] (float32, computed in float64)."""
    n = n or cfg.max_seq
    inv = 1.0 / (cfg.rope_theta ** (np.arange(0, cfg.head_dim, 2, dtype=np.float64) / cfg.head_dim))
    ang = np.outer(np.arange(n, dtype=np.float64), inv)
    return np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)


class DecoderGraph(GraphBuilder):
    """Weights of a Decoder as initializers; helpers for the common parts."""

    def __init__(self, decoder):
        super().__init__()
        self.decoder, self.cfg = decoder, decoder.cfg
        self.state = {k: v.detach().numpy().astype(np.float32) for k, v in decoder.state_dict().items()
                      if not k.startswith("rope_")}
        self.param_map = {}

    def weight(self, ours, name, transpose=True):
        """Initializer `name` = our parameter (transposed to [in, out] for linears)."""
        arr = self.state[ours]
        self.init(name, np.ascontiguousarray(arr.T if transpose else arr))
        self.param_map[ours] = {"name": name, "transpose": transpose}
        return name

    def packed(self, ours_list, name):
        """One [in, sum(out)] initializer of several linears (packed QKV /
        gate-up); param_map entries by column range."""
        arrs = [self.state[o].T for o in ours_list]
        self.init(name, np.ascontiguousarray(np.concatenate(arrs, axis=1)))
        start = 0
        for o, a in zip(ours_list, arrs):
            self.param_map[o] = {"name": name, "transpose": True, "cols": [start, start + a.shape[1]]}
            start += a.shape[1]
        return name

    def linear(self, x, ours, name):
        return self.op("MatMul", [x, self.weight(ours, name)])

    def swiglu_mlp(self, x, l, prefix):
        pre = "layers.%d.feed_forward." % l
        g = self.linear(x, pre + "w1.weight", prefix + "gate_proj.MatMul.weight")
        u = self.linear(x, pre + "w3.weight", prefix + "up_proj.MatMul.weight")
        act = self.op("Mul", [g, self.op("Sigmoid", [g])])
        return self.linear(self.op("Mul", [act, u]), pre + "w2.weight", prefix + "down_proj.MatMul.weight")

    def embed(self, ids):
        return self.op("Gather", [self.weight("tok_embeddings.weight", "model.embed_tokens.weight", False), ids])

    def lm_head(self, x):
        """Tied: MatMul by the transposed embedding (Transpose node, one copy)."""
        if self.cfg.tied:
            wt = self.op("Transpose", ["model.embed_tokens.weight"], perm=[1, 0])
            return self.op("MatMul", [x, wt], outputs=["logits"])
        return self.op("MatMul", [x, self.weight("output.weight", "lm_head.MatMul.weight")], outputs=["logits"])

    def model(self, inputs, outputs, opsets, ir_version, name):
        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.inits)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets],
                                 ir_version=ir_version, producer_name="w4a4c models/exporters")


def int_input(name, dims, elem=TensorProto.INT64):
    return helper.make_tensor_value_info(name, elem, dims)


def float_io(name, dims):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)
