"""Styles gemm_fp16 and gemm_bf16: every linear is a 2-D Gemm with transB=1
(activations flattened to [tokens, hidden] first, F.linear on 2-D input, as
exporters of 2-D (Keras / TF-converted, fairseq incremental) code emit), the
lm_head a Gemm on the tied embedding; the parameters stored as float16
(gemm_fp16) or bfloat16 (gemm_bf16) initializers, each followed by a Cast to
float32 (like our export.py's to_half). gemm_fp16's Gemms have no C input;
gemm_bf16's carry an all-zero bias C (bias=True linears zero-initialised,
as a bias-ful checkpoint of a bias-free model would export), stored bf16
too. RoPE tables are computed in the graph from position arange (Range, Cos,
Sin). torch.onnx.export opset 17, no constant folding. Weights:
models/zoo/tiny_baseline (bf16: rounded to bfloat16, the reference reads the
rounded values back).

Input input_ids [batch, seq] -> logits [batch, seq, vocab].
"""

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper

from common import (initializer_f32, llm_inputs, llm_outputs, param_map_by_content, round_params, save,
                    torch_export, trained)


class Linear2d(nn.Module):
    def __init__(self, fan_in, fan_out, bias):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(fan_out, fan_in))
        self.bias = nn.Parameter(torch.zeros(fan_out)) if bias else None

    def forward(self, x2d):
        if self.bias is None:
            return torch.addmm(torch.zeros(()), x2d, self.weight.t(), beta=0.0)
        return F.linear(x2d, self.weight, self.bias)


class Norm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.eps = eps
        self.scale = nn.Parameter(torch.ones(n))

    def forward(self, x):
        ms = torch.mean(x * x, dim=-1, keepdim=True)
        return self.scale * (x / torch.sqrt(ms + self.eps))


class Layer(nn.Module):
    def __init__(self, c, bias):
        super().__init__()
        self.c = c
        self.pre_attn_norm = Norm(c.hidden, c.norm_eps)
        self.query = Linear2d(c.hidden, c.heads * c.head_dim, bias)
        self.key = Linear2d(c.hidden, c.kv_heads * c.head_dim, bias)
        self.value = Linear2d(c.hidden, c.kv_heads * c.head_dim, bias)
        self.attn_out = Linear2d(c.heads * c.head_dim, c.hidden, bias)
        self.pre_mlp_norm = Norm(c.hidden, c.norm_eps)
        self.gate = Linear2d(c.hidden, c.ffn, bias)
        self.up = Linear2d(c.hidden, c.ffn, bias)
        self.down = Linear2d(c.ffn, c.hidden, bias)

    def forward(self, x2d, b, t, cos, sin, allowed):
        c = self.c
        h = self.pre_attn_norm(x2d)
        q = self.query(h).reshape(b, t, c.heads, c.head_dim).transpose(1, 2)
        k = self.key(h).reshape(b, t, c.kv_heads, c.head_dim).transpose(1, 2)
        v = self.value(h).reshape(b, t, c.kv_heads, c.head_dim).transpose(1, 2)
        d = c.head_dim // 2
        q = q * cos + torch.cat([-q[..., d:], q[..., :d]], -1) * sin
        k = k * cos + torch.cat([-k[..., d:], k[..., :d]], -1) * sin
        s = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(c.head_dim))
        s = torch.where(allowed, s, torch.tensor(float("-inf")))
        a = torch.matmul(torch.softmax(s, -1), v).transpose(1, 2).reshape(b * t, c.heads * c.head_dim)
        x2d = x2d + self.attn_out(a)
        h = self.pre_mlp_norm(x2d)
        g = self.gate(h)
        return x2d + self.down(g * torch.sigmoid(g) * self.up(h))


class GemmLM(nn.Module):
    def __init__(self, c, bias):
        super().__init__()
        self.c = c
        self.embedding = nn.Parameter(torch.zeros(c.vocab_size, c.hidden))
        self.layer = nn.ModuleList(Layer(c, bias) for _ in range(c.layers))
        self.final_norm = Norm(c.hidden, c.norm_eps)
        self.register_buffer("inv_freq", 1.0 / (c.rope_theta ** (torch.arange(0, c.head_dim, 2).float()
                                                                  / c.head_dim)), persistent=False)

    def forward(self, input_ids):
        b, t = input_ids.shape
        x2d = F.embedding(input_ids.reshape(-1), self.embedding)
        pos = torch.arange(t, dtype=torch.float32)
        ang = pos[:, None] * self.inv_freq[None, :]
        ang = torch.cat([ang, ang], -1)
        cos, sin = torch.cos(ang), torch.sin(ang)
        allowed = pos[None, :] <= pos[:, None]
        for layer in self.layer:
            x2d = layer(x2d, b, t, cos, sin, allowed)
        logits = torch.addmm(torch.zeros(()), self.final_norm(x2d), self.embedding.t(), beta=0.0)
        return logits.reshape(b, t, self.c.vocab_size)


OURS = {"tok_embeddings.weight": "embedding", "norm.weight": "final_norm.scale"}
PER_LAYER = {"attention_norm.weight": "pre_attn_norm.scale", "attention.wq.weight": "query.weight",
             "attention.wk.weight": "key.weight", "attention.wv.weight": "value.weight",
             "attention.wo.weight": "attn_out.weight", "ffn_norm.weight": "pre_mlp_norm.scale",
             "feed_forward.w1.weight": "gate.weight", "feed_forward.w3.weight": "up.weight",
             "feed_forward.w2.weight": "down.weight"}


def rename(name):
    if name in OURS:
        return OURS[name]
    _, l, rest = name.split(".", 2)
    return "layer.%s.%s" % (l, PER_LAYER[rest])


def to_lowp(proto, names, dtype):
    """Parameter initializers -> dtype (FLOAT16 / BFLOAT16) + Cast to float32."""
    graph = proto.graph
    casts = []
    for init in graph.initializer:
        if init.name not in names:
            continue
        arr = initializer_f32(init)
        if dtype == TensorProto.FLOAT16:
            new = numpy_helper.from_array(arr.astype(np.float16), init.name)
        else:
            bits = (np.ascontiguousarray(arr).view(np.uint32) >> 16).astype("<u2")
            assert np.array_equal((bits.astype(np.uint32) << 16).view(np.float32), arr), "not bf16-exact"
            new = helper.make_tensor(init.name, TensorProto.BFLOAT16, arr.shape, bits.tobytes(), raw=True)
        init.CopyFrom(new)
        f32 = init.name + "_fp32"
        for node in graph.node:
            for i, inp in enumerate(node.input):
                if inp == init.name:
                    node.input[i] = f32
        casts.append(helper.make_node("Cast", [init.name], [f32], name="Cast_" + init.name, to=TensorProto.FLOAT))
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)


def drop_zero_c(proto):
    """Gemm(A, B, C=0, beta=0) -> Gemm(A, B): C is optional since opset 11."""
    consts = {n.output[0]: n for n in proto.graph.node if n.op_type == "Constant"}
    used = set()
    for node in proto.graph.node:
        if node.op_type == "Gemm" and len(node.input) == 3:
            del node.input[2]
            for a in list(node.attribute):
                if a.name == "beta":
                    node.attribute.remove(a)
    for node in proto.graph.node:
        used.update(node.input)
    keep = [n for n in proto.graph.node if not (n.op_type == "Constant" and n.output[0] not in used)]
    del proto.graph.node[:]
    proto.graph.node.extend(keep)


def build(name, dtype):
    decoder = trained("tiny_baseline")
    bias = dtype == TensorProto.BFLOAT16
    if bias:
        round_params(decoder, torch.bfloat16)
    cfg = decoder.cfg
    m = GemmLM(cfg, bias).eval()
    state = {rename(k): v for k, v in decoder.state_dict().items() if not k.startswith("rope_")}
    m.load_state_dict(state, strict=False)
    assert set(m.state_dict()) - set(state) == ({n for n, _ in m.named_parameters() if n.endswith(".bias")})
    ids = torch.ones(1, 6, dtype=torch.long)
    proto = torch_export(m, (ids,), ["input_ids"], ["logits"],
                         {"input_ids": {0: "batch", 1: "seq"}, "logits": {0: "batch", 1: "seq"}}, fold=False)
    if not bias:
        drop_zero_c(proto)
    to_lowp(proto, {n for n, _ in m.named_parameters()}, dtype)
    label = "float16" if dtype == TensorProto.FLOAT16 else "bfloat16"
    notes = ("block Gemms have C = all-zero bias vectors (bfloat16 + Cast; torch deduplicates equal ones through "
             "Identity), the lm_head Gemm C = scalar 0 with beta=0; the Decoder has no biases"
             if bias else "Gemm(A, B) with transB=1, no C")
    return save(proto, name, cfg, "llama", "2-D Gemm linears (transB=1) with %s initializers + Cast to float32" % label,
                llm_inputs(cfg, ["input_ids"]), llm_outputs(cfg), param_map_by_content(proto, decoder),
                "tiny_baseline" + (" (rounded to bfloat16)" if bias else ""), weights=label, notes=notes)


BUILDERS = {"gemm_fp16": lambda name: build(name, TensorProto.FLOAT16),
            "gemm_bf16": lambda name: build(name, TensorProto.BFLOAT16)}
