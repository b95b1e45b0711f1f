#!/usr/bin/python3
"""Writes libFuzzer seeds for the ONNX importer (test/fuzz/ImportFuzzer.cpp):
test/fuzz/seeds/<style>.onnx, one tiny model per foreign export style, made
by the SAME build functions as models/zoo/exports/<style>/ (build_all.py's
BUILDERS), so each graph has the structure of the shipped export, but with a
tiny config (vocab 32, hidden 16, heads 2 x head_dim 8, ffn 32, max positions
16; gqa_split 4 query / 2 KV heads of 8, gptj_rope and genai_contrib
head_dim 16) and seeded random weights, stored inline (also for hf_llama*,
shipped with external data), each file under 60,000 bytes (dr_* and
gptj_rope with node names cleared and intermediate values renamed t0, t1,
...: see compact_names). One layer, except where a later layer is written differently
(dr_*: the per-layer register add; genai_*: SkipSimplifiedLayerNormalization
as the input norm, genai_contrib's do_rotary layer): two.

The build functions are run with common's trained() / random_decoder() and
save() replaced in their modules: the source decoder is a seeded random
Decoder of the tiny config (the shipped config's other fields kept), and
save() writes the seed instead of an export directory. Each seed is run
once through onnxruntime-node (check_exports.ort_run, batch 1, 5 tokens, BOS
first) and its logits compared with the PyTorch Decoder it was made from.
Deterministic: a second run writes the same bytes.

    /usr/bin/python3 models/exporters/make_fuzz_seeds.py [STYLE ...]
"""

import importlib
import json
import os
import sys

import numpy as np
import onnx
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import build_all  # noqa: E402
import common  # noqa: E402

sys.path.insert(0, os.path.join(common.MODELS, "reference"))
import check_exports  # noqa: E402

REPO = os.path.dirname(common.MODELS)
SEEDS = os.path.join(REPO, "test", "fuzz", "seeds")
MAX_BYTES = 60000

TINY = dict(vocab_size=32, hidden=16, layers=1, heads=2, kv_heads=2, head_dim=8, ffn=32, max_seq=16)
# Per style: overrides of TINY (the shipped config's remaining fields are kept).
OVERRIDES = {
    # head_dim 4 would export with one Constant fewer (the rotate-half split sizes [2, 2] deduplicated).
    "gqa_split": dict(heads=4, kv_heads=2, head_dim=8),
    # repeat_interleave(sin, 2, -1) exports unrolled per element of head_dim / 2: keep the shipped 16.
    "gptj_rope": dict(head_dim=16),
    "dr_zeros": dict(layers=2),
    "dr_logits_with_registers": dict(layers=2),
    "genai_contrib": dict(layers=2, head_dim=16),  # GroupQueryAttention (CPU) do_rotary: head_size % 16 == 0
    "genai_mha": dict(layers=2),
}


def compact_names(proto):
    """Same graph, shorter strings: node names cleared, intermediate values
    (node outputs other than the graph's outputs) renamed t0, t1, ... in node
    order; graph inputs, outputs and initializers keep their names."""
    keep = {o.name for o in proto.graph.output}
    rename = {}
    for node in proto.graph.node:
        assert not any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute)
        node.name = ""
        for i, x in enumerate(node.input):
            node.input[i] = rename.get(x, x)
        for i, x in enumerate(node.output):
            if x and x not in keep:
                rename[x] = node.output[i] = "t%d" % len(rename)
    for vi in proto.graph.value_info:
        vi.name = rename.get(vi.name, vi.name)


def shipped_config(name):
    with open(os.path.join(common.EXPORTS, name, "manifest.json")) as f:
        return json.load(f)["config"]


# torch-exported styles whose value names ("/layers.0/attention/Unsqueeze_3_output_0",
# ...) would take the file past MAX_BYTES (dr_*: two layers; gptj_rope: the
# unrolled repeat_interleave).
COMPACT = {"dr_zeros", "dr_logits_with_registers", "gptj_rope"}


def tiny_config(name):
    cfg = dict(shipped_config(name))
    cfg.update(TINY)
    cfg.update(OVERRIDES.get(name, {}))
    return cfg


def style_modules():
    return [importlib.import_module(m) for m in build_all.STYLES]


def make_seed(name, module, build, seed):
    """Runs `build` with the source decoder and save() replaced; returns
    (path, manifest-like dict, decoder)."""
    cfg = tiny_config(name)
    made = {}

    def source(*args, **_kwargs):
        made["decoder"] = common.random_decoder(seed, **cfg)
        if isinstance(args[0], str):  # trained(name): the shipped tiny models have fp16-rounded weights
            common.round_params(made["decoder"], torch.float16)
        return made["decoder"]

    def save(proto, _name, mcfg, model_type, _imitates, inputs, outputs, _param_map, _source, check=True, **_kw):
        saved_max = common.MAX_POSITIONS
        common.MAX_POSITIONS = mcfg.max_seq
        try:
            common.set_metadata(proto, mcfg, model_type)
        finally:
            common.MAX_POSITIONS = saved_max
        if check:
            onnx.checker.check_model(proto)
        proto.producer_version = ""  # no torch version in the seed bytes
        if name in COMPACT:
            compact_names(proto)
        path = os.path.join(SEEDS, name + ".onnx")
        with open(path, "wb") as f:
            f.write(proto.SerializeToString())
        made["manifest"] = {"config": mcfg.to_dict(), "inputs": inputs, "outputs": outputs}
        return path

    patched = {a: getattr(module, a) for a in ("trained", "random_decoder", "save") if hasattr(module, a)}
    try:
        for a in patched:
            setattr(module, a, save if a == "save" else source)
        path = build(name)
    finally:
        for a, v in patched.items():
            setattr(module, a, v)
    return path, made["manifest"], made["decoder"]


def ort_check(path, manifest, decoder):
    ids = np.random.default_rng(0).integers(3, manifest["config"]["vocab_size"], size=(1, 5)).astype(np.int64)
    ids[:, 0] = common.BOS
    out = check_exports.ort_run(path, check_exports.feeds_for(manifest, ids))
    got = check_exports.logits_of(manifest, out)
    with torch.no_grad():
        ref = decoder(torch.from_numpy(ids)).numpy()
    if got.shape != ref.shape:
        raise RuntimeError("%s: onnxruntime gives %s, PyTorch %s" % (path, got.shape, ref.shape))
    return got.shape, check_exports.rel_err(got, ref)


def main():
    torch.set_num_threads(1)
    table = {}
    for module in style_modules():
        for name, build in module.BUILDERS.items():
            table[name] = (module, build)
    names = sys.argv[1:] or sorted(table)
    unknown = [n for n in names if n not in table]
    if unknown:
        sys.exit("make_fuzz_seeds: unknown style(s) %s; known: %s" % (unknown, ", ".join(sorted(table))))
    os.makedirs(SEEDS, exist_ok=True)
    failed = 0
    for name in names:
        module, build = table[name]
        seed = 1000 + sorted(table).index(name)
        path, manifest, decoder = make_seed(name, module, build, seed)
        size = os.path.getsize(path)
        shape, err = ort_check(path, manifest, decoder)
        ok = size < MAX_BYTES and err <= 1e-4
        failed += not ok
        print("%-26s %6d bytes  ort logits %s  rel err vs torch %.2e  %s"
              % (name, size, list(shape), err, "ok" if ok else "FAIL"), flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
