#!/usr/bin/python3
"""Writes the small ONNX inputs of the importer tests (run from this folder):

    /usr/bin/python3 make_inputs.py
"""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def model(nodes, inputs, outputs, inits=(), opset=17, name="g"):
    g = helper.make_graph(nodes, name, inputs, outputs, initializer=list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="w4a4c-tests")
    m.ir_version = 8
    return m


def save(m, path):
    with open(path, "wb") as f:
        f.write(m.SerializeToString())


X = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
Y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])
w = numpy_helper.from_array(np.arange(8, dtype=np.float32).reshape(4, 2), "w")

# A valid one-node model: y = x @ w.
save(model([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], [X], [Y], [w]), "matmul.onnx")

# Empty graph.
save(model([], [X], [Y]), "empty_graph.onnx")

# An op outside the supported set, and one no schema knows.
save(model([helper.make_node("MatMul", ["x", "w"], ["t"], name="mm"),
            helper.make_node("Hardmax", ["t"], ["y"], name="hm")], [X], [Y], [w]), "unsupported_op.onnx")
save(model([helper.make_node("Frobnicate", ["x"], ["y"], name="frob")], [X], [Y]), "unknown_op.onnx")

# Opset outside the supported range.
save(model([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], [X], [Y], [w], opset=9), "old_opset.onnx")

# An initializer whose data does not match its shape (dims say 4x2, data has 6 floats).
bad = numpy_helper.from_array(np.zeros(6, dtype=np.float32), "w")
del bad.dims[:]
bad.dims.extend([4, 2])
save(model([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], [X], [Y], [bad]), "wrong_dims.onnx")

# Shapes that do not fit: [batch, 4] @ [3, 2].
w3 = numpy_helper.from_array(np.zeros((3, 2), dtype=np.float32), "w")
save(model([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], [X], [Y], [w3]), "shape_mismatch.onnx")


def external(location, path):
    t = TensorProto()
    t.name, t.data_type = "w", TensorProto.FLOAT
    t.dims.extend([4, 2])
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", "32")):
        e = t.external_data.add()
        e.key, e.value = k, v
    save(model([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], [X], [Y], [t]), path)


# External data: valid, and paths that leave the model folder.
external("external_ok.bin", "external_ok.onnx")
np.arange(8, dtype=np.float32).tofile("external_ok.bin")
external("../external_ok.bin", "external_dotdot.onnx")
external("/etc/hostname", "external_absolute.onnx")
external("missing.bin", "external_missing.onnx")

# An opset-23 op in an opset-17 model, and an opset newer than stage 1 knows.
S = helper.make_tensor_value_info("s", TensorProto.FLOAT, [4])
g4 = numpy_helper.from_array(np.ones(4, dtype=np.float32), "g")
save(model([helper.make_node("RMSNormalization", ["x", "g"], ["y4"], name="rms")], [X],
           [helper.make_tensor_value_info("y4", TensorProto.FLOAT, ["batch", 4])], [g4]), "rms_before_23.onnx")
save(model([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], [X], [Y], [w], opset=24), "new_opset.onnx")

# A contrib op without the com.microsoft opset import.
ms = helper.make_node("SkipSimplifiedLayerNormalization", ["x", "x", "g"], ["y4"], name="skip", domain="com.microsoft")
save(model([ms], [X], [helper.make_tensor_value_info("y4", TensorProto.FLOAT, ["batch", 4])], [g4]),
     "ms_without_import.onnx")

# metadata_props with a non-integer bos_id.
m = model([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], [X], [Y], [w])
helper.set_model_props(m, {"bos_id": "<s>"})
save(m, "bad_metadata.onnx")

# A valid graph that is not a decoder: softmax attention without a causal
# mask (bidirectional), over [batch, seq, 4] with 2 heads of 2.
T = helper.make_tensor_value_info("t", TensorProto.FLOAT, ["batch", "seq", 4])
O = helper.make_tensor_value_info("o", TensorProto.FLOAT, ["batch", "seq", 4])
shape4 = numpy_helper.from_array(np.array([0, 0, 2, 2], dtype=np.int64), "shape4")
shape3 = numpy_helper.from_array(np.array([0, 0, 4], dtype=np.int64), "shape3")
nodes = [
    helper.make_node("Reshape", ["t", "shape4"], ["t4"], name="split"),
    helper.make_node("Transpose", ["t4"], ["q"], name="heads", perm=[0, 2, 1, 3]),
    helper.make_node("Transpose", ["q"], ["kt"], name="kt", perm=[0, 1, 3, 2]),
    helper.make_node("MatMul", ["q", "kt"], ["s"], name="qk"),
    helper.make_node("Softmax", ["s"], ["p"], name="softmax", axis=-1),
    helper.make_node("MatMul", ["p", "q"], ["pv"], name="pv"),
    helper.make_node("Transpose", ["pv"], ["pvt"], name="merge", perm=[0, 2, 1, 3]),
    helper.make_node("Reshape", ["pvt", "shape3"], ["o"], name="out"),
]
save(model(nodes, [T], [O], [shape4, shape3]), "bidirectional_attention.onnx")

# Opset 18: ReduceMean takes its axes as an input, Split its num_outputs as
# an attribute; an RMSNorm written with them, then split in two halves.
H = helper.make_tensor_value_info("h", TensorProto.FLOAT, ["batch", "seq", 8])
A = helper.make_tensor_value_info("lo", TensorProto.FLOAT, ["batch", "seq", 4])
B = helper.make_tensor_value_info("hi", TensorProto.FLOAT, ["batch", "seq", 4])
inits18 = [numpy_helper.from_array(np.array([-1], dtype=np.int64), "axes"),
           numpy_helper.from_array(np.array(1e-6, dtype=np.float32), "eps"),
           numpy_helper.from_array(np.array(2.0, dtype=np.float32), "two"),
           numpy_helper.from_array(np.linspace(0.5, 1.5, 8).astype(np.float32), "gain")]
nodes18 = [
    helper.make_node("Pow", ["h", "two"], ["sq"], name="sq"),
    helper.make_node("ReduceMean", ["sq", "axes"], ["ms"], name="mean", keepdims=1),
    helper.make_node("Add", ["ms", "eps"], ["mse"], name="addeps"),
    helper.make_node("Sqrt", ["mse"], ["rms"], name="sqrt"),
    helper.make_node("Div", ["h", "rms"], ["n"], name="div"),
    helper.make_node("Mul", ["n", "gain"], ["g"], name="gain"),
    helper.make_node("Split", ["g"], ["lo", "hi"], name="split", axis=-1, num_outputs=2),
]
save(model(nodes18, [H], [A, B], inits18, opset=18), "rmsnorm_opset18.onnx")

# Hostile sizes: dims whose element count overflows 64 bits (the wrapped
# count would match the small blob), and a count that fits but is far
# larger than the data.
# An embedding table [2^62 + 64, 128] over 32 KB: (2^62 + 64) * 128 * 4
# bytes wraps to exactly 32768.
huge = TensorProto()
huge.name, huge.data_type = "table", TensorProto.FLOAT
huge.dims.extend([2 ** 62 + 64, 128])
huge.raw_data = np.zeros(64 * 128, dtype=np.float32).tobytes()
IDS = helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "seq"])
EMB = helper.make_tensor_value_info("h", TensorProto.FLOAT, ["batch", "seq", 128])
save(model([helper.make_node("Gather", ["table", "ids"], ["h"], name="embed")], [IDS], [EMB], [huge]),
     "overflow_dims.onnx")
big = TensorProto()
big.name, big.data_type = "w", TensorProto.FLOAT
big.dims.extend([2 ** 40, 2 ** 20])
big.raw_data = np.zeros(8, dtype=np.float32).tobytes()
save(model([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], [X], [Y], [big]), "huge_dims.onnx")


def external_kv(path, **kv):
    t = TensorProto()
    t.name, t.data_type = "w", TensorProto.FLOAT
    t.dims.extend([4, 2])
    t.data_location = TensorProto.EXTERNAL
    for k, v in kv.items():
        e = t.external_data.add()
        e.key, e.value = k, v
    save(model([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], [X], [Y], [t]), path)


# External data with malformed offsets / lengths, and a directory.
external_kv("external_offset_junk.onnx", location="external_ok.bin", offset="0junk", length="32")
external_kv("external_negative_length.onnx", location="external_ok.bin", offset="0", length="-1")
external_kv("external_offset_overflow.onnx", location="external_ok.bin", offset="99999999999999999999999")
external_kv("external_directory.onnx", location=".", offset="0", length="32")
external_kv("external_past_end.onnx", location="external_ok.bin", offset="16", length="32")
