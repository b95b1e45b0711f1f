"""Style gqa_split: grouped-query attention (4 query heads, 2 KV heads,
head_dim 16) written differently from Hugging Face: KV heads picked with
torch.index_select (index [0, 0, 1, 1]) instead of expand + reshape,
rotate-half through torch.split (ONNX Split), RoPE from precomputed
[max_pos, head_dim/2] cos/sin tables sliced by sequence length, the query
scaled by head_dim**-0.5 before q @ k^T, the causal mask a boolean
masked_fill with -inf. GPT-2-like module names (transformer.wte, h.{i}.ln_1,
attn.q_proj, mlp.c_proj, ln_f, untied lm_head). torch.onnx.export opset 17,
do_constant_folding=False (linears: Transpose + MatMul of [out, in] weights).
Seeded random weights.

Input input_ids [batch, seq] -> logits [batch, seq, vocab].
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from common import llm_inputs, llm_outputs, param_map_by_content, random_decoder, save, torch_export

CFG = dict(vocab_size=4096, hidden=64, layers=2, heads=4, kv_heads=2, head_dim=16, ffn=192, max_seq=512,
           rope_theta=10000.0, norm_eps=1e-5, tied=True)


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(n))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope(x, cos, sin, half):
    """x [b, h, t, 2 half]; cos/sin [t, half]: halves (x1, x2) -> (x1 c - x2 s, x2 c + x1 s)."""
    x1, x2 = torch.split(x, [half, half], dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class GQAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.nh, self.nkv, self.hd = c.heads, c.kv_heads, c.head_dim
        self.q_proj = nn.Linear(c.hidden, c.heads * c.head_dim, bias=False)
        self.k_proj = nn.Linear(c.hidden, c.kv_heads * c.head_dim, bias=False)
        self.v_proj = nn.Linear(c.hidden, c.kv_heads * c.head_dim, bias=False)
        self.c_proj = nn.Linear(c.heads * c.head_dim, c.hidden, bias=False)
        self.register_buffer("kv_index", torch.arange(c.kv_heads).repeat_interleave(c.heads // c.kv_heads),
                             persistent=False)

    def forward(self, x, cos, sin, future):
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.nh, self.hd).permute(0, 2, 1, 3)
        k = self.k_proj(x).view(b, t, self.nkv, self.hd).permute(0, 2, 1, 3)
        v = self.v_proj(x).view(b, t, self.nkv, self.hd).permute(0, 2, 1, 3)
        q, k = rope(q, cos, sin, self.hd // 2), rope(k, cos, sin, self.hd // 2)
        k = torch.index_select(k, 1, self.kv_index)
        v = torch.index_select(v, 1, self.kv_index)
        q = q * self.hd ** -0.5
        att = (q @ k.transpose(-1, -2)).masked_fill(future, float("-inf"))
        y = F.softmax(att, dim=-1) @ v
        return self.c_proj(y.permute(0, 2, 1, 3).reshape(b, t, self.nh * self.hd))


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.w_gate = nn.Linear(c.hidden, c.ffn, bias=False)
        self.w_up = nn.Linear(c.hidden, c.ffn, bias=False)
        self.c_proj = nn.Linear(c.ffn, c.hidden, bias=False)

    def forward(self, x):
        return self.c_proj(F.silu(self.w_gate(x)) * self.w_up(x))


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.ln_1 = RMSNorm(c.hidden, c.norm_eps)
        self.attn = GQAttention(c)
        self.ln_2 = RMSNorm(c.hidden, c.norm_eps)
        self.mlp = MLP(c)

    def forward(self, x, cos, sin, future):
        x = x + self.attn(self.ln_1(x), cos, sin, future)
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.wte = nn.Embedding(c.vocab_size, c.hidden)
        self.h = nn.ModuleList(Block(c) for _ in range(c.layers))
        self.ln_f = RMSNorm(c.hidden, c.norm_eps)


class GQALM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.transformer = Transformer(c)
        self.lm_head = nn.Linear(c.hidden, c.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # tied, as GPT-2
        inv = 1.0 / (c.rope_theta ** (torch.arange(0, c.head_dim, 2, dtype=torch.float64) / c.head_dim))
        ang = torch.outer(torch.arange(c.max_seq, dtype=torch.float64), inv)
        self.register_buffer("rope_cos", ang.cos().float(), persistent=False)
        self.register_buffer("rope_sin", ang.sin().float(), persistent=False)

    def forward(self, input_ids):
        t = input_ids.shape[1]
        x = self.transformer.wte(input_ids)
        cos, sin = self.rope_cos[:t], self.rope_sin[:t]
        future = torch.ones(t, t, dtype=torch.bool).triu(1)
        for block in self.transformer.h:
            x = block(x, cos, sin, future)
        return self.lm_head(self.transformer.ln_f(x))


NAMES = [("tok_embeddings.", "transformer.wte."), ("attention_norm.", "ln_1."), ("ffn_norm.", "ln_2."),
         ("attention.wq.", "attn.q_proj."), ("attention.wk.", "attn.k_proj."), ("attention.wv.", "attn.v_proj."),
         ("attention.wo.", "attn.c_proj."), ("feed_forward.w1.", "mlp.w_gate."), ("feed_forward.w3.", "mlp.w_up."),
         ("feed_forward.w2.", "mlp.c_proj."), ("output.", "lm_head."), ("layers.", "transformer.h."),
         ("norm.weight", "transformer.ln_f.weight")]


def rename(name):
    for a, b in NAMES:
        if name.startswith(a) or ("." + a) in name:
            name = name.replace(a, b, 1)
    return name


def build(name="gqa_split"):
    decoder = random_decoder(3, **CFG)
    cfg = decoder.cfg
    lm = GQALM(cfg)
    state = {rename(k): v for k, v in decoder.state_dict().items() if not k.startswith("rope_")}
    state["lm_head.weight"] = state["transformer.wte.weight"]
    lm.load_state_dict(state)
    ids = torch.ones(1, 6, dtype=torch.long)
    proto = torch_export(lm, (ids,), ["input_ids"], ["logits"],
                         {"input_ids": {0: "batch", 1: "seq"}, "logits": {0: "batch", 1: "seq"}}, fold=False)
    return save(proto, name, cfg, "llama", "a hand-written GQA decoder (nanoGPT / GPT-2 naming) with index_select "
                "KV-head selection, chunk rotate-half, table RoPE, pre-scaled q, boolean masked_fill; "
                "torch.onnx.export without constant folding", llm_inputs(cfg, ["input_ids"]), llm_outputs(cfg),
                param_map_by_content(proto, decoder), {"random_seed": 3})


BUILDERS = {"gqa_split": build}
