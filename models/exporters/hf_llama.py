"""Styles hf_llama and hf_llama_past: the model written the way Hugging Face
transformers' eager Llama code is (LlamaForCausalLM / LlamaModel /
LlamaDecoderLayer / LlamaAttention / LlamaMLP / LlamaRMSNorm /
LlamaRotaryEmbedding, HF parameter names), exported like optimum does
(torch.onnx.export opset 17, constant folding on: linears become MatMul with
pre-transposed [in, out] initializers; weights as external data).

hf_llama: inputs input_ids, attention_mask, position_ids -> logits.
hf_llama_past: optimum's decoder-with-past convention: + past_key_values.{i}.key
/ .value [batch, kv_heads, past_seq, head_dim]; outputs logits, present.{i}.key
/ .value (past + new).

Weights: models/zoo/tiny_baseline (tied embedding / lm_head, as HF ties them).
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from common import (TINY, llm_inputs, llm_outputs, ours_to_hf, param_map_by_content, random_decoder, save,
                    torch_export, trained)


class LlamaRMSNorm(nn.Module):
    def __init__(self, hidden_size, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

    def forward(self, hidden_states):
        input_dtype = hidden_states.dtype
        hidden_states = hidden_states.to(torch.float32)
        variance = hidden_states.pow(2).mean(-1, keepdim=True)
        hidden_states = hidden_states * torch.rsqrt(variance + self.variance_epsilon)
        return self.weight * hidden_states.to(input_dtype)


class LlamaRotaryEmbedding(nn.Module):
    def __init__(self, dim, max_position_embeddings=2048, base=10000):
        super().__init__()
        self.dim = dim
        self.max_position_embeddings = max_position_embeddings
        self.base = base
        inv_freq = 1.0 / (self.base ** (torch.arange(0, self.dim, 2, dtype=torch.int64).float() / self.dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    @torch.no_grad()
    def forward(self, x, position_ids):
        inv_freq_expanded = self.inv_freq[None, :, None].float().expand(position_ids.shape[0], -1, 1)
        position_ids_expanded = position_ids[:, None, :].float()
        freqs = (inv_freq_expanded.float() @ position_ids_expanded.float()).transpose(1, 2)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos = emb.cos()
        sin = emb.sin()
        return cos.to(dtype=x.dtype), sin.to(dtype=x.dtype)


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim=1):
    cos = cos.unsqueeze(unsqueeze_dim)
    sin = sin.unsqueeze(unsqueeze_dim)
    q_embed = (q * cos) + (rotate_half(q) * sin)
    k_embed = (k * cos) + (rotate_half(k) * sin)
    return q_embed, k_embed


def repeat_kv(hidden_states, n_rep):
    batch, num_key_value_heads, slen, head_dim = hidden_states.shape
    if n_rep == 1:
        return hidden_states
    hidden_states = hidden_states[:, :, None, :, :].expand(batch, num_key_value_heads, n_rep, slen, head_dim)
    return hidden_states.reshape(batch, num_key_value_heads * n_rep, slen, head_dim)


class LlamaMLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.gate_proj = nn.Linear(config.hidden, config.ffn, bias=False)
        self.up_proj = nn.Linear(config.hidden, config.ffn, bias=False)
        self.down_proj = nn.Linear(config.ffn, config.hidden, bias=False)
        self.act_fn = nn.SiLU()

    def forward(self, x):
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


class LlamaAttention(nn.Module):
    def __init__(self, config, layer_idx):
        super().__init__()
        self.layer_idx = layer_idx
        self.num_heads = config.heads
        self.head_dim = config.head_dim
        self.num_key_value_heads = config.kv_heads
        self.num_key_value_groups = self.num_heads // self.num_key_value_heads
        self.q_proj = nn.Linear(config.hidden, self.num_heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(config.hidden, self.num_key_value_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(config.hidden, self.num_key_value_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.num_heads * self.head_dim, config.hidden, bias=False)
        self.rotary_emb = LlamaRotaryEmbedding(self.head_dim, config.max_seq, base=config.rope_theta)

    def forward(self, hidden_states, attention_mask, position_ids, past_key_value=None):
        bsz, q_len, _ = hidden_states.size()
        query_states = self.q_proj(hidden_states)
        key_states = self.k_proj(hidden_states)
        value_states = self.v_proj(hidden_states)
        query_states = query_states.view(bsz, q_len, self.num_heads, self.head_dim).transpose(1, 2)
        key_states = key_states.view(bsz, q_len, self.num_key_value_heads, self.head_dim).transpose(1, 2)
        value_states = value_states.view(bsz, q_len, self.num_key_value_heads, self.head_dim).transpose(1, 2)

        cos, sin = self.rotary_emb(value_states, position_ids)
        query_states, key_states = apply_rotary_pos_emb(query_states, key_states, cos, sin)

        if past_key_value is not None:
            key_states = torch.cat([past_key_value[0], key_states], dim=2)
            value_states = torch.cat([past_key_value[1], value_states], dim=2)
        present = (key_states, value_states)

        key_states = repeat_kv(key_states, self.num_key_value_groups)
        value_states = repeat_kv(value_states, self.num_key_value_groups)

        attn_weights = torch.matmul(query_states, key_states.transpose(2, 3)) / math.sqrt(self.head_dim)
        if attention_mask is not None:
            causal_mask = attention_mask[:, :, :, : key_states.shape[-2]]
            attn_weights = attn_weights + causal_mask
        attn_weights = nn.functional.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query_states.dtype)
        attn_output = torch.matmul(attn_weights, value_states)
        attn_output = attn_output.transpose(1, 2).contiguous()
        attn_output = attn_output.reshape(bsz, q_len, -1)
        attn_output = self.o_proj(attn_output)
        return attn_output, present


class LlamaDecoderLayer(nn.Module):
    def __init__(self, config, layer_idx):
        super().__init__()
        self.self_attn = LlamaAttention(config, layer_idx)
        self.mlp = LlamaMLP(config)
        self.input_layernorm = LlamaRMSNorm(config.hidden, eps=config.norm_eps)
        self.post_attention_layernorm = LlamaRMSNorm(config.hidden, eps=config.norm_eps)

    def forward(self, hidden_states, attention_mask, position_ids, past_key_value=None):
        residual = hidden_states
        hidden_states = self.input_layernorm(hidden_states)
        hidden_states, present = self.self_attn(hidden_states, attention_mask, position_ids, past_key_value)
        hidden_states = residual + hidden_states
        residual = hidden_states
        hidden_states = self.post_attention_layernorm(hidden_states)
        hidden_states = self.mlp(hidden_states)
        hidden_states = residual + hidden_states
        return hidden_states, present


def _prepare_4d_causal_attention_mask(attention_mask, input_shape, dtype, past_key_values_length):
    """HF's mask: finfo.min above the (past-shifted) diagonal, plus finfo.min
    where attention_mask is 0; [batch, 1, tgt, past + tgt], added to scores."""
    bsz, tgt_len = input_shape
    min_dtype = torch.finfo(dtype).min
    target_length = past_key_values_length + tgt_len
    causal_mask = torch.full((tgt_len, target_length), fill_value=min_dtype, dtype=dtype)
    cache_position = torch.arange(tgt_len) + past_key_values_length
    causal_mask = causal_mask * (torch.arange(target_length) > cache_position.reshape(-1, 1))
    causal_mask = causal_mask[None, None, :, :].expand(bsz, 1, -1, -1)
    padding = (1.0 - attention_mask[:, None, None, :].to(dtype)) * min_dtype
    return causal_mask + padding


class LlamaModel(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden)
        self.layers = nn.ModuleList([LlamaDecoderLayer(config, i) for i in range(config.layers)])
        self.norm = LlamaRMSNorm(config.hidden, eps=config.norm_eps)

    def forward(self, input_ids, attention_mask, position_ids, past_key_values=None):
        inputs_embeds = self.embed_tokens(input_ids)
        past_key_values_length = 0 if past_key_values is None else past_key_values[0][0].shape[2]
        causal_mask = _prepare_4d_causal_attention_mask(attention_mask, input_ids.shape, inputs_embeds.dtype,
                                                        past_key_values_length)
        hidden_states = inputs_embeds
        presents = []
        for i, decoder_layer in enumerate(self.layers):
            past = None if past_key_values is None else past_key_values[i]
            hidden_states, present = decoder_layer(hidden_states, causal_mask, position_ids, past)
            presents.append(present)
        return self.norm(hidden_states), presents


class LlamaForCausalLM(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.model = LlamaModel(config)
        self.lm_head = nn.Linear(config.hidden, config.vocab_size, bias=False)
        if config.tied:
            self.lm_head.weight = self.model.embed_tokens.weight  # tie_word_embeddings

    def forward(self, input_ids, attention_mask, position_ids, past_key_values=None):
        hidden_states, presents = self.model(input_ids, attention_mask, position_ids, past_key_values)
        logits = self.lm_head(hidden_states).float()
        return logits, presents


class LlamaForCausalLMWithPast(LlamaForCausalLM):
    """optimum's flat signature: past_key_values.{i}.key/value in, presents out."""

    def forward(self, input_ids, attention_mask, position_ids, *past):
        pkv = [(past[2 * i], past[2 * i + 1]) for i in range(len(past) // 2)]
        logits, presents = super().forward(input_ids, attention_mask, position_ids, pkv)
        return (logits,) + tuple(t for kv in presents for t in kv)


class LlamaForCausalLMNoPast(LlamaForCausalLM):
    def forward(self, input_ids, attention_mask, position_ids):
        return super().forward(input_ids, attention_mask, position_ids)[0]


def hf_from_decoder(decoder, cls):
    cfg = decoder.cfg
    lm = cls(cfg)
    state = {ours_to_hf(k): v for k, v in decoder.state_dict().items() if not k.startswith("rope_")}
    if cfg.tied:
        state["lm_head.weight"] = state["model.embed_tokens.weight"]
    lm.load_state_dict(state, strict=True)
    return lm.eval()


def dummy(cfg, past_len=0, batch=1, seq=5):
    ids = torch.ones(batch, seq, dtype=torch.long)
    mask = torch.ones(batch, past_len + seq, dtype=torch.long)
    pos = torch.arange(past_len, past_len + seq)[None].expand(batch, seq)
    past = [torch.zeros(batch, cfg.kv_heads, past_len, cfg.head_dim) for _ in range(2 * cfg.layers)]
    return ids, mask, pos, past


def build_hf_llama(name="hf_llama"):
    decoder = trained("tiny_baseline")
    cfg = decoder.cfg
    lm = hf_from_decoder(decoder, LlamaForCausalLMNoPast)
    ids, mask, pos, _ = dummy(cfg)
    names = ["input_ids", "attention_mask", "position_ids"]
    axes = {"input_ids": {0: "batch_size", 1: "sequence_length"},
            "attention_mask": {0: "batch_size", 1: "sequence_length"},
            "position_ids": {0: "batch_size", 1: "sequence_length"},
            "logits": {0: "batch_size", 1: "sequence_length"}}
    proto = torch_export(lm, (ids, mask, pos), names, ["logits"], axes, opset=17, fold=True)
    return save(proto, name, cfg, "llama", "Hugging Face transformers LlamaForCausalLM (eager) via torch.onnx.export "
                "as optimum does (opset 17, constant folding, external data)",
                llm_inputs(cfg, names), llm_outputs(cfg), param_map_by_content(proto, decoder), "tiny_baseline",
                external=True)


def build_hf_llama_past(name="hf_llama_past"):
    return _export_past(trained("tiny_baseline"), name, "Hugging Face LlamaForCausalLM exported with optimum's "
                        "decoder-with-past convention (past_key_values.{i}.key/value in, present.{i}.key/value out)",
                        "tiny_baseline")


def _export_past(decoder, name, imitates, source):
    cfg = decoder.cfg
    lm = hf_from_decoder(decoder, LlamaForCausalLMWithPast)
    ids, mask, pos, past = dummy(cfg, past_len=3)
    names = ["input_ids", "attention_mask", "position_ids"]
    past_names = ["past_key_values.%d.%s" % (l, w) for l in range(cfg.layers) for w in ("key", "value")]
    present_names = ["present.%d.%s" % (l, w) for l in range(cfg.layers) for w in ("key", "value")]
    axes = {"input_ids": {0: "batch_size", 1: "sequence_length"},
            "attention_mask": {0: "batch_size", 1: "past_sequence_length + sequence_length"},
            "position_ids": {0: "batch_size", 1: "sequence_length"},
            "logits": {0: "batch_size", 1: "sequence_length"}}
    for n in past_names:
        axes[n] = {0: "batch_size", 2: "past_sequence_length"}
    for n in present_names:
        axes[n] = {0: "batch_size", 2: "past_sequence_length + sequence_length"}
    proto = torch_export(lm, (ids, mask, pos, *past), names + past_names, ["logits"] + present_names,
                         axes, opset=17, fold=True)
    return save(proto, name, cfg, "llama", imitates, llm_inputs(cfg, names, past=True), llm_outputs(cfg, past=True),
                param_map_by_content(proto, decoder), source, external=True)


# hf_llama_gqa_past: the same decoder-with-past export of a GQA model (4
# query heads, 2 KV heads): repeat_kv expands the past-concatenated keys and
# values, so the past is read before the GQA repeat; random weights.
GQA_CFG = dict(vocab_size=4096, hidden=64, layers=2, heads=4, kv_heads=2, head_dim=16, ffn=192, max_seq=512,
               rope_theta=500000.0, norm_eps=1e-5, tied=False)


def build_hf_llama_gqa_past(name="hf_llama_gqa_past"):
    decoder = random_decoder(11, **GQA_CFG)
    return _export_past(decoder, name, "Hugging Face LlamaForCausalLM with GQA (num_key_value_heads < num_heads, "
                        "repeat_kv after the past concat) exported with optimum's decoder-with-past convention",
                        {"random_seed": 11})


BUILDERS = {"hf_llama": build_hf_llama, "hf_llama_past": build_hf_llama_past,
            "hf_llama_gqa_past": build_hf_llama_gqa_past}
