//===- W4A4KernelOps.td - kernel-level IR of w4a4 ----------*- tablegen -*-===//
//
// The kernel-level IR between the model-level w4a4 ops and code: one op per
// runtime kernel call, with every target-specific decision explicit (weight
// layout, which consumers share one activation quantization, where each
// result lives in the activation arena). Produced by
// --w4a4-lower-to-kernels{target=...}, annotated by --w4a4k-plan-buffers,
// turned into EmitC by --w4a4k-to-emitc.
//
//===----------------------------------------------------------------------===//

#ifndef W4A4_KERNEL_OPS_TD
#define W4A4_KERNEL_OPS_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def W4A4K_Dialect : Dialect {
  let name = "w4a4k";
  let cppNamespace = "::mlir::w4a4k";
  let summary = "Kernel-level IR of w4a4: runtime kernel calls with explicit layouts, sharing and buffers";
  let description = [{
    Every op is one call of a runtime kernel (`runtime/include/w4a4/runtime/
    Compiled.h`). Activations are fp32 tensors `[batch, seq, features]` (seq
    may be dynamic; batch and every feature width are static), one row per
    token. Quantized activations are `!w4a4k.qrows` values: per-token codes
    and scales made once by `w4a4k.quantize` and read by every `w4a4k.qgemm`
    that uses them. Weights stay `w4a4.weight` ops; integer weights are read
    by `w4a4k.qgemm` in the layout its `layout` attribute names.

    After `--w4a4k-plan-buffers` each fp32 result carries
    `w4a4k.slot = [offset, width]`: it is the contiguous block of
    `rows x width` floats that starts `offset x rows` floats into an arena
    of `rows x w4a4k.arena_width` (function attribute), rows = batch *
    (seq + the largest register prefix): every buffer's size is a function
    of batch and sequence.
  }];
  let useDefaultTypePrinterParser = 1;
}

class W4A4K_Op<string mnemonic, list<Trait> traits = []>
    : Op<W4A4K_Dialect, mnemonic, traits>;

def W4A4K_QRowsType : TypeDef<W4A4K_Dialect, "QRows"> {
  let mnemonic = "qrows";
  let summary = "Per-token quantized activations (codes and scales)";
  let parameters = (ins "int64_t":$bits, "int64_t":$width);
  let assemblyFormat = "`<` $bits `x` $width `>`";
}

def W4A4K_F32Tensor : RankedTensorOf<[F32]>;

def W4A4K_EmbeddingOp : W4A4K_Op<"embedding", [Pure]> {
  let summary = "Row gather: out[t] = table[ids[t]]";
  let arguments = (ins W4A4K_F32Tensor:$table, RankedTensorOf<[I64]>:$ids);
  let results = (outs W4A4K_F32Tensor:$result);
  let assemblyFormat = "$table `[` $ids `]` attr-dict `:` type($table) `,` type($ids) `->` type($result)";
}

def W4A4K_RMSNormOp : W4A4K_Op<"rms_norm", [Pure]> {
  let summary = "Row RMSNorm (optional gain)";
  let arguments = (ins W4A4K_F32Tensor:$input, Optional<W4A4K_F32Tensor>:$gain,
                   F64Attr:$epsilon);
  let results = (outs W4A4K_F32Tensor:$result);
  let assemblyFormat = "$input (`gain` `(` $gain^ `:` type($gain) `)`)? attr-dict `:` type($input) `->` type($result)";
}

def W4A4K_GemmOp : W4A4K_Op<"gemm", [Pure]> {
  let summary = "fp32 GEMM y = x W^T (+ bias)";
  let arguments = (ins W4A4K_F32Tensor:$input, W4A4K_F32Tensor:$weight,
                   Optional<W4A4K_F32Tensor>:$bias);
  let results = (outs W4A4K_F32Tensor:$result);
  let assemblyFormat = "$input `,` $weight (`bias` `(` $bias^ `:` type($bias) `)`)? attr-dict `:` type($input) `,` type($weight) `->` type($result)";
}

def W4A4K_QuantizeOp : W4A4K_Op<"quantize", [Pure]> {
  let summary = "Per-token symmetric quantization of fp32 rows to codes + scales";
  let arguments = (ins W4A4K_F32Tensor:$input, F64Attr:$clip_ratio);
  let results = (outs W4A4K_QRowsType:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

def W4A4K_QGemmOp : W4A4K_Op<"qgemm", [Pure, AttrSizedOperandSegments]> {
  let summary = "Integer GEMM of quantized rows and quantized weights";
  let description = [{
    `y[t, o] = s_x[t] * sum_g s_w[o, g] * sum_(i in g) qx[t, i] qw[o, i]`
    (+ bias), int32 accumulation. `codes` and `scales` are the IR's
    (`w4a4.qlinear`); `layout` names how the target holds them:
    `cpu_vnni_panels` (the CPU target: 16 outputs x 4 inputs per 64-byte
    panel, built when the artifact is opened). A `residual` (from
    `--w4a4k-fuse`) is added in the epilogue after the bias: `y = (...) +
    residual`, rounded as a separate `w4a4k.add` would.
  }];
  let arguments = (ins W4A4K_QRowsType:$input, RankedTensorOf<[I8]>:$codes,
                   W4A4K_F32Tensor:$scales, Optional<W4A4K_F32Tensor>:$bias,
                   Optional<W4A4K_F32Tensor>:$residual,
                   I64Attr:$weight_bits, I64Attr:$out_features,
                   I64Attr:$group_size, StrAttr:$layout);
  let results = (outs W4A4K_F32Tensor:$result);
  let assemblyFormat = "$input `,` $codes `,` $scales (`bias` `(` $bias^ `:` type($bias) `)`)? (`residual` `(` $residual^ `:` type($residual) `)`)? attr-dict `:` type($input) `,` type($codes) `,` type($scales) `->` type($result)";
  let hasVerifier = 1;
}

def W4A4K_FakeQuantOp : W4A4K_Op<"fake_quant", [Pure]> {
  let summary = "Quantize-dequantize fp32 rows (per row or per group)";
  let arguments = (ins W4A4K_F32Tensor:$input, I64Attr:$bits, F64Attr:$clip_ratio,
                   I64Attr:$group);
  let results = (outs W4A4K_F32Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
}

def W4A4K_RoPEOp : W4A4K_Op<"rope", [Pure]> {
  let summary = "Rotary embedding (positions from the call's offset, or per token)";
  let arguments = (ins W4A4K_F32Tensor:$input,
                   Optional<RankedTensorOf<[I64]>>:$positions, I64Attr:$head_dim,
                   F64Attr:$theta, I64Attr:$position_offset, BoolAttr:$interleaved);
  let results = (outs W4A4K_F32Tensor:$result);
  let assemblyFormat = "$input (`positions` `(` $positions^ `:` type($positions) `)`)? attr-dict `:` type($input) `->` type($result)";
}

def W4A4K_AttentionOp : W4A4K_Op<"attention", [Pure, AttrSizedOperandSegments]> {
  let summary = "Causal attention (GQA, optional constant KV prefix, KV cache)";
  let description = [{
    With `cache_layer = i`, the call's keys and values are appended to layer
    i of the artifact's KV cache and every token attends to the constant
    prefix, the cached tokens and the call's tokens up to itself; RoPE
    positions then start at the cache's length. Without it the op sees only
    the call's tokens.
  }];
  let arguments = (ins W4A4K_F32Tensor:$query, W4A4K_F32Tensor:$key,
                   W4A4K_F32Tensor:$value, Optional<W4A4K_F32Tensor>:$key_prefix,
                   Optional<W4A4K_F32Tensor>:$value_prefix, I64Attr:$num_heads,
                   I64Attr:$num_kv_heads, I64Attr:$head_dim, F64Attr:$scale,
                   OptionalAttr<I64Attr>:$cache_layer);
  let results = (outs W4A4K_F32Tensor:$result);
  let assemblyFormat = "$query `,` $key `,` $value (`prefix` `(` $key_prefix^ `,` $value_prefix `:` type($key_prefix) `,` type($value_prefix) `)`)? attr-dict `:` type($query) `,` type($key) `,` type($value) `->` type($result)";
}

def W4A4K_SwiGLUOp : W4A4K_Op<"swiglu", [Pure]> {
  let summary = "silu(gate) * up";
  let arguments = (ins W4A4K_F32Tensor:$gate, W4A4K_F32Tensor:$up);
  let results = (outs W4A4K_F32Tensor:$result);
  let assemblyFormat = "$gate `,` $up attr-dict `:` functional-type(operands, results)";
}

def W4A4K_AddOp : W4A4K_Op<"add", [Pure]> {
  let summary = "Elementwise sum";
  let arguments = (ins W4A4K_F32Tensor:$lhs, W4A4K_F32Tensor:$rhs);
  let results = (outs W4A4K_F32Tensor:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` functional-type(operands, results)";
}

def W4A4K_HadamardOp : W4A4K_Op<"hadamard", [Pure]> {
  let summary = "Blocked Walsh-Hadamard transform of rows (signs as a tensor)";
  let arguments = (ins W4A4K_F32Tensor:$input, Optional<W4A4K_F32Tensor>:$signs,
                   I64Attr:$size, I64Attr:$stride, BoolAttr:$inverse);
  let results = (outs W4A4K_F32Tensor:$result);
  let assemblyFormat = "$input (`signs` `(` $signs^ `:` type($signs) `)`)? attr-dict `:` type($input) `->` type($result)";
}

def W4A4K_RegistersOp : W4A4K_Op<"registers", [Pure]> {
  let summary = "Depth Registers: prepend, add or strip k rows per sequence";
  let arguments = (ins W4A4K_F32Tensor:$input, W4A4K_F32Tensor:$registers,
                   StrAttr:$mode);
  let results = (outs W4A4K_F32Tensor:$result);
  let assemblyFormat = "$input `,` $registers attr-dict `:` type($input) `,` type($registers) `->` type($result)";
}

def W4A4K_RMSNormQuantizeOp : W4A4K_Op<"rms_norm_quantize", [Pure]> {
  let summary = "Fused rms_norm and per-token quantization (the normed rows are not stored)";
  let description = [{
    `w4a4k.quantize(w4a4k.rms_norm(x))` one row at a time (made by
    `--w4a4k-fuse` where the norm's only reader is the quantize): the same
    codes and scales, without writing and reading back the fp32 rows.
  }];
  let arguments = (ins W4A4K_F32Tensor:$input, Optional<W4A4K_F32Tensor>:$gain,
                   F64Attr:$epsilon, F64Attr:$clip_ratio);
  let results = (outs W4A4K_QRowsType:$result);
  let assemblyFormat = "$input (`gain` `(` $gain^ `:` type($gain) `)`)? attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

def W4A4K_SwiGLUQuantizeOp : W4A4K_Op<"swiglu_quantize", [Pure]> {
  let summary = "Fused swiglu, optional online Hadamard, and per-token quantization";
  let description = [{
    `w4a4k.quantize(w4a4k.hadamard(w4a4k.swiglu(gate, up)))` (the Hadamard
    when `hadamard_size > 0`, with its `signs`, `hadamard_stride` and
    `hadamard_inverse`) one row at a time: the down projection's input as
    QuaRot's online rotation makes it, never stored in fp32. Made by
    `--w4a4k-fuse`.
  }];
  let arguments = (ins W4A4K_F32Tensor:$gate, W4A4K_F32Tensor:$up,
                   Optional<W4A4K_F32Tensor>:$signs, I64Attr:$hadamard_size,
                   I64Attr:$hadamard_stride, BoolAttr:$hadamard_inverse,
                   F64Attr:$clip_ratio);
  let results = (outs W4A4K_QRowsType:$result);
  let assemblyFormat = "$gate `,` $up (`signs` `(` $signs^ `:` type($signs) `)`)? attr-dict `:` type($gate) `,` type($up) `->` type($result)";
  let hasVerifier = 1;
}

def W4A4K_TailRowsOp : W4A4K_Op<"tail_rows", [Pure]> {
  let summary = "The rows a call scores: the last positions of each sequence";
  let description = [{
    The start of the row-wise tail (`--w4a4k-split-tail`): the ops after it
    (marked `w4a4k.tail`: the final norm, the LM head and their
    quantization) run only on the last `scored` positions of each sequence,
    which the caller chooses per call (`w4a4_forward_last`; all positions
    for `w4a4_forward`). Its result holds `batch x scored` rows.
  }];
  let arguments = (ins W4A4K_F32Tensor:$input);
  let results = (outs W4A4K_F32Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
}

#endif
