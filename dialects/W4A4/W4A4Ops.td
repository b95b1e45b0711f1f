//===- W4A4Ops.td - w4a4 operations ------------------------*- tablegen -*-===//
//
// Every op names its verifier constraints `<op>_cN` in W4A4Ops.cpp; the
// invalid.mlir test has one expected-error case per constraint.
//
//===----------------------------------------------------------------------===//

#ifndef W4A4_OPS_TD
#define W4A4_OPS_TD

include "dialects/W4A4/W4A4Dialect.td"
include "mlir/IR/BuiltinAttributeInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def W4A4_FloatTensor : RankedTensorOf<[AnyFloat]>;

//===----------------------------------------------------------------------===//
// weight
//===----------------------------------------------------------------------===//

def W4A4_WeightOp : W4A4_Op<"weight",
    [Pure, AllTypesMatch<["value", "result"]>]> {
  let summary = "A named model parameter";
  let description = [{
    A constant tensor of the model, named after the parameter it came from
    (the ONNX initializer name). The value is normally a `dense_resource`
    blob so that large weights are neither copied nor printed inline. It is
    deliberately not `ConstantLike`: the greedy rewriter would merge weights
    with equal values (all-ones gains, say) and lose their names.

    ```mlir
    %w = w4a4.weight "layers.0.mlp.w1.weight" = dense_resource<w1> : tensor<256x64xf32>
    ```
  }];
  let arguments = (ins StrAttr:$name, ElementsAttr:$value);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$name `=` $value attr-dict";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// embedding
//===----------------------------------------------------------------------===//

def W4A4_EmbeddingOp : W4A4_Op<"embedding", [Pure]> {
  let summary = "Embedding lookup of token ids";
  let description = [{
    Gathers rows of `table` (`[vocab, hidden]`) for every id:
    `result[..., :] = table[ids[...], :]`. Ids outside `[0, vocab)` are a
    run-time error of the executor.

    ```mlir
    %h = w4a4.embedding %table[%ids] : (tensor<4096x64xf32>, tensor<?x?xi64>) -> tensor<?x?x64xf32>
    ```
  }];
  let arguments = (ins W4A4_FloatTensor:$table,
                       RankedTensorOf<[AnySignlessInteger]>:$ids);
  let results = (outs W4A4_FloatTensor:$result);
  let assemblyFormat =
      "$table `[` $ids `]` attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// rms_norm
//===----------------------------------------------------------------------===//

def W4A4_RMSNormOp : W4A4_Op<"rms_norm",
    [Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = "RMS normalization over the last axis, with an optional gain";
  let description = [{
    `y = x / sqrt(mean(x^2) + epsilon) * gain` over the last axis. Without a
    gain the op is the bare normalization that folded norms leave behind; it
    commutes with orthogonal transforms of the last axis.

    ```mlir
    %y = w4a4.rms_norm %x gain(%g : tensor<64xf32>) {epsilon = 1.0e-05 : f64} : tensor<?x?x64xf32>
    %z = w4a4.rms_norm %x : tensor<?x?x64xf32>
    ```
  }];
  let arguments = (ins W4A4_FloatTensor:$input,
                       Optional<W4A4_FloatTensor>:$gain,
                       DefaultValuedAttr<F64Attr, "1.0e-5">:$epsilon);
  let results = (outs W4A4_FloatTensor:$result);
  let assemblyFormat = [{
    $input (`gain` `(` $gain^ `:` type($gain) `)`)? attr-dict `:` type($input)
  }];
  let hasVerifier = 1;
  let hasCanonicalizer = 1;
}

//===----------------------------------------------------------------------===//
// linear
//===----------------------------------------------------------------------===//

def W4A4_LinearOp : W4A4_Op<"linear", [Pure]> {
  let summary = "Floating-point linear layer y = x W^T (+ b)";
  let description = [{
    `weight` is `[out, in]` as in PyTorch; `input` is `[..., in]` and the
    result `[..., out]`. The optional bias is `[out]`.

    ```mlir
    %y = w4a4.linear %x, %w : (tensor<?x?x64xf32>, tensor<256x64xf32>) -> tensor<?x?x256xf32>
    %z = w4a4.linear %x, %w, %b : (tensor<?x?x64xf32>, tensor<256x64xf32>, tensor<256xf32>) -> tensor<?x?x256xf32>
    ```
  }];
  let arguments = (ins W4A4_FloatTensor:$input, W4A4_FloatTensor:$weight,
                       Optional<W4A4_FloatTensor>:$bias);
  let results = (outs W4A4_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight (`,` $bias^)? attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
  let hasCanonicalizer = 1;
}

//===----------------------------------------------------------------------===//
// rope
//===----------------------------------------------------------------------===//

def W4A4_RoPEOp : W4A4_Op<"rope", [Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = "Rotary position embedding of every head";
  let description = [{
    `input` is `[..., seq, heads * head_dim]`. Token `s` of the sequence has
    position `p = s + position_offset`, or `p = positions[b, s] +
    position_offset` when the integer `positions` (`[batch, seq]`: an
    export's `position_ids` input, or `w4a4.cache_positions` after a KV
    cache) are given; each head's pair `(x_i, x_(i+d/2))`
    (or `(x_2i, x_2i+1)` when `interleaved`) is rotated by the angle
    `p * theta^(-2i / head_dim)`, `i < head_dim / 2`.

    ```mlir
    %q2 = w4a4.rope %q {head_dim = 32 : i64, theta = 1.0e+04 : f64, position_offset = 4 : i64} : tensor<?x?x128xf32>
    %q3 = w4a4.rope %q positions(%pos : tensor<?x?xi64>) {head_dim = 32 : i64} : tensor<?x?x128xf32>
    ```
  }];
  let arguments = (ins W4A4_FloatTensor:$input,
                       Optional<RankedTensorOf<[AnySignlessInteger]>>:$positions,
                       I64Attr:$head_dim,
                       DefaultValuedAttr<F64Attr, "10000.0">:$theta,
                       DefaultValuedAttr<I64Attr, "0">:$position_offset,
                       UnitAttr:$interleaved);
  let results = (outs W4A4_FloatTensor:$result);
  let assemblyFormat = [{
    $input (`positions` `(` $positions^ `:` type($positions) `)`)?
    attr-dict `:` type($input)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// attention
//===----------------------------------------------------------------------===//

def W4A4_AttentionOp : W4A4_Op<"attention",
    [Pure, AttrSizedOperandSegments]> {
  let summary = "Causal multi-head attention with GQA, an optional constant KV prefix and an optional KV cache";
  let description = [{
    `query` is `[batch, seq, num_heads * head_dim]`, `key` and `value` are
    `[batch, seq, num_kv_heads * head_dim]`; query head `h` reads key/value
    head `h / (num_heads / num_kv_heads)`. Token `s` attends to tokens
    `0..s` of the sequence and, when present, to every row of the constant
    prefix `key_prefix`/`value_prefix` (`[prefix, num_kv_heads * head_dim]`,
    the folded Depth Registers), which precede the sequence. Scores are
    scaled by `scale` (default `1 / sqrt(head_dim)`).

    With a KV cache, `past_key`/`past_value` (`[batch, num_kv_heads, past,
    head_dim]`, the layout of ONNX exports' `past_key_values.*`) hold the
    keys and values of the `past` tokens before the sequence: token `s`
    attends to the prefix, every past token and tokens `0..s` of the
    sequence, and the op also returns `present_key`/`present_value`
    (`[batch, num_kv_heads, past + seq, head_dim]`), the past followed by
    this sequence's keys and values, to be passed as the next call's past.
    An empty past (`past = 0`) gives the same result as no past.

    ```mlir
    %o = w4a4.attention %q, %k, %v {num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 16 : i64}
        : (tensor<?x?x64xf32>, tensor<?x?x32xf32>, tensor<?x?x32xf32>) -> tensor<?x?x64xf32>
    %p = w4a4.attention %q, %k, %v prefix(%kp, %vp) {num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 16 : i64}
        : (tensor<?x?x64xf32>, tensor<?x?x32xf32>, tensor<?x?x32xf32>, tensor<4x32xf32>, tensor<4x32xf32>) -> tensor<?x?x64xf32>
    %o2, %pk2, %pv2 = w4a4.attention %q, %k, %v past(%pk, %pv) {num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 16 : i64}
        : (tensor<?x?x64xf32>, tensor<?x?x32xf32>, tensor<?x?x32xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>)
        -> (tensor<?x?x64xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>)
    ```
  }];
  let arguments = (ins W4A4_FloatTensor:$query, W4A4_FloatTensor:$key,
                       W4A4_FloatTensor:$value,
                       Optional<W4A4_FloatTensor>:$key_prefix,
                       Optional<W4A4_FloatTensor>:$value_prefix,
                       Optional<W4A4_FloatTensor>:$past_key,
                       Optional<W4A4_FloatTensor>:$past_value,
                       I64Attr:$num_heads, I64Attr:$num_kv_heads,
                       I64Attr:$head_dim, OptionalAttr<F64Attr>:$scale);
  // `presents`: none, or present_key and present_value (with a past).
  let results = (outs W4A4_FloatTensor:$result,
                      Variadic<W4A4_FloatTensor>:$presents);
  let extraClassDeclaration = [{
    /// The present keys / values (the past with this sequence appended),
    /// null without a KV cache.
    ::mlir::Value getPresentKey() {
      return getPresents().size() == 2 ? getPresents()[0] : ::mlir::Value();
    }
    ::mlir::Value getPresentValue() {
      return getPresents().size() == 2 ? getPresents()[1] : ::mlir::Value();
    }
  }];
  let assemblyFormat = [{
    $query `,` $key `,` $value (`prefix` `(` $key_prefix^ `,` $value_prefix `)`)?
    (`past` `(` $past_key^ `,` $past_value `)`)?
    attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// cache_positions
//===----------------------------------------------------------------------===//

def W4A4_CachePositionsOp : W4A4_Op<"cache_positions", [Pure]> {
  let summary = "Positions of the tokens that follow a KV cache";
  let description = [{
    `result[b, s] = past + s` for token ids `ids` (`[batch, seq]`) that
    follow a KV cache `past_key` (`[batch, num_kv_heads, past, head_dim]`):
    the RoPE positions of a model that derives them from its past length
    (onnxruntime-genai's GroupQueryAttention does) rather than taking
    `position_ids`.

    ```mlir
    %pos = w4a4.cache_positions %ids, %past_key : (tensor<?x?xi64>, tensor<?x2x?x16xf32>) -> tensor<?x?xi64>
    ```
  }];
  let arguments = (ins RankedTensorOf<[AnySignlessInteger]>:$ids,
                       W4A4_FloatTensor:$past_key);
  let results = (outs RankedTensorOf<[AnySignlessInteger]>:$result);
  let assemblyFormat =
      "$ids `,` $past_key attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// swiglu
//===----------------------------------------------------------------------===//

def W4A4_SwiGLUOp : W4A4_Op<"swiglu", [Pure, SameOperandsAndResultType]> {
  let summary = "SwiGLU gate: silu(gate) * up";
  let description = [{
    Elementwise `gate * sigmoid(gate) * up`, the input of the MLP's `w2`.

    ```mlir
    %h = w4a4.swiglu %a, %b : tensor<?x?x256xf32>
    ```
  }];
  let arguments = (ins W4A4_FloatTensor:$gate, W4A4_FloatTensor:$up);
  let results = (outs W4A4_FloatTensor:$result);
  let assemblyFormat = "$gate `,` $up attr-dict `:` type($result)";
}

//===----------------------------------------------------------------------===//
// add
//===----------------------------------------------------------------------===//

def W4A4_AddOp : W4A4_Op<"add", [Pure, Commutative, SameOperandsAndResultType]> {
  let summary = "Residual add";
  let description = [{
    Elementwise sum of two tensors of the same type.

    ```mlir
    %r = w4a4.add %h, %o : tensor<?x?x64xf32>
    ```
  }];
  let arguments = (ins W4A4_FloatTensor:$lhs, W4A4_FloatTensor:$rhs);
  let results = (outs W4A4_FloatTensor:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($result)";
  let hasFolder = 1;
}

//===----------------------------------------------------------------------===//
// registers
//===----------------------------------------------------------------------===//

def W4A4_RegistersOp : W4A4_Op<"registers", [Pure]> {
  let summary = "Depth Registers: learned vectors on the prefix positions";
  let description = [{
    `registers` is `[k, hidden]`, one learned vector per prefix position.
    With `prepend`, the result is `input` with the k vectors placed before the
    sequence (`seq + k` positions; used at the first layer). With `add`, the
    k vectors are added to the residual of the first k positions (each later
    layer's input); the other positions pass through unchanged. With `strip`,
    the result is `input` without its first k positions (before the final
    norm, so that logits align with the input tokens); the register values
    are not read.

    ```mlir
    %h0 = w4a4.registers prepend %emb, %r0 : (tensor<1x?x64xf32>, tensor<4x64xf32>) -> tensor<1x?x64xf32>
    %h1 = w4a4.registers add %h, %r1 : (tensor<1x?x64xf32>, tensor<4x64xf32>) -> tensor<1x?x64xf32>
    %t = w4a4.registers strip %h1, %r1 : (tensor<1x?x64xf32>, tensor<4x64xf32>) -> tensor<1x?x64xf32>
    ```
  }];
  let arguments = (ins W4A4_RegisterMode:$mode, W4A4_FloatTensor:$input,
                       W4A4_FloatTensor:$registers);
  let results = (outs W4A4_FloatTensor:$result);
  let assemblyFormat = [{
    $mode $input `,` $registers attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
  let hasFolder = 1;
}

//===----------------------------------------------------------------------===//
// hadamard
//===----------------------------------------------------------------------===//

def W4A4_HadamardOp : W4A4_Op<"hadamard",
    [Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = "Online orthogonal transform of the last axis";
  let description = [{
    Multiplies every row vector of the last axis by an orthogonal matrix
    `Q = diag(s) H / sqrt(size)`: `x Q = (x * s) H / sqrt(size)`, signs
    first. `H` is built by `kind`: `walsh` (Sylvester, `size` a power of
    two), `kronecker` (`H_m (x) H_(2^k)` with a Paley matrix `H_m`), or
    `random_orthogonal` (a seeded random orthogonal matrix in place of
    `H / sqrt(size)`). When `size` is smaller than the last axis the
    transform is block-diagonal: the same block on every run of `size`
    features. With `stride` k > 1 the transform acts across elements k apart
    instead (element `j + k*i` of each run of `size * k` is entry i of
    vector j): with k = head_dim and size = heads it is QuaRot's cross-head
    Hadamard `H_heads (x) I`. The signs `s` (over the whole last axis) are
    given as `signs` or drawn from `seed` (SplitMix64, see the runtime);
    without either they are all +1. `inverse` applies `Q^T` instead:
    `y = (x H^T / sqrt(size)) * s`.

    ```mlir
    %y = w4a4.hadamard walsh(64) %x {seed = 7 : i64} : tensor<?x?x64xf32>
    %z = w4a4.hadamard kronecker(192) %x inverse : tensor<?x?x192xf32>
    %c = w4a4.hadamard walsh(4) %a {stride = 64 : i64} : tensor<?x?x256xf32>
    ```
  }];
  let arguments = (ins W4A4_FloatTensor:$input, W4A4_HadamardKind:$kind,
                       I64Attr:$size, OptionalAttr<DenseI8ArrayAttr>:$signs,
                       OptionalAttr<I64Attr>:$seed, UnitAttr:$inverse,
                       DefaultValuedAttr<I64Attr, "1">:$stride);
  let results = (outs W4A4_FloatTensor:$result);
  let assemblyFormat = [{
    $kind `(` $size `)` $input (`inverse` $inverse^)? attr-dict `:` type($input)
  }];
  let hasVerifier = 1;
  let hasFolder = 1;
}

//===----------------------------------------------------------------------===//
// quantize
//===----------------------------------------------------------------------===//

def W4A4_QuantizeOp : W4A4_Op<"quantize",
    [Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = "Per-token dynamic symmetric fake quantization";
  let description = [{
    Quantizes every vector of the last axis (one token) to `bits` bits and
    back: `s = clip_ratio * max|x| / (2^(bits-1) - 1)`,
    `q = clamp(round_half_even(x / s), -2^(bits-1), 2^(bits-1) - 1)`,
    result `q * s` (an all-zero vector stays zero). With `group_size`, every
    run of `group_size` elements of the last axis has its own scale (e.g. one
    per token per head for the KV cache). Scales are computed at run time,
    which is why this is not a static `!quant.uniform` type.

    ```mlir
    %xq = w4a4.quantize %x {bits = 4 : i64} : tensor<?x?x64xf32>
    %kq = w4a4.quantize %k {bits = 4 : i64, group_size = 16 : i64} : tensor<?x?x32xf32>
    ```
  }];
  let arguments = (ins W4A4_FloatTensor:$input, I64Attr:$bits,
                       DefaultValuedAttr<F64Attr, "1.0">:$clip_ratio,
                       OptionalAttr<I64Attr>:$group_size);
  let results = (outs W4A4_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// qlinear
//===----------------------------------------------------------------------===//

def W4A4_QLinearOp : W4A4_Op<"qlinear", [Pure, AttrSizedOperandSegments]> {
  let summary = "Quantized linear: packed b-bit weights, per-token b-bit activations";
  let description = [{
    `y[t, o] = s_x[t] * sum_g s_w[o, g] * sum_(i in g) qx[t, i] * qw[o, i]`
    (+ bias, + the floating-point low-rank path `x R^T L^T`).

    - `weight_codes` (`[out, ceil(in / codes_per_byte)]`, `i8`): the weight
      codes in two's complement, `codes_per_byte = 8 / weight_bits` for
      weight_bits 2 and 4 (lowest bits first), else one code per byte.
    - `weight_scales` (`[out, groups]`): one scale per output row
      (`group_size = 0`, one group) or per group of `group_size` input
      columns.
    - `act_bits`: per-token dynamic symmetric activation bits (as
      `w4a4.quantize`, with `act_clip_ratio`), or 0 to keep the input in
      floating point.
    - `low_rank(L, R)`: `L` is `[out, rank]`, `R` is `[rank, in]`, with
      `W ~ L R + Q(W - L R)`; the `L R` path reads the unquantized input.

    ```mlir
    %y = w4a4.qlinear %x, %codes, %scales {weight_bits = 4 : i64, act_bits = 4 : i64}
        : (tensor<?x?x64xf32>, tensor<256x32xi8>, tensor<256x1xf32>) -> tensor<?x?x256xf32>
    ```
  }];
  let arguments = (ins W4A4_FloatTensor:$input,
                       RankedTensorOf<[I8]>:$weight_codes,
                       W4A4_FloatTensor:$weight_scales,
                       Optional<W4A4_FloatTensor>:$bias,
                       Optional<W4A4_FloatTensor>:$low_rank_left,
                       Optional<W4A4_FloatTensor>:$low_rank_right,
                       I64Attr:$weight_bits, I64Attr:$act_bits,
                       DefaultValuedAttr<I64Attr, "0">:$group_size,
                       DefaultValuedAttr<F64Attr, "1.0">:$act_clip_ratio);
  let results = (outs W4A4_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight_codes `,` $weight_scales (`bias` `(` $bias^ `)`)?
    (`low_rank` `(` $low_rank_left^ `,` $low_rank_right `)`)?
    attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// Number of weight codes stored in one byte of `weight_codes`.
    static int64_t getCodesPerByte(int64_t bits) {
      return (bits == 2 || bits == 4) ? 8 / bits : 1;
    }
  }];
}

//===----------------------------------------------------------------------===//
// onnx
//===----------------------------------------------------------------------===//

def W4A4_OnnxOp : W4A4_Op<"onnx", [Pure]> {
  let summary = "An imported ONNX node, not (yet) raised to a model-level op";
  let description = [{
    Stage 1 of the importer maps every ONNX node to one `w4a4.onnx` op that
    keeps the node faithfully: its op type, node name and attributes (ONNX
    attribute kinds become i64, f32, string, dense arrays, or elements
    attributes). The raising patterns then rewrite recognised subgraphs into
    the model-level ops; a raised model has none left. The opset of the
    default ONNX domain is the module attribute `w4a4.onnx_opset`. Optional
    inputs that the node leaves empty are listed in `absent_inputs` (their
    positions) and are not operands.

    ```mlir
    %y = w4a4.onnx "MatMul" "/layers.0/attention/wq/MatMul"(%x, %w)
        : (tensor<?x?x256xf32>, tensor<256x256xf32>) -> tensor<?x?x256xf32>
    %s = w4a4.onnx "Softmax" "/Softmax"(%a) attributes {axis = -1 : i64}
        : (tensor<?x4x?x?xf32>) -> tensor<?x4x?x?xf32>
    ```
  }];
  let arguments = (ins Variadic<AnyType>:$operands, StrAttr:$op_type,
                       StrAttr:$node_name,
                       OptionalAttr<DictionaryAttr>:$onnx_attrs,
                       OptionalAttr<DenseI64ArrayAttr>:$absent_inputs);
  let results = (outs Variadic<AnyType>:$results);
  let assemblyFormat = [{
    $op_type $node_name `(` $operands `)` (`attributes` $onnx_attrs^)?
    attr-dict `:` functional-type($operands, $results)
  }];
  let hasVerifier = 1;
}

#endif // W4A4_OPS_TD
