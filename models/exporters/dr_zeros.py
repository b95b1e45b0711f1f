"""Styles dr_zeros and dr_logits_with_registers: Depth Registers written
differently from our Decoder. The register prefix starts as zeros
(torch.zeros(b, k, hidden): ONNX ConstantOfShape) concatenated before the
token embeddings, and every layer, layer 0 included, adds its register set
with slice + add + concat: h = cat([h[:, :k] + R[l], h[:, k:]], 1). That is
our semantics (prefix = R[0] at layer 0, + R[l] later). Registers take RoPE
positions 0..k-1, BOS position k (positions from arange inside the graph).
Module names like Meta's llama reference code (tok_embeddings,
layers.{i}.attention.wq, feed_forward.w1, ...) but registers as one
[layers, k, hidden] parameter "depth_registers" (read per layer by Gather).
torch.onnx.export opset 17 without constant folding (folding would add a
transposed 1 MB copy of the tied embedding for the lm_head MatMul, past the
2 MB size cap). Weights: models/zoo/tiny_dr_sink.

dr_zeros returns logits of the token positions only; dr_logits_with_registers
returns all k + seq positions (manifest outputs.logits_include_registers = k:
the consumer strips them).
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from common import llm_inputs, llm_outputs, param_map_by_content, save, torch_export, trained


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(n))

    def _norm(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)

    def forward(self, x):
        return self._norm(x.float()).type_as(x) * self.weight


def precompute_freqs(dim, end, theta):
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 2)[: (dim // 2)].float() / dim))
    t = torch.arange(end, dtype=torch.float32)
    freqs = torch.outer(t, freqs)
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.n_heads, self.n_kv, self.hd = c.heads, c.kv_heads, c.head_dim
        self.wq = nn.Linear(c.hidden, c.heads * c.head_dim, bias=False)
        self.wk = nn.Linear(c.hidden, c.kv_heads * c.head_dim, bias=False)
        self.wv = nn.Linear(c.hidden, c.kv_heads * c.head_dim, bias=False)
        self.wo = nn.Linear(c.heads * c.head_dim, c.hidden, bias=False)

    def forward(self, x, cos, sin, mask):
        b, t, _ = x.shape
        q = self.wq(x).view(b, t, self.n_heads, self.hd).transpose(1, 2)
        k = self.wk(x).view(b, t, self.n_kv, self.hd).transpose(1, 2)
        v = self.wv(x).view(b, t, self.n_kv, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if self.n_kv != self.n_heads:
            k = k.repeat_interleave(self.n_heads // self.n_kv, dim=1)
            v = v.repeat_interleave(self.n_heads // self.n_kv, dim=1)
        scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.hd)
        scores = scores + mask
        out = torch.matmul(F.softmax(scores.float(), dim=-1).type_as(q), v)
        return self.wo(out.transpose(1, 2).contiguous().view(b, t, -1))


class FeedForward(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.w1 = nn.Linear(c.hidden, c.ffn, bias=False)
        self.w2 = nn.Linear(c.ffn, c.hidden, bias=False)
        self.w3 = nn.Linear(c.hidden, c.ffn, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class TransformerBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attention = Attention(c)
        self.feed_forward = FeedForward(c)
        self.attention_norm = RMSNorm(c.hidden, c.norm_eps)
        self.ffn_norm = RMSNorm(c.hidden, c.norm_eps)

    def forward(self, x, cos, sin, mask):
        h = x + self.attention(self.attention_norm(x), cos, sin, mask)
        return h + self.feed_forward(self.ffn_norm(h))


class RegisterTransformer(nn.Module):
    def __init__(self, c, logits_with_registers):
        super().__init__()
        self.c, self.k, self.with_registers = c, c.registers, logits_with_registers
        self.tok_embeddings = nn.Embedding(c.vocab_size, c.hidden)
        self.depth_registers = nn.Parameter(torch.zeros(c.layers, c.registers, c.hidden))
        self.layers = nn.ModuleList(TransformerBlock(c) for _ in range(c.layers))
        self.norm = RMSNorm(c.hidden, c.norm_eps)
        self.output = nn.Linear(c.hidden, c.vocab_size, bias=False)
        self.output.weight = self.tok_embeddings.weight
        cos, sin = precompute_freqs(c.head_dim, c.max_seq, c.rope_theta)
        self.register_buffer("freqs_cos", cos, persistent=False)
        self.register_buffer("freqs_sin", sin, persistent=False)

    def forward(self, tokens):
        b, n = tokens.shape
        k = self.k
        h = self.tok_embeddings(tokens)
        h = torch.cat([torch.zeros(b, k, self.c.hidden), h], dim=1)
        t = n + k
        cos, sin = self.freqs_cos[:t], self.freqs_sin[:t]
        mask = torch.full((t, t), float("-inf")).triu(1)
        for l, layer in enumerate(self.layers):
            h = torch.cat([h[:, :k] + self.depth_registers[l], h[:, k:]], dim=1)
            h = layer(h, cos, sin, mask)
        h = self.norm(h)
        if not self.with_registers:
            h = h[:, k:]
        return self.output(h).float()


def build(name, with_registers):
    decoder = trained("tiny_dr_sink")
    cfg = decoder.cfg
    assert cfg.register_layers == "all" and cfg.tied
    m = RegisterTransformer(cfg, with_registers)
    state = {k: v for k, v in decoder.state_dict().items() if not k.startswith("rope_")}
    state["depth_registers"] = state.pop("registers")
    state["output.weight"] = state["tok_embeddings.weight"]
    m.load_state_dict(state)
    ids = torch.ones(1, 6, dtype=torch.long)
    proto = torch_export(m, (ids,), ["input_ids"], ["logits"],
                         {"input_ids": {0: "batch", 1: "seq"}, "logits": {0: "batch", 1: "seq_out"}}, fold=False)
    what = "all k + seq positions (registers first)" if with_registers else "token positions only"
    return save(proto, name, cfg, "llama-depth-registers",
                "Meta llama-style reference code with Depth Registers as a zero prefix (ConstantOfShape) plus "
                "per-layer slice + add + concat at every layer including 0; logits of " + what,
                llm_inputs(cfg, ["input_ids"]),
                llm_outputs(cfg, registers_in_logits=cfg.registers if with_registers else 0),
                param_map_by_content(proto, decoder), "tiny_dr_sink")


BUILDERS = {"dr_zeros": lambda name: build(name, False),
            "dr_logits_with_registers": lambda name: build(name, True)}
