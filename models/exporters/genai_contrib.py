"""Styles genai_contrib and genai_mha: graphs built with onnx.helper the way
the onnxruntime-genai model builder writes decoders with onnxruntime contrib
ops (no torch export):

  * SimplifiedLayerNormalization (default domain, as the builder writes it;
    axis=-1, epsilon, stash_type=1) for layer 0's input norm, then
    com.microsoft SkipSimplifiedLayerNormalization for every later norm
    (fused residual add: outputs output, mean, inv_std_var,
    input_skip_bias_sum; the 4th is the residual stream);
  * one packed QKV MatMul ([hidden, (heads + 2 kv_heads) head_dim]) split
    with Split;
  * genai_contrib: com.microsoft GroupQueryAttention (num_heads,
    kv_num_heads; seqlens_k = ReduceSum(attention_mask) - 1 as int32,
    total_sequence_length = Shape(attention_mask)[1] as int32 scalar);
    layer 0 rotates q/k with separate com.microsoft RotaryEmbedding nodes
    (cos_cache / sin_cache [max_pos, head_dim/2], position_ids), layer 1 uses
    GroupQueryAttention's do_rotary=1 with the caches as inputs;
  * genai_mha: com.microsoft RotaryEmbedding + MultiHeadAttention
    (unidirectional=1, past_key / past_value in, present out);
  * SwiGLU MLP as MatMul / Sigmoid / Mul, tied lm_head (Transpose + MatMul).

Default domain opset 17, com.microsoft version 1. onnx.checker (1.12) knows
no contrib op schemas and rejects SimplifiedLayerNormalization in the
default domain, so these are written unchecked; onnxruntime-node 1.30 runs
them. Weights: models/zoo/tiny_baseline (heads = kv_heads = 2).

Inputs input_ids, attention_mask [batch, past + seq], position_ids,
past_key_values.{i}.key / .value [batch, kv_heads, past, head_dim]; outputs
logits, present.{i}.key / .value.
"""

from onnx import TensorProto

from common import llm_inputs, llm_outputs, save, trained
from graphs import DecoderGraph, float_io, int_input, rope_cache

MS = "com.microsoft"


def build(name, attention):
    decoder = trained("tiny_baseline")
    cfg = decoder.cfg
    g = DecoderGraph(decoder)
    cos, sin = rope_cache(cfg)
    g.init("cos_cache", cos)
    g.init("sin_cache", sin)
    eps = float(cfg.norm_eps)
    hd, nh, nkv = cfg.head_dim, cfg.heads, cfg.kv_heads
    if attention == "gqa":
        # seqlens_k / total_sequence_length from the attention mask, as the builder does.
        msum = g.op("ReduceSum", ["attention_mask", g.init("one_axis", __import__("numpy").array([1]))], keepdims=0)
        seqlens = g.op("Cast", [g.op("Sub", [msum, g.init("one_i64", __import__("numpy").array(1))])],
                       to=TensorProto.INT32)
        total = g.op("Cast", [g.op("Gather", [g.op("Shape", ["attention_mask"]),
                                              g.init("idx1", __import__("numpy").array(1))], axis=0)],
                     to=TensorProto.INT32)
    split_sizes = g.init("qkv_split", __import__("numpy").array([nh * hd, nkv * hd, nkv * hd]))
    x = g.embed("input_ids")
    residual, pending = x, None
    presents = []
    for l in range(cfg.layers):
        ours, pre = "layers.%d." % l, "model.layers.%d." % l
        gain = g.weight(ours + "attention_norm.weight", pre + "input_layernorm.weight", False)
        if pending is None:
            n = g.op("SimplifiedLayerNormalization", [residual, gain], axis=-1, epsilon=eps, stash_type=1)
        else:
            n, _, _, residual = g.op("SkipSimplifiedLayerNormalization", [residual, pending, gain], n_out=4,
                                     domain=MS, epsilon=eps)
        qkv = g.op("MatMul", [n, g.packed([ours + "attention.wq.weight", ours + "attention.wk.weight",
                                           ours + "attention.wv.weight"], pre + "attn.qkv_proj.MatMul.weight")])
        q, k, v = g.op("Split", [qkv, split_sizes], n_out=3, axis=-1)
        past_k, past_v = "past_key_values.%d.key" % l, "past_key_values.%d.value" % l
        pres_k, pres_v = "present.%d.key" % l, "present.%d.value" % l
        presents += [pres_k, pres_v]
        fused_rotary = attention == "gqa" and l % 2 == 1
        if not fused_rotary:
            q = g.op("RotaryEmbedding", [q, "position_ids", "cos_cache", "sin_cache"], domain=MS, num_heads=nh,
                     interleaved=0)
            k = g.op("RotaryEmbedding", [k, "position_ids", "cos_cache", "sin_cache"], domain=MS, num_heads=nkv,
                     interleaved=0)
        if attention == "gqa":
            ins = [q, k, v, past_k, past_v, seqlens, total]
            attrs = dict(num_heads=nh, kv_num_heads=nkv)
            if fused_rotary:
                ins += ["cos_cache", "sin_cache"]
                attrs.update(do_rotary=1, rotary_interleaved=0)
            a = g.op("GroupQueryAttention", ins, domain=MS, outputs=[g.name("gqa_out"), pres_k, pres_v], **attrs)[0]
        else:
            a = g.op("MultiHeadAttention", [q, k, v, "", "", "", past_k, past_v], domain=MS,
                     outputs=[g.name("mha_out"), pres_k, pres_v], num_heads=nh, unidirectional=1)[0]
        o = g.linear(a, ours + "attention.wo.weight", pre + "attn.o_proj.MatMul.weight")
        gain = g.weight(ours + "ffn_norm.weight", pre + "post_attention_layernorm.weight", False)
        n, _, _, residual = g.op("SkipSimplifiedLayerNormalization", [residual, o, gain], n_out=4, domain=MS,
                                 epsilon=eps)
        pending = g.swiglu_mlp(n, l, pre + "mlp.")
    gain = g.weight("norm.weight", "model.norm.weight", False)
    n = g.op("SkipSimplifiedLayerNormalization", [residual, pending, gain], n_out=1, domain=MS, epsilon=eps)
    g.lm_head(n)
    dims = lambda s: ["batch_size", cfg.kv_heads, s, cfg.head_dim]
    inputs = [int_input("input_ids", ["batch_size", "sequence_length"]),
              int_input("attention_mask", ["batch_size", "total_sequence_length"]),
              int_input("position_ids", ["batch_size", "sequence_length"])]
    for l in range(cfg.layers):
        inputs += [float_io("past_key_values.%d.%s" % (l, w), dims("past_sequence_length")) for w in ("key", "value")]
    outputs = [float_io("logits", ["batch_size", "sequence_length", cfg.vocab_size])]
    outputs += [float_io(p, dims("total_sequence_length")) for p in presents]
    proto = g.model(inputs, outputs, [("", 17), (MS, 1)], 8, name)
    what = ("GroupQueryAttention (layer 0: separate RotaryEmbedding, layer 1: do_rotary=1)" if attention == "gqa"
            else "RotaryEmbedding + MultiHeadAttention (unidirectional=1)")
    return save(proto, name, cfg, "llama", "onnxruntime-genai model builder (contrib ops): "
                "SimplifiedLayerNormalization / SkipSimplifiedLayerNormalization, packed QKV, " + what,
                llm_inputs(cfg, ["input_ids", "attention_mask", "position_ids"], past=True),
                llm_outputs(cfg, past=True), g.param_map, "tiny_baseline", check=False,
                extra={"incremental_batch": 1, "runtime_limits": [
                    "onnxruntime GroupQueryAttention (CPU): batch_size must be 1 when sequence_length > 1 and past "
                    "context is given; runs with a nonzero past and several new tokens are done one sequence at "
                    "a time"]} if attention == "gqa" else None)


BUILDERS = {"genai_contrib": lambda name: build(name, "gqa"), "genai_mha": lambda name: build(name, "mha")}
