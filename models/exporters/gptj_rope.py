"""Style gptj_rope: interleaved RoPE, the GPT-J / Meta-original convention:
pairs (x[2i], x[2i+1]) are rotated, written as in GPT-J's modeling code
(rotate_every_two: x[..., ::2], x[..., 1::2], torch.stack((-x2, x1), -1)
.flatten(-2); sin/cos gathered from an embed_positions table by
position_ids and repeat_interleave(2, -1)). Our Decoder with
rope_interleaved=True computes it. GPT-J-like names (transformer.wte,
h.{i}.ln_1, attn.q_proj, ..., mlp.fc_gate / fc_up / fc_out, ln_f), tied
lm_head, 4 heads of 16. torch.onnx.export opset 17 without constant folding.
Seeded random weights.

Inputs input_ids, position_ids [batch, seq] -> logits [batch, seq, vocab].
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from common import llm_inputs, llm_outputs, param_map_by_content, random_decoder, save, torch_export

CFG = dict(vocab_size=4096, hidden=64, layers=2, heads=4, kv_heads=4, head_dim=16, ffn=192, max_seq=512,
           rope_theta=10000.0, norm_eps=1e-5, tied=True, rope_interleaved=True)


def create_sinusoidal_positions(num_pos, dim, base):
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64) / dim))
    sinusoid_inp = torch.einsum("i , j -> i j", torch.arange(num_pos, dtype=torch.int64).float(), inv_freq).float()
    return torch.cat((torch.sin(sinusoid_inp), torch.cos(sinusoid_inp)), dim=1)


def rotate_every_two(x):
    x1 = x[:, :, :, ::2]
    x2 = x[:, :, :, 1::2]
    x = torch.stack((-x2, x1), dim=-1)
    return x.flatten(-2)


def apply_rotary_pos_emb(tensor, sin, cos):
    sin = torch.repeat_interleave(sin[:, :, None, :], 2, 3)
    cos = torch.repeat_interleave(cos[:, :, None, :], 2, 3)
    return (tensor * cos) + (rotate_every_two(tensor) * sin)


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(n))

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


class GPTJAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.num_attention_heads, self.head_dim = c.heads, c.head_dim
        self.q_proj = nn.Linear(c.hidden, c.heads * c.head_dim, bias=False)
        self.k_proj = nn.Linear(c.hidden, c.heads * c.head_dim, bias=False)
        self.v_proj = nn.Linear(c.hidden, c.heads * c.head_dim, bias=False)
        self.out_proj = nn.Linear(c.heads * c.head_dim, c.hidden, bias=False)
        self.register_buffer("embed_positions", create_sinusoidal_positions(c.max_seq, c.head_dim, c.rope_theta),
                             persistent=False)
        self.register_buffer("bias", torch.tril(torch.ones((c.max_seq, c.max_seq), dtype=torch.bool))
                             .view(1, 1, c.max_seq, c.max_seq), persistent=False)

    def forward(self, hidden_states, position_ids):
        b, t, _ = hidden_states.shape
        query = self.q_proj(hidden_states).view(b, t, self.num_attention_heads, self.head_dim)
        key = self.k_proj(hidden_states).view(b, t, self.num_attention_heads, self.head_dim)
        value = self.v_proj(hidden_states).view(b, t, self.num_attention_heads, self.head_dim).permute(0, 2, 1, 3)
        sincos = self.embed_positions[position_ids]
        sin, cos = torch.split(sincos, sincos.shape[-1] // 2, dim=-1)
        key = apply_rotary_pos_emb(key, sin, cos).permute(0, 2, 1, 3)
        query = apply_rotary_pos_emb(query, sin, cos).permute(0, 2, 1, 3)
        causal_mask = self.bias[:, :, :t, :t]
        attn_weights = torch.matmul(query, key.transpose(-1, -2))
        mask_value = torch.tensor(torch.finfo(attn_weights.dtype).min, dtype=attn_weights.dtype)
        attn_weights = torch.where(causal_mask, attn_weights, mask_value)
        attn_weights = attn_weights / math.sqrt(self.head_dim)
        attn_weights = F.softmax(attn_weights, dim=-1)
        out = torch.matmul(attn_weights, value).permute(0, 2, 1, 3).contiguous().view(b, t, -1)
        return self.out_proj(out)


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.fc_gate = nn.Linear(c.hidden, c.ffn, bias=False)
        self.fc_up = nn.Linear(c.hidden, c.ffn, bias=False)
        self.fc_out = nn.Linear(c.ffn, c.hidden, bias=False)

    def forward(self, x):
        return self.fc_out(F.silu(self.fc_gate(x)) * self.fc_up(x))


class GPTJBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.ln_1 = RMSNorm(c.hidden, c.norm_eps)
        self.attn = GPTJAttention(c)
        self.ln_2 = RMSNorm(c.hidden, c.norm_eps)
        self.mlp = MLP(c)

    def forward(self, h, position_ids):
        h = h + self.attn(self.ln_1(h), position_ids)
        return h + self.mlp(self.ln_2(h))


class GPTJModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.wte = nn.Embedding(c.vocab_size, c.hidden)
        self.h = nn.ModuleList(GPTJBlock(c) for _ in range(c.layers))
        self.ln_f = RMSNorm(c.hidden, c.norm_eps)


class GPTJForCausalLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.transformer = GPTJModel(c)
        self.lm_head = nn.Linear(c.hidden, c.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight

    def forward(self, input_ids, position_ids):
        h = self.transformer.wte(input_ids)
        for block in self.transformer.h:
            h = block(h, position_ids)
        return self.lm_head(self.transformer.ln_f(h))


NAMES = [("tok_embeddings.", "transformer.wte."), ("attention_norm.", "ln_1."), ("ffn_norm.", "ln_2."),
         ("attention.wq.", "attn.q_proj."), ("attention.wk.", "attn.k_proj."), ("attention.wv.", "attn.v_proj."),
         ("attention.wo.", "attn.out_proj."), ("feed_forward.w1.", "mlp.fc_gate."),
         ("feed_forward.w3.", "mlp.fc_up."), ("feed_forward.w2.", "mlp.fc_out."), ("layers.", "transformer.h."),
         ("norm.weight", "transformer.ln_f.weight")]


def rename(name):
    for a, b in NAMES:
        if name.startswith(a) or ("." + a) in name:
            name = name.replace(a, b, 1)
    return name


def build(name="gptj_rope"):
    decoder = random_decoder(4, **CFG)
    cfg = decoder.cfg
    lm = GPTJForCausalLM(cfg)
    state = {rename(k): v for k, v in decoder.state_dict().items() if not k.startswith("rope_")}
    state["lm_head.weight"] = state["transformer.wte.weight"]
    lm.load_state_dict(state)
    ids = torch.ones(1, 6, dtype=torch.long)
    pos = torch.arange(6)[None]
    proto = torch_export(lm, (ids, pos), ["input_ids", "position_ids"], ["logits"],
                         {"input_ids": {0: "batch", 1: "seq"}, "position_ids": {0: "batch", 1: "seq"},
                          "logits": {0: "batch", 1: "seq"}}, fold=False)
    return save(proto, name, cfg, "gptj", "Hugging Face GPT-J modeling code (rotate_every_two interleaved RoPE, "
                "sin/cos table gathered by position_ids, bool causal buffer + where) with RMSNorm and SwiGLU",
                llm_inputs(cfg, ["input_ids", "position_ids"]), llm_outputs(cfg),
                param_map_by_content(proto, decoder), {"random_seed": 4})


BUILDERS = {"gptj_rope": build}
