"""Shared pieces of the foreign-style exporters: source decoders (trained tiny
models or seeded random ones), torch.onnx export, the parameter map found by
content (which initializer holds which of our Decoder's parameters, after
constant folding renamed and transposed them), metadata, manifest writing.

Every export computes exactly the function of our reference Decoder
(models/zoo/w4a4zoo/model.py) for the manifest's config; the reference loader
(models/reference/w4a4ref/loader.py) rebuilds that Decoder from the file's
initializers through manifest["onnx"]["param_map"]."""

import collections
import json
import os
import shutil
import sys
import tempfile

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.dirname(HERE)
ZOO = os.path.join(MODELS, "zoo")
EXPORTS = os.path.join(ZOO, "exports")
for p in (MODELS, os.path.join(MODELS, "reference")):
    if p not in sys.path:
        sys.path.insert(0, p)

from zoo.w4a4zoo.model import Decoder, ModelConfig, RMSNorm  # noqa: E402
from w4a4ref.loader import initializer_f32, load_decoder  # noqa: E402

BOS = 1
MAX_POSITIONS = 512
TOKENIZER = "w4a4c_bpe4096.model"
TINY = dict(vocab_size=4096, hidden=64, layers=2, heads=2, kv_heads=2, head_dim=32, ffn=192, max_seq=MAX_POSITIONS,
            rope_theta=10000.0, norm_eps=1e-5, tied=True)


def trained(name):
    """A shipped tiny model (fp16-rounded weights) as our Decoder."""
    model, _ = load_decoder(os.path.join(ZOO, name))
    return model


def random_decoder(seed, **cfg):
    """Seeded Decoder: std-0.02 weights (Decoder._init), norm gains
    1 + 0.1 randn so that they matter."""
    torch.manual_seed(seed)
    model = Decoder(ModelConfig(**cfg))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, RMSNorm):
                m.weight.copy_(1 + 0.1 * torch.randn(m.weight.shape))
    return model.eval()


def round_params(model, dtype):
    """Rounds the Decoder's parameters to dtype (torch.float16 / bfloat16)
    in place, so that the fp32 module and the low-precision file agree."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(dtype).float())
    return model


def ours_to_hf(name):
    """Our Decoder parameter name -> Hugging Face Llama name."""
    table = [("tok_embeddings.", "model.embed_tokens."), ("attention_norm.", "input_layernorm."),
             ("ffn_norm.", "post_attention_layernorm."), ("attention.wq.", "self_attn.q_proj."),
             ("attention.wk.", "self_attn.k_proj."), ("attention.wv.", "self_attn.v_proj."),
             ("attention.wo.", "self_attn.o_proj."), ("feed_forward.w1.", "mlp.gate_proj."),
             ("feed_forward.w3.", "mlp.up_proj."), ("feed_forward.w2.", "mlp.down_proj."), ("output.", "lm_head.")]
    for a, b in table:
        name = name.replace(a, b)
    if name.startswith("layers."):
        name = "model." + name
    if name == "norm.weight":
        name = "model.norm.weight"
    return name


def torch_export(module, args, input_names, output_names, dynamic_axes, opset=17, fold=True):
    module.eval()
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "raw.onnx")
        with torch.no_grad():
            torch.onnx.export(module, args, raw, input_names=input_names, output_names=output_names,
                              dynamic_axes=dynamic_axes, opset_version=opset, do_constant_folding=fold)
        return onnx.load(raw)


def param_map_by_content(proto, decoder):
    """{our parameter: {"name", "transpose"}} by comparing values: each of
    the Decoder's parameters is looked for among the float initializers as
    is, transposed, or (3-D registers) one initializer per layer. Prefers an
    untransposed match (a tied embedding also appears transposed for the
    lm_head MatMul)."""
    inits = [(i.name, initializer_f32(i)) for i in proto.graph.initializer
             if i.data_type in (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16) and len(i.dims)]

    def find(p):
        for transpose in (False, True):
            want = p.T if transpose else p
            for name, arr in inits:
                if arr.size == want.size and np.array_equal(arr.reshape(want.shape), want):
                    if arr.shape == want.shape or arr.squeeze().shape == want.squeeze().shape:
                        return {"name": name, "transpose": transpose}
        return None

    out = {}
    for pname, p in decoder.named_parameters():
        arr = p.detach().numpy()
        entry = find(arr)
        if entry is None and arr.ndim == 3:
            layers = [find(a) for a in arr]
            if all(layers):
                entry = {"stack": layers}
        if entry is None:
            raise RuntimeError("parameter %s not found among the initializers" % pname)
        out[pname] = entry
    return out


def op_histogram(proto):
    """{"domain::OpType" or "OpType": count}, sorted by name."""
    counts = collections.Counter((n.domain + "::" if n.domain not in ("", "ai.onnx") else "") + n.op_type
                                 for n in proto.graph.node)
    return dict(sorted(counts.items()))


def set_metadata(proto, cfg, model_type):
    meta = {"bos_id": str(BOS), "vocab_size": str(cfg.vocab_size), "max_positions": str(MAX_POSITIONS),
            "model_type": model_type}
    if cfg.registers:
        meta["n_registers"] = str(cfg.registers)
    del proto.metadata_props[:]
    for k, v in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v


def llm_inputs(cfg, names, past=False, dtype_mask="int64"):
    """The manifest's "inputs" list for the usual LLM input names."""
    kinds = {"input_ids": "input_ids", "attention_mask": "attention_mask", "position_ids": "position_ids"}
    out = [{"name": n, "kind": kinds[n], "dtype": dtype_mask if n == "attention_mask" else "int64"} for n in names]
    if past:
        for l in range(cfg.layers):
            for which in ("key", "value"):
                out.append({"name": "past_key_values.%d.%s" % (l, which), "kind": "past_" + which, "layer": l,
                            "dtype": "float32", "layout": "[batch, kv_heads, past_seq, head_dim]"})
    return out


def llm_outputs(cfg, past=False, registers_in_logits=0):
    out = {"logits": "logits", "layout": "[batch, seq, vocab]"}
    if registers_in_logits:
        out["logits_include_registers"] = registers_in_logits
    if past:
        out["present"] = [{"name": "present.%d.%s" % (l, w), "kind": "present_" + w, "layer": l,
                           "layout": "[batch, kv_heads, past_seq + seq, head_dim]"}
                          for l in range(cfg.layers) for w in ("key", "value")]
    return out


def save(proto, name, cfg, model_type, imitates, inputs, outputs, param_map, source, weights="float32",
         external=False, opset=17, check=True, notes=None, extra=None):
    """Writes models/zoo/exports/<name>/{model.onnx[, model.onnx.data], manifest.json}."""
    set_metadata(proto, cfg, model_type)
    if check:
        onnx.checker.check_model(proto)
    out_dir = os.path.join(EXPORTS, name)
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    os.makedirs(out_dir)
    path = os.path.join(out_dir, "model.onnx")
    if external:
        onnx.save_model(proto, path, save_as_external_data=True, all_tensors_to_one_file=True,
                        location="model.onnx.data", size_threshold=0)
    else:
        onnx.save_model(proto, path)
    opsets = {(o.domain or "ai.onnx"): o.version for o in proto.opset_import}
    manifest = {
        "name": name,
        "imitates": imitates,
        "model_type": model_type,
        "config": cfg.to_dict(),
        "source_weights": source,
        "onnx": {"file": "model.onnx", "opset": opset, "opset_import": opsets, "ir_version": proto.ir_version,
                 "weights": weights, "external_data": "model.onnx.data" if external else None,
                 "param_map": param_map},
        "inputs": inputs,
        "outputs": outputs,
        "metadata_props": {p.key: p.value for p in proto.metadata_props},
        "op_histogram": op_histogram(onnx.load(path, load_external_data=False)),
        "tokenizer": TOKENIZER,
    }
    if notes:
        manifest["notes"] = notes
    manifest.update(extra or {})
    write_manifest(out_dir, manifest)
    return out_dir


def write_manifest(out_dir, manifest):
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")


# ----------------------------------------------------------------------------
# Hand-built graphs (onnx.helper)
# ----------------------------------------------------------------------------

class GraphBuilder:
    """Small helper for onnx.helper graphs: unique names, initializers."""

    def __init__(self):
        self.nodes, self.inits, self.count = [], [], collections.Counter()

    def name(self, base):
        self.count[base] += 1
        return "%s_%d" % (base, self.count[base])

    def init(self, name, arr, dtype=None):
        arr = np.asarray(arr)
        if dtype == TensorProto.BFLOAT16:
            bits = (np.ascontiguousarray(arr, dtype=np.float32).view(np.uint32) >> 16).astype("<u2")
            t = helper.make_tensor(name, TensorProto.BFLOAT16, arr.shape, bits.tobytes(), raw=True)
        else:
            t = numpy_helper.from_array(arr, name)
        self.inits.append(t)
        return name

    def const(self, arr, base="const"):
        return self.init(self.name(base), np.asarray(arr))

    def op(self, op_type, inputs, n_out=1, domain="", outputs=None, **attrs):
        base = op_type.lower()
        outs = outputs or [self.name(base + "_out") for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=self.name(op_type), domain=domain, **attrs))
        return outs[0] if n_out == 1 and not outputs else outs
