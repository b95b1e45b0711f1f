"""Style opset23: a graph built with onnx.helper at opset 23 / IR version 11
from the ONNX-standard LLM ops added in opset 23: RMSNormalization,
RotaryEmbedding (3-D input [batch, seq, hidden] with num_heads, cos/sin caches
[max_pos, head_dim/2] gathered by position_ids) and Attention (3-D Q/K/V,
q_num_heads / kv_num_heads, is_causal=1). Linears MatMul with [in, out]
initializers, SwiGLU as Sigmoid/Mul, tied lm_head via Transpose of the
embedding. Weights: models/zoo/tiny_baseline.

The installed onnx (1.12, opset <= 17) cannot check opset 23, so this model
is written without onnx.checker; onnxruntime-node 1.30 runs it.

Inputs input_ids, position_ids [batch, seq] -> logits [batch, seq, vocab].
"""

from common import llm_inputs, llm_outputs, save, trained
from graphs import DecoderGraph, float_io, int_input, rope_cache


def build(name="opset23"):
    decoder = trained("tiny_baseline")
    cfg = decoder.cfg
    g = DecoderGraph(decoder)
    cos, sin = rope_cache(cfg)
    g.init("cos_cache", cos)
    g.init("sin_cache", sin)
    eps = float(cfg.norm_eps)
    x = g.embed("input_ids")
    for l in range(cfg.layers):
        ours, pre = "layers.%d." % l, "model.layers.%d." % l
        n = g.op("RMSNormalization", [x, g.weight(ours + "attention_norm.weight", pre + "input_layernorm.weight",
                                                  False)], axis=-1, epsilon=eps, stash_type=1)
        q = g.linear(n, ours + "attention.wq.weight", pre + "attn.q_proj.MatMul.weight")
        k = g.linear(n, ours + "attention.wk.weight", pre + "attn.k_proj.MatMul.weight")
        v = g.linear(n, ours + "attention.wv.weight", pre + "attn.v_proj.MatMul.weight")
        q = g.op("RotaryEmbedding", [q, "cos_cache", "sin_cache", "position_ids"], num_heads=cfg.heads,
                 interleaved=0)
        k = g.op("RotaryEmbedding", [k, "cos_cache", "sin_cache", "position_ids"], num_heads=cfg.kv_heads,
                 interleaved=0)
        a = g.op("Attention", [q, k, v], q_num_heads=cfg.heads, kv_num_heads=cfg.kv_heads, is_causal=1)
        x = g.op("Add", [x, g.linear(a, ours + "attention.wo.weight", pre + "attn.o_proj.MatMul.weight")])
        n = g.op("RMSNormalization", [x, g.weight(ours + "ffn_norm.weight", pre + "post_attention_layernorm.weight",
                                                  False)], axis=-1, epsilon=eps, stash_type=1)
        x = g.op("Add", [x, g.swiglu_mlp(n, l, pre + "mlp.")])
    n = g.op("RMSNormalization", [x, g.weight("norm.weight", "model.norm.weight", False)], axis=-1, epsilon=eps,
             stash_type=1)
    g.lm_head(n)
    proto = g.model([int_input("input_ids", ["batch_size", "sequence_length"]),
                     int_input("position_ids", ["batch_size", "sequence_length"])],
                    [float_io("logits", ["batch_size", "sequence_length", cfg.vocab_size])],
                    [("", 23)], 11, "opset23_decoder")
    return save(proto, name, cfg, "llama", "ONNX opset 23 standard ops (RMSNormalization, RotaryEmbedding, "
                "Attention), hand-built with onnx.helper, IR version 11", llm_inputs(cfg, ["input_ids", "position_ids"]),
                llm_outputs(cfg), g.param_map, "tiny_baseline", opset=23, check=False)


BUILDERS = {"opset23": build}
