"""Llama-style SwiGLU decoder with optional Depth Registers, the register
magnitude hinge loss ("DR+sink") and QAT with activation-kurtosis
regularisation.

Depth Registers (our reading of the paper's abstract): k learned vectors per
layer occupy k prefix positions before BOS. At layer 0 the prefix residual is
the layer-0 vectors; at every later layer l the layer-l vectors are added to
the prefix positions' residual before the block. Registers take RoPE positions
0..k-1, BOS position k. The prefix sees only itself (causal), so its keys and
values are constants a compiler can fold. Register positions are never scored.
"""

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class ModelConfig:
    vocab_size: int = 4096
    hidden: int = 256
    layers: int = 6
    heads: int = 4
    kv_heads: int = 4
    head_dim: int = 64
    ffn: int = 768
    max_seq: int = 1024
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    tied: bool = False
    registers: int = 0
    register_layers: str = "all"  # "all": a vector set per layer; "first": layer 0 only
    # RoPE pairing: False rotates (x[i], x[i + d/2]) (Llama / Hugging Face
    # rotate_half), True rotates (x[2i], x[2i+1]) (GPT-J, Meta's original).
    rope_interleaved: bool = False

    def to_dict(self):
        return asdict(self)


@dataclass
class LossConfig:
    # DR+sink hinge: registers' RMS pushed above reg_margin, token residual RMS
    # penalised above tok_margin, at every layer's input.
    reg_hinge_weight: float = 0.0
    reg_margin: float = 10.0
    tok_hinge_weight: float = 0.0
    tok_margin: float = 4.0
    # QAT: per-token symmetric fake quantization (straight-through) of every
    # block linear's input, optional per-channel weight fake quantization, and
    # a penalty (kurtosis - target)^2 on every block linear's output.
    qat_act_bits: int = 0
    qat_weight_bits: int = 0
    kurtosis_weight: float = 0.0
    kurtosis_target: float = 1.8

    def to_dict(self):
        return asdict(self)


def fake_quant_per_row(x, bits):
    """Symmetric RTN of each vector of the last axis (DESIGN.md), straight
    through: forward is the quantized value, the gradient is the identity."""
    qmax = 2 ** (bits - 1) - 1
    s = x.detach().abs().amax(dim=-1, keepdim=True) / qmax
    s = torch.where(s == 0, torch.ones_like(s), s)
    q = torch.clamp(torch.round(x / s), -qmax - 1, qmax) * s
    return x + (q - x).detach()


def kurtosis_per_row(y):
    mu = y.mean(dim=-1, keepdim=True)
    d = y - mu
    var = d.pow(2).mean(dim=-1)
    return d.pow(4).mean(dim=-1) / (var.pow(2) + 1e-12)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x / torch.sqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps) * self.weight


class Linear(nn.Linear):
    """nn.Linear without bias whose QAT behaviour is switched by the model."""

    def __init__(self, fan_in, fan_out):
        super().__init__(fan_in, fan_out, bias=False)
        self.act_bits = 0
        self.weight_bits = 0
        self.collect = None  # list to append output kurtosis to, or None

    def forward(self, x):
        w = self.weight
        if self.act_bits:
            x = fake_quant_per_row(x, self.act_bits)
        if self.weight_bits:
            w = fake_quant_per_row(w, self.weight_bits)
        y = F.linear(x, w)
        if self.collect is not None:
            self.collect.append(kurtosis_per_row(y).mean())
        return y


def rope_tables(cfg):
    inv = 1.0 / (cfg.rope_theta ** (torch.arange(0, cfg.head_dim, 2, dtype=torch.float64) / cfg.head_dim))
    pos = torch.arange(cfg.max_seq, dtype=torch.float64)
    ang = torch.outer(pos, inv)
    ang = ang.repeat_interleave(2, dim=-1) if cfg.rope_interleaved else torch.cat([ang, ang], dim=-1)
    return ang.cos().float(), ang.sin().float()


def apply_rope(x, cos, sin, interleaved=False):
    """cos/sin from rope_tables with the same convention."""
    if interleaved:
        rotated = torch.stack([-x[..., 1::2], x[..., ::2]], dim=-1).flatten(-2)
    else:
        half = x.shape[-1] // 2
        rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.wq = Linear(cfg.hidden, cfg.heads * cfg.head_dim)
        self.wk = Linear(cfg.hidden, cfg.kv_heads * cfg.head_dim)
        self.wv = Linear(cfg.hidden, cfg.kv_heads * cfg.head_dim)
        self.wo = Linear(cfg.heads * cfg.head_dim, cfg.hidden)

    def forward(self, x, cos, sin, mask):
        cfg = self.cfg
        b, t, _ = x.shape
        q = self.wq(x).reshape(b, t, cfg.heads, cfg.head_dim).transpose(1, 2)
        k = self.wk(x).reshape(b, t, cfg.kv_heads, cfg.head_dim).transpose(1, 2)
        v = self.wv(x).reshape(b, t, cfg.kv_heads, cfg.head_dim).transpose(1, 2)
        il = cfg.rope_interleaved
        q, k = apply_rope(q, cos, sin, il), apply_rope(k, cos, sin, il)
        if cfg.kv_heads != cfg.heads:
            rep = cfg.heads // cfg.kv_heads
            k = k[:, :, None].expand(b, cfg.kv_heads, rep, t, cfg.head_dim).reshape(b, cfg.heads, t, cfg.head_dim)
            v = v[:, :, None].expand(b, cfg.kv_heads, rep, t, cfg.head_dim).reshape(b, cfg.heads, t, cfg.head_dim)
        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(cfg.head_dim)
        scores = scores.masked_fill(mask, float("-inf"))
        out = torch.matmul(torch.softmax(scores, dim=-1), v)
        out = out.transpose(1, 2).reshape(b, t, cfg.heads * cfg.head_dim)
        return self.wo(out)


class FeedForward(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.w1 = Linear(cfg.hidden, cfg.ffn)
        self.w3 = Linear(cfg.hidden, cfg.ffn)
        self.w2 = Linear(cfg.ffn, cfg.hidden)

    def forward(self, x):
        a = self.w1(x)
        return self.w2(a * torch.sigmoid(a) * self.w3(x))


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.attention_norm = RMSNorm(cfg.hidden, cfg.norm_eps)
        self.attention = Attention(cfg)
        self.ffn_norm = RMSNorm(cfg.hidden, cfg.norm_eps)
        self.feed_forward = FeedForward(cfg)

    def forward(self, h, cos, sin, mask):
        h = h + self.attention(self.attention_norm(h), cos, sin, mask)
        return h + self.feed_forward(self.ffn_norm(h))


class Decoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.tok_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden)
        if cfg.registers:
            n = cfg.layers if cfg.register_layers == "all" else 1
            self.registers = nn.Parameter(torch.randn(n, cfg.registers, cfg.hidden) * 0.02)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.norm = RMSNorm(cfg.hidden, cfg.norm_eps)
        self.output = None if cfg.tied else nn.Linear(cfg.hidden, cfg.vocab_size, bias=False)
        cos, sin = rope_tables(cfg)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(self._init)
        self.residual_stats = None  # list of (layer, register rms, token rms) when set

    @staticmethod
    def _init(m):
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    def block_linears(self):
        return [m for layer in self.layers for m in layer.modules() if isinstance(m, Linear)]

    def set_qat(self, act_bits, weight_bits):
        for m in self.block_linears():
            m.act_bits, m.weight_bits = act_bits, weight_bits

    def forward(self, ids):
        """ids [batch, seq] (starting with BOS) -> logits [batch, seq, vocab]."""
        cfg = self.cfg
        k = cfg.registers
        h = self.tok_embeddings(ids)
        b = ids.shape[0]
        if k:
            h = torch.cat([self.registers[0][None].expand(b, k, cfg.hidden), h], dim=1)
        t = h.shape[1]
        cos, sin = self.rope_cos[:t], self.rope_sin[:t]
        pos = torch.arange(t, device=ids.device)
        mask = pos[None, :] > pos[:, None]  # True above the diagonal: future keys
        for i, layer in enumerate(self.layers):
            if k and i > 0 and cfg.register_layers == "all":
                h = torch.cat([h[:, :k] + self.registers[i], h[:, k:]], dim=1)
            if self.residual_stats is not None:
                rms = h.pow(2).mean(dim=-1).sqrt()
                self.residual_stats.append((rms[:, :k], rms[:, k:]))
            h = layer(h, cos, sin, mask)
        h = self.norm(h[:, k:] if k else h)
        if self.output is None:
            return F.linear(h, self.tok_embeddings.weight)
        return self.output(h)


def num_params(model):
    return sum(p.numel() for p in model.parameters())


def training_loss(model, ids, loss_cfg: LossConfig):
    """Next-token cross entropy (BOS and registers never targets) plus the
    configured auxiliary terms. Returns (total, parts dict)."""
    collect = [] if loss_cfg.kurtosis_weight else None
    for m in model.block_linears():
        m.collect = collect
    want_stats = loss_cfg.reg_hinge_weight or loss_cfg.tok_hinge_weight
    model.residual_stats = [] if want_stats else None
    logits = model(ids)
    ce = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
    total, parts = ce, {"ce": ce.item()}
    if want_stats:
        stats = model.residual_stats
        if loss_cfg.reg_hinge_weight and model.cfg.registers:
            reg = torch.stack([F.relu(loss_cfg.reg_margin - r).mean() for r, _ in stats]).mean()
            total = total + loss_cfg.reg_hinge_weight * reg
            parts["reg_hinge"] = reg.item()
        if loss_cfg.tok_hinge_weight:
            tok = torch.stack([F.relu(t - loss_cfg.tok_margin).mean() for _, t in stats]).mean()
            total = total + loss_cfg.tok_hinge_weight * tok
            parts["tok_hinge"] = tok.item()
    if collect:
        kurt = torch.stack([(c - loss_cfg.kurtosis_target) ** 2 for c in collect]).mean()
        total = total + loss_cfg.kurtosis_weight * kurt
        parts["kurtosis"] = kurt.item()
    for m in model.block_linears():
        m.collect = None
    model.residual_stats = None
    return total, parts
