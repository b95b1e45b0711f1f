"""Fake-quant W4A4 reference: DESIGN.md's transform and quantization math,
written out literally on a functional copy of the model's parameters. This is
the oracle the compiler's end-to-end tests compare against; it shares no code
with the C++ side.

Pipeline (quantize()): fold norms (when asked, and always before a rotation)
-> SmoothQuant (calibrated on the current model) -> QuaRot rotation ->
Depth-Register folding (constant fp KV prefix from the fp weights, as the
compiler's w4a4-fold-registers) -> calibration of GPTQ Hessians on the transformed fp model -> weight quantization
(RTN or GPTQ) of the block linears -> evaluation with per-token dynamic
activation quantization at the sites. lm_head and embedding stay fp.
"""

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from .hadamard import has_hadamard, orthonormal_hadamard, seeded_signs

SITES = ("qkv", "o_proj", "w1w3", "w2")
LINEARS = {"qkv": ("attention.wq", "attention.wk", "attention.wv"), "o_proj": ("attention.wo",),
           "w1w3": ("feed_forward.w1", "feed_forward.w3"), "w2": ("feed_forward.w2",)}


@dataclass
class QuantConfig:
    wbits: int = 4
    abits: int = 4
    method: str = "rtn"            # rtn | gptq
    group: int = 0                 # 0: per output row
    wclip: float = 1.0
    aclip: float = 1.0
    smooth: float = None           # SmoothQuant alpha, or None
    rotate: str = "none"           # none | readers | full
    seed: int = 0
    fold_norms: bool = False
    keep_fp: tuple = ()            # site kinds whose input stays fp
    site_abits: dict = field(default_factory=dict)  # e.g. {"w2": 8}
    kv_bits: int = 0
    kv_symmetric: bool = True
    gptq_damp: float = 0.01
    gptq_act_order: bool = False
    fold_registers: bool = True    # register KV prefix computed with fp weights

    def validate(self, cfg):
        if not (2 <= self.wbits <= 8 or self.wbits == 16) or not (self.abits == 0 or 2 <= self.abits <= 8):
            raise ValueError("wbits must be in [2, 8] or 16 (fp), abits in [2, 8] or 0 (fp); got wbits=%d abits=%d"
                             % (self.wbits, self.abits))
        if self.smooth is not None and not 0.0 <= self.smooth <= 1.0:
            raise ValueError("SmoothQuant alpha must be in [0, 1], got %g" % self.smooth)
        if self.rotate not in ("none", "readers", "full"):
            raise ValueError("rotate must be none|readers|full, got %r" % self.rotate)
        if self.method not in ("rtn", "gptq"):
            raise ValueError("method must be rtn|gptq, got %r" % self.method)
        for width in (cfg.hidden, cfg.ffn, cfg.heads * cfg.head_dim):
            if self.group and width % self.group:
                raise ValueError("group %d does not divide width %d" % (self.group, width))
        if self.gptq_act_order and self.group:
            raise ValueError("GPTQ act-order with groups is not supported")
        if not 0 < self.wclip <= 1 or not 0 < self.aclip <= 1:
            raise ValueError("clip ratios must be in (0, 1]")


# ----------------------------------------------------------------------------
# Quantizers
# ----------------------------------------------------------------------------

def rtn(x, bits, clip=1.0):
    """Symmetric RTN of every vector of the last axis: s = c max|x| / (2^(b-1)-1),
    q = clamp(round_half_even(x / s), -2^(b-1), 2^(b-1)-1), returns q * s
    (0 where s = 0)."""
    qmax = 2 ** (bits - 1) - 1
    s = clip * x.abs().amax(dim=-1, keepdim=True) / qmax
    safe = torch.where(s == 0, torch.ones_like(s), s)
    q = torch.clamp(torch.round(x / safe), -qmax - 1, qmax)
    return torch.where(s == 0, torch.zeros_like(x), q * s)


def rtn_weight(w, bits, group=0, clip=1.0):
    if not group:
        return rtn(w, bits, clip)
    out, inp = w.shape
    return rtn(w.reshape(out, inp // group, group), bits, clip).reshape(out, inp)


def rtn_asym(x, bits):
    lo, hi = x.amin(dim=-1, keepdim=True), x.amax(dim=-1, keepdim=True)
    s = (hi - lo) / (2 ** bits - 1)
    safe = torch.where(s == 0, torch.ones_like(s), s)
    z = torch.round(-lo / safe)
    q = torch.clamp(torch.round(x / safe) + z, 0, 2 ** bits - 1)
    return torch.where(s == 0, x, (q - z) * s)


def gptq(w, hessian, bits, group=0, clip=1.0, damp=0.01, act_order=False):
    """GPTQ (Frantar et al.) in float64. Columns are processed in blocks of
    `group` (or 128 per-channel); a group's scale comes from its columns as
    updated when the block starts; per-channel scales from the original rows."""
    W = w.double().clone()
    H = hessian.double().clone()
    n = W.shape[1]
    qmax = 2 ** (bits - 1) - 1
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    perm = None
    if act_order:
        perm = torch.argsort(torch.diag(H), descending=True)
        W, H = W[:, perm], H[perm][:, perm]
    H += damp * torch.mean(torch.diag(H)) * torch.eye(n, dtype=H.dtype)
    Hinv = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True)
    Q = torch.zeros_like(W)
    block = group or 128
    scale = clip * W.abs().amax(dim=1) / qmax
    for i1 in range(0, n, block):
        i2 = min(i1 + block, n)
        if group:
            scale = clip * W[:, i1:i2].abs().amax(dim=1) / qmax
        safe = torch.where(scale == 0, torch.ones_like(scale), scale)
        W1, Err = W[:, i1:i2].clone(), torch.zeros(W.shape[0], i2 - i1, dtype=W.dtype)
        Hinv1 = Hinv[i1:i2, i1:i2]
        for i in range(i2 - i1):
            col = W1[:, i]
            q = torch.where(scale == 0, torch.zeros_like(col),
                            torch.clamp(torch.round(col / safe), -qmax - 1, qmax) * scale)
            Q[:, i1 + i] = q
            err = (col - q) / Hinv1[i, i]
            W1[:, i:] -= err[:, None] * Hinv1[i, i:][None]
            Err[:, i] = err
        W[:, i2:] -= Err @ Hinv[i1:i2, i2:]
    if perm is not None:
        Q = Q[:, torch.argsort(perm)]
    return Q.float()


# ----------------------------------------------------------------------------
# The functional model
# ----------------------------------------------------------------------------

def params_from_decoder(model):
    p = {k: v.detach().clone().float() for k, v in model.state_dict().items()
         if not k.startswith("rope_")}
    if "output.weight" not in p:
        p["output.weight"] = p["tok_embeddings.weight"].clone()  # untie: lm_head may diverge
    p["_online"] = {}
    return p


def rms_norm(x, gain, eps):
    y = x / torch.sqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps)
    return y * gain if gain is not None else y


def rope_tables(cfg, t):
    inv = 1.0 / (cfg.rope_theta ** (torch.arange(0, cfg.head_dim, 2, dtype=torch.float64) / cfg.head_dim))
    ang = torch.outer(torch.arange(t, dtype=torch.float64), inv)
    if cfg.rope_interleaved:  # pairs (x[2i], x[2i+1]) share angle i
        ang = ang.repeat_interleave(2, dim=-1)
    else:                     # pairs (x[i], x[i + d/2])
        ang = torch.cat([ang, ang], dim=-1)
    return ang.cos().float(), ang.sin().float()


def apply_rope(x, cos, sin, interleaved=False):
    if interleaved:
        return x * cos + torch.stack([-x[..., 1::2], x[..., ::2]], dim=-1).flatten(-2) * sin
    half = x.shape[-1] // 2
    return x * cos + torch.cat([-x[..., half:], x[..., :half]], dim=-1) * sin


class Hooks:
    """Activation quantization and calibration statistics at the sites."""

    def __init__(self, qcfg=None, k=0, collect=None):
        self.qcfg, self.k, self.collect = qcfg, k, collect

    def site(self, kind, layer, x):
        k = self.k
        if self.collect is not None:
            flat = x[:, k:].reshape(-1, x.shape[-1]).double()
            st = self.collect.setdefault((kind, layer), {"absmax": torch.zeros(x.shape[-1], dtype=torch.float64),
                                                         "hessian": None, "count": 0})
            st["absmax"] = torch.maximum(st["absmax"], flat.abs().amax(dim=0))
            if self.collect.get("_hessian"):
                h = flat.T @ flat
                st["hessian"] = h if st["hessian"] is None else st["hessian"] + h
            st["count"] += flat.shape[0]
        q = self.qcfg
        if q is None or kind in q.keep_fp:
            return x
        bits = q.site_abits.get(kind, q.abits)
        if not bits:
            return x
        # Register positions never pass through activation quantization.
        return torch.cat([x[:, :k], rtn(x[:, k:], bits, q.aclip)], dim=1) if k else rtn(x, bits, q.aclip)

    def residual(self, layer, h):
        """Called with each layer's input residual [b, t, hidden]."""

    def kv(self, x):
        """x [b, heads, t, head_dim]: per token per head b-bit, registers fp."""
        q = self.qcfg
        if q is None or not q.kv_bits:
            return x
        k = self.k
        quant = (lambda v: rtn(v, q.kv_bits)) if q.kv_symmetric else (lambda v: rtn_asym(v, q.kv_bits))
        return torch.cat([x[:, :, :k], quant(x[:, :, k:])], dim=2)


def register_rows(p, cfg):
    """Register positions in the residual stream: none once the prefix is
    folded to constant KV."""
    return 0 if "_prefix" in p else cfg.registers


def forward(p, cfg, ids, hooks, record=None):
    """Logits [b, t, vocab] of ids [b, t]. With p["_prefix"] (folded Depth
    Registers) the residual holds token positions only and every layer's
    attention reads the constant register keys/values first; else the k
    register vectors occupy prefix positions. `record` collects each layer's
    post-RoPE (keys, values)."""
    k = cfg.registers
    prefix = p.get("_prefix") if k else None
    rows = k if prefix is None else 0     # register rows in h
    off = k - rows                        # positions before h's first row
    b = ids.shape[0]
    h = p["tok_embeddings.weight"][ids]
    if rows:
        h = torch.cat([p["registers"][0][None].expand(b, k, cfg.hidden), h], dim=1)
    t = h.shape[1]
    cos, sin = rope_tables(cfg, t + off)
    cos, sin = cos[off:], sin[off:]
    mask = torch.ones(t, t + off, dtype=torch.bool).triu(1 + off)
    online = p["_online"]
    for l in range(cfg.layers):
        pre = "layers.%d." % l
        if rows and l > 0 and cfg.register_layers == "all":
            h = torch.cat([h[:, :k] + p["registers"][l], h[:, k:]], dim=1)
        hooks.residual(l, h)
        x = hooks.site("qkv", l, rms_norm(h, p.get(pre + "attention_norm.weight"), cfg.norm_eps))
        q = (x @ p[pre + "attention.wq.weight"].T).reshape(b, t, cfg.heads, cfg.head_dim).transpose(1, 2)
        kk = (x @ p[pre + "attention.wk.weight"].T).reshape(b, t, cfg.kv_heads, cfg.head_dim).transpose(1, 2)
        v = (x @ p[pre + "attention.wv.weight"].T).reshape(b, t, cfg.kv_heads, cfg.head_dim).transpose(1, 2)
        il = cfg.rope_interleaved
        q, kk = apply_rope(q, cos, sin, il), apply_rope(kk, cos, sin, il)
        kk, v = hooks.kv(kk), hooks.kv(v)
        if record is not None:
            record.append((kk, v))
        if prefix is not None:
            pk, pv = prefix[l]
            kk = torch.cat([pk.expand(b, -1, -1, -1), kk], dim=2)
            v = torch.cat([pv.expand(b, -1, -1, -1), v], dim=2)
        rep = cfg.heads // cfg.kv_heads
        kk = kk.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        att = (q @ kk.transpose(-2, -1)) / math.sqrt(cfg.head_dim)
        att = torch.softmax(att.masked_fill(mask, float("-inf")), dim=-1)
        a = (att @ v).transpose(1, 2).reshape(b, t, cfg.heads * cfg.head_dim)
        if "o_proj" in online:
            a = a @ online["o_proj"]
        h = h + hooks.site("o_proj", l, a) @ p[pre + "attention.wo.weight"].T
        x = hooks.site("w1w3", l, rms_norm(h, p.get(pre + "ffn_norm.weight"), cfg.norm_eps))
        u = x @ p[pre + "feed_forward.w1.weight"].T
        m = u * torch.sigmoid(u) * (x @ p[pre + "feed_forward.w3.weight"].T)
        if "w2" in online:
            m = m @ online["w2"]
        h = h + hooks.site("w2", l, m) @ p[pre + "feed_forward.w2.weight"].T
    h = rms_norm(h[:, rows:] if rows else h, p.get("norm.weight"), cfg.norm_eps)
    return h @ p["output.weight"].T


def fold_registers(p, cfg):
    """DESIGN's Depth-Register folding: the register prefix sees only itself,
    so its post-RoPE keys and values are constants, computed here once in
    floating point on the current (fp) parameters."""
    if not cfg.registers or "_prefix" in p:
        return
    record = []
    with torch.no_grad():
        forward(p, cfg, torch.zeros(1, 0, dtype=torch.long), Hooks(None, cfg.registers), record)
    p["_prefix"] = [(kk.clone(), v.clone()) for kk, v in record]


# ----------------------------------------------------------------------------
# Transforms (each preserves the fp function)
# ----------------------------------------------------------------------------

def fold_norms(p, cfg):
    for l in range(cfg.layers):
        pre = "layers.%d." % l
        for norm, site in (("attention_norm", "qkv"), ("ffn_norm", "w1w3")):
            g = p.pop(pre + norm + ".weight", None)
            if g is None:
                continue
            for name in LINEARS[site]:
                p[pre + name + ".weight"] = p[pre + name + ".weight"] * g[None]
    g = p.pop("norm.weight", None)
    if g is not None:
        p["output.weight"] = p["output.weight"] * g[None]


def calibrate(p, cfg, windows, hessian=False):
    stats = {"_hessian": hessian}
    hooks = Hooks(None, register_rows(p, cfg), stats)
    with torch.no_grad():
        for ids in windows:
            forward(p, cfg, ids, hooks)
    stats.pop("_hessian")
    return stats


def smoothquant(p, cfg, stats, alpha):
    rep = cfg.heads // cfg.kv_heads
    hd = cfg.head_dim
    for l in range(cfg.layers):
        pre = "layers.%d." % l
        for site in SITES:
            ws = [p[pre + n + ".weight"].double() for n in LINEARS[site]]
            xmax = stats[(site, l)]["absmax"]
            wmax = torch.cat(ws, dim=0).abs().amax(dim=0)
            if site == "o_proj":
                # One scale per v_proj channel (kv head, d): maxima over every
                # o_proj input channel (head, d) that reads it.
                xmax = xmax.reshape(cfg.kv_heads, rep, hd).amax(dim=1).reshape(-1)
                wmax = wmax.reshape(cfg.kv_heads, rep, hd).amax(dim=1).reshape(-1)
            xmax, wmax = xmax.clamp(min=1e-5), wmax.clamp(min=1e-5)
            s = xmax.pow(alpha) / wmax.pow(1 - alpha)
            if site == "o_proj":
                s_in = s.reshape(cfg.kv_heads, 1, hd).expand(cfg.kv_heads, rep, hd).reshape(-1)
                p[pre + "attention.wo.weight"] = (p[pre + "attention.wo.weight"].double() * s_in[None]).float()
                p[pre + "attention.wv.weight"] = (p[pre + "attention.wv.weight"].double() / s[:, None]).float()
                continue
            for n in LINEARS[site]:
                p[pre + n + ".weight"] = (p[pre + n + ".weight"].double() * s[None]).float()
            if site == "w2":
                p[pre + "feed_forward.w3.weight"] = (p[pre + "feed_forward.w3.weight"].double() / s[:, None]).float()
            else:
                norm = pre + ("attention_norm" if site == "qkv" else "ffn_norm") + ".weight"
                g = p.get(norm, torch.ones(cfg.hidden)).double()
                p[norm] = (g / s).float()


def rotate(p, cfg, mode, seed):
    """QuaRot: residual Q = diag(signs) H / sqrt(d); `full` adds the online
    Hadamards at the o_proj input (per-head part folded into v_proj/o_proj)
    and the w2 input."""
    if mode == "none":
        return
    d = cfg.hidden
    Q = torch.from_numpy(seeded_signs(seed, d)[:, None] * orthonormal_hadamard(d))
    mul = lambda name, m: p.__setitem__(name, (p[name].double() @ m).float())
    p["tok_embeddings.weight"] = (p["tok_embeddings.weight"].double() @ Q).float()
    if "registers" in p:
        p["registers"] = (p["registers"].double() @ Q).float()
    for l in range(cfg.layers):
        pre = "layers.%d." % l
        for n in LINEARS["qkv"] + LINEARS["w1w3"]:
            mul(pre + n + ".weight", Q)                      # readers: W -> W Q
        for n in LINEARS["o_proj"] + LINEARS["w2"]:
            p[pre + n + ".weight"] = (Q.T @ p[pre + n + ".weight"].double()).float()  # writers: Q^T W
    mul("output.weight", Q)
    if mode != "full":
        return
    Hf = torch.from_numpy(orthonormal_hadamard(cfg.ffn))
    p["_online"]["w2"] = Hf.float()
    for l in range(cfg.layers):
        mul("layers.%d.feed_forward.w2.weight" % l, Hf)
    hd, width = cfg.head_dim, cfg.heads * cfg.head_dim
    if has_hadamard(cfg.heads) and has_hadamard(hd):
        Hd = torch.from_numpy(orthonormal_hadamard(hd))
        cross = torch.kron(torch.from_numpy(orthonormal_hadamard(cfg.heads)), torch.eye(hd, dtype=torch.float64))
        p["_online"]["o_proj"] = cross.float()
        for l in range(cfg.layers):
            pre = "layers.%d.attention." % l
            wv = p[pre + "wv.weight"].double().reshape(cfg.kv_heads, hd, cfg.hidden)
            p[pre + "wv.weight"] = torch.einsum("ed,kdi->kei", Hd.T, wv).reshape(-1, cfg.hidden).float()
            mul(pre + "wo.weight", torch.kron(torch.eye(cfg.heads, dtype=torch.float64), Hd) @ cross)
    else:
        Hw = torch.from_numpy(orthonormal_hadamard(width))
        p["_online"]["o_proj"] = Hw.float()
        for l in range(cfg.layers):
            mul("layers.%d.attention.wo.weight" % l, Hw)


def quantize_weights(p, cfg, q, stats=None):
    for l in range(cfg.layers):
        pre = "layers.%d." % l
        for site in SITES:
            for n in LINEARS[site]:
                w = p[pre + n + ".weight"]
                if q.method == "gptq":
                    p[pre + n + ".weight"] = gptq(w, stats[(site, l)]["hessian"], q.wbits, q.group, q.wclip,
                                                  q.gptq_damp, q.gptq_act_order)
                else:
                    p[pre + n + ".weight"] = rtn_weight(w, q.wbits, q.group, q.wclip)


def quantize(p, cfg, q, calib_windows):
    """Applies the configured transforms and weight quantization to p (in
    place) and returns the Hooks that quantize activations at run time."""
    q.validate(cfg)
    if q.fold_norms or q.rotate != "none":
        fold_norms(p, cfg)
    if q.smooth is not None:
        smoothquant(p, cfg, calibrate(p, cfg, calib_windows), q.smooth)
        if q.rotate != "none":
            fold_norms(p, cfg)  # the reader scales went into the norm gains
    rotate(p, cfg, q.rotate, q.seed)
    if q.fold_registers:
        fold_registers(p, cfg)  # on fp weights, before weight quantization
    stats = calibrate(p, cfg, calib_windows, hessian=True) if q.method == "gptq" else None
    if q.wbits < 16:
        quantize_weights(p, cfg, q, stats)
    return Hooks(q, register_rows(p, cfg))
