//===- Passes.td - w4a4 conversion passes ------------------*- tablegen -*-===//

#ifndef W4A4_CONVERSION_PASSES_TD
#define W4A4_CONVERSION_PASSES_TD

include "mlir/Pass/PassBase.td"

def W4A4NormalizeOnnx : Pass<"w4a4-normalize-onnx", "::mlir::ModuleOp"> {
  let summary = "Fold shape arithmetic and rewrite generic ONNX IR into canonical spellings";
  let description = [{
    Runs between stage 1 (`w4a4-import --raise=false`) and `w4a4-raise-onnx`.
    Folds to `arith.constant` every integer result whose stage-1 values
    (`w4a4.sym`, computed on symbolic batch/sequence lengths) are all
    constants, and every small subgraph of constants; then rewrites one
    meaning's many spellings into one form so that each raising pattern
    covers them all:

    | spelling | normalized |
    | --- | --- |
    | `Identity(x)`, `Cast(x)` to x's own type | `x` |
    | `Reciprocal(Sqrt(x))`, `Div(1, Sqrt(x))`, `Pow(x, -0.5)` | `Rsqrt(x)` |
    | `Div(a, Sqrt(x))` | `Mul(a, Rsqrt(x))` |
    | `Div(x, c)`, c a float constant | `Mul(x, 1/c)` |
    | `Pow(x, 2)` | `Mul(x, x)` |
    | `Split(x)` | one `Slice` per output |
    | `Gemm(a, b, c)` (alpha = beta = 1) | `MatMul(a, b)` or `MatMul(a, Transpose(b))`, `+ c` |

    `Rsqrt` is a normalized-form op type of `w4a4.onnx`, not an ONNX op.

    Before:
    ```mlir
    %s = w4a4.onnx "Sqrt" "/norm/Sqrt"(%v) : (tensor<?x?x1xf32>) -> tensor<?x?x1xf32>
    %r = w4a4.onnx "Reciprocal" "/norm/Reciprocal"(%s) : (tensor<?x?x1xf32>) -> tensor<?x?x1xf32>
    %n = w4a4.onnx "Shape" "/Shape"(%ids) {w4a4.sym = ["batch", "seq"]} : (tensor<?x?xi64>) -> tensor<2xi64>
    %c = w4a4.onnx "Concat" "/Concat"(%a, %b) attributes {axis = 0 : i64} {w4a4.sym = ["2", "64"]} : (tensor<1xi64>, tensor<1xi64>) -> tensor<2xi64>
    ```
    After:
    ```mlir
    %r = w4a4.onnx "Rsqrt" "/norm/Reciprocal"(%v) : (tensor<?x?x1xf32>) -> tensor<?x?x1xf32>
    %c = arith.constant dense<[2, 64]> : tensor<2xi64>
    ```
  }];
  let dependentDialects = ["::mlir::w4a4::W4A4Dialect", "::mlir::arith::ArithDialect"];
}

def W4A4RaiseOnnx : Pass<"w4a4-raise-onnx", "::mlir::ModuleOp"> {
  let summary = "Raise imported ONNX subgraphs (w4a4.onnx ops) to model-level w4a4 ops";
  let description = [{
    Stage 2 of the importer, after `w4a4-normalize-onnx`. Named patterns
    rewrite the decomposed subgraphs exporters emit into the model-level
    ops. Where spellings differ (masks, RoPE, register prefixes) a pattern
    evaluates the subgraph on small concrete inputs (batch 1, a short
    sequence, all-ones attention_mask, position_ids 0..n-1, empty past) and
    checks what it computes instead of matching one spelling. Phases:

    1. `cast-weight`, `embedding`, `linear` (W [in, out] or Transpose(W)),
       `sliced-linear` (packed projections), `flattened-linear`,
       `linear-bias`, `rms-norm` (x * Rsqrt(mean(x*x) + eps)),
       `fused-rms-norm` (SimplifiedLayerNormalization, RMSNormalization,
       SkipSimplifiedLayerNormalization), `rms-norm-gain`, `swiglu`;
    2. `attention` (from the Softmax: scale, an evaluated causal mask, GQA
       repeats, RoPE recognised by its rotation matrices), `rotary-embedding`
       and `fused-attention` (com.microsoft RotaryEmbedding /
       GroupQueryAttention / MultiHeadAttention, opset-23 RotaryEmbedding /
       Attention), `registers-prepend`, `registers-prepend-by-value`,
       `registers-add`, `registers-zero-prefix-add`;
    3. `residual-add` and `registers-strip`.

    Outputs named `present*` leave the function before raising; inputs
    nothing reads after it (attention_mask, position_ids, past) are dropped
    and listed in `w4a4.assumed_inputs`.

    With `require-fully-raised` (default) the pass fails, naming the first
    node left, if any `w4a4.onnx` op survives: the graph is then not a SwiGLU
    decoder this importer understands.

    Before (abridged):
    ```mlir
    %t = w4a4.onnx "Transpose" "/wq/Transpose"(%wq) attributes {perm = array<i64: 1, 0>} : (tensor<64x32xf32>) -> tensor<32x64xf32>
    %y = w4a4.onnx "MatMul" "/wq/MatMul"(%x, %t) : (tensor<?x?x32xf32>, tensor<32x64xf32>) -> tensor<?x?x64xf32>
    ```
    After:
    ```mlir
    %y = w4a4.linear %x, %wq : (tensor<?x?x32xf32>, tensor<64x32xf32>) -> tensor<?x?x64xf32>
    ```
  }];
  let dependentDialects = ["::mlir::w4a4::W4A4Dialect"];
  let options = [
    Option<"requireFullyRaised", "require-fully-raised", "bool", /*default=*/"true",
           "Fail if any w4a4.onnx op is left after raising">,
  ];
}


def W4A4LowerToKernels : Pass<"w4a4-lower-to-kernels", "::mlir::ModuleOp"> {
  let summary = "Lower model-level w4a4 ops to kernel-level w4a4k calls for a target";
  let description = [{
    The first step of code generation (`w4a4-compile` runs it, then
    `--w4a4k-plan-buffers` and `--w4a4k-to-emitc`). Every model-level op
    becomes the kernel calls of `target` (`cpu`), and the decisions that
    make are explicit ops and attributes of the `w4a4k` dialect:

    - a `w4a4.qlinear` with quantized activations becomes a `w4a4k.quantize`
      of its input and a `w4a4k.qgemm` reading the weights in the target's
      layout (`layout = "cpu_vnni_panels"`); every qlinear that reads the
      same value at the same bits and clip ratio shares one quantize (q, k,
      v; w1, w3);
    - a low-rank correction becomes two `w4a4k.gemm` and a `w4a4k.add`;
    - a Hadamard's signs (given, or drawn from its seed) become a weight
      `hadamard.N.signs`.

    Ops without a kernel on the target are refused with an error naming
    them: weight-only `qlinear` (act_bits = 0), the KV-cache I/O of exports
    with a past, `random_orthogonal` rotations.

    Before:
    ```mlir
    %q = w4a4.qlinear %x, %cq, %sq {act_bits = 4 : i64, weight_bits = 4 : i64} : (tensor<1x?x64xf32>, tensor<64x32xi8>, tensor<64x1xf32>) -> tensor<1x?x64xf32>
    %k = w4a4.qlinear %x, %ck, %sk {act_bits = 4 : i64, weight_bits = 4 : i64} : (tensor<1x?x64xf32>, tensor<64x32xi8>, tensor<64x1xf32>) -> tensor<1x?x64xf32>
    ```
    After:
    ```mlir
    %xq = w4a4k.quantize %x {clip_ratio = 1.0 : f64} : tensor<1x?x64xf32> -> !w4a4k.qrows<4 x 64>
    %q = w4a4k.qgemm %xq, %cq, %sq {group_size = 0 : i64, layout = "cpu_vnni_panels", out_features = 64 : i64, weight_bits = 4 : i64} : ...
    %k = w4a4k.qgemm %xq, %ck, %sk {...} : ...
    ```
  }];
  let options = [
    Option<"target", "target", "std::string", /*default=*/"\"cpu\"",
           "The target whose kernels the IR calls (cpu)">,
  ];
  let dependentDialects = ["::mlir::w4a4k::W4A4KDialect", "::mlir::w4a4::W4A4Dialect"];
}

def W4A4InternalizeKVCache : Pass<"w4a4-internalize-kv-cache", "::mlir::ModuleOp"> {
  let summary = "Turn an export's KV-cache inputs and outputs into the compiled artifact's own cache";
  let description = [{
    Decoder-with-past exports (optimum's `past_key_values.*` / `present.*`,
    onnxruntime-genai's GroupQueryAttention) import as `@forward(ids,
    position_ids, pasts...) -> (logits, presents...)`: the caller carries
    the cache. A compiled artifact keeps its own KV cache
    (`w4a4_decode`), so this pass gives `@forward` the signature `(ids) ->
    logits`: every `w4a4.attention ... past(%pk, %pv)` whose past is an
    argument and whose presents are only returned loses both (the kernel
    level keeps that layer's cache), and RoPE positions read from
    `position_ids` or `w4a4.cache_positions` become the cache's length plus
    the token index. That is what such exports compute when
    `position_ids = past + 0..seq-1` (no padding; the importer already
    assumes an all-ones `attention_mask`), recorded in
    `w4a4.assumed_inputs`. Anything else reading the pasts, the presents or
    `position_ids` is refused with an error naming it.

    `w4a4-compile` runs it first; a module without a past is unchanged.
  }];
}

def W4A4KSplitTail : Pass<"w4a4k-split-tail", "::mlir::ModuleOp"> {
  let summary = "Run the row-wise tail (final norm, LM head) only on the scored positions";
  let description = [{
    Perplexity scores only the last `stride` positions of each window and
    generation needs only the last token's logits, but the LM head is the
    largest GEMM of a small model. This pass finds the tail of `@forward`
    that works row by row (the ops between the last residual add and the
    returned logits: `rms_norm`, `quantize`, `qgemm`, `gemm`, `fake_quant`,
    `hadamard`, `add`, `swiglu`), inserts a `w4a4k.tail_rows` of the value
    it starts from and marks the tail's ops `w4a4k.tail`: they run on the
    rows the caller scores (`w4a4_forward_last(m, ids, batch, seq, last,
    logits)`; all of them for `w4a4_forward`). Row-local ops compute each
    row alone, so a scored row equals the full run's up to the fp32 GEMMs'
    rounding (a BLAS blocks its sums by the number of rows).

    Nothing changes when no such tail exists (a function that returns what
    registers strip, say). `w4a4-compile` runs it after
    `--w4a4-lower-to-kernels` and `--w4a4k-fuse`.

    Before:
    ```mlir
    %h = w4a4k.add %a, %b ...
    %n = w4a4k.rms_norm %h ...
    %logits = w4a4k.gemm %n, %head ...
    return %logits
    ```
    After:
    ```mlir
    %h = w4a4k.add %a, %b ...
    %t = w4a4k.tail_rows %h : tensor<1x?x64xf32> -> tensor<1x?x64xf32>
    %n = w4a4k.rms_norm %t {w4a4k.tail} ...
    %logits = w4a4k.gemm %n, %head {w4a4k.tail} ...
    ```
  }];
}

def W4A4KFuse : Pass<"w4a4k-fuse", "::mlir::ModuleOp"> {
  let summary = "Fuse activation producers with their quantization and residual adds with GEMM epilogues";
  let description = [{
    Kernel-level fusions that keep every value bit-identical to the unfused
    calls (each fused kernel runs the same row operations in the same
    order, one row at a time, without writing the intermediate fp32
    tensor):

    - `rms_norm` whose only reader is one `quantize` becomes
      `w4a4k.rms_norm_quantize` (the normed rows are never stored);
    - `swiglu` -> (`hadamard`, the online rotation of QuaRot) -> `quantize`,
      each read only by the next, becomes `w4a4k.swiglu_quantize`;
    - `add(qgemm(...), r)` where the add is the GEMM's only reader becomes a
      `qgemm` with `residual(r)`: the residual is added in the GEMM's
      epilogue, after the bias, as the separate add did.

    `w4a4-compile` runs it after `--w4a4-lower-to-kernels`; `--no-fuse`
    skips it.
  }];
}

def W4A4KPlanBuffers : Pass<"w4a4k-plan-buffers", "::mlir::ModuleOp"> {
  let summary = "Assign every kernel-level activation a slot of one arena, by liveness";
  let description = [{
    All activations are rows of one token, so one arena of `rows x
    arena_width` floats holds them, with rows = batch * (seq + the largest
    register prefix). A value lives from its op to its last reader; values
    that live at the same time get disjoint slots (first fit).
    `w4a4k.slot = array<i64: offset, width>` on an op places its result in
    the contiguous block of `rows x width` floats that starts at
    `offset x rows`; the returned logits go to the caller's buffer
    (`w4a4k.slot = "result"`). Quantized activations get one of
    `w4a4k.qrows_slots` holders (`w4a4k.qslot`), by the same liveness. Ops
    whose rows differ from the call's tokens (after a register prepend or
    strip) carry `w4a4k.seq_extra`. On `@forward`: `w4a4k.arena_width`,
    `w4a4k.max_seq_extra`, `w4a4k.qrows_slots`.
  }];
}


def W4A4KToEmitC : Pass<"w4a4k-to-emitc", "::mlir::ModuleOp"> {
  let summary = "Turn the planned kernel-level @forward into EmitC calls of the runtime";
  let description = [{
    The last step before C++: `@forward` (planned by `--w4a4k-plan-buffers`)
    becomes an `emitc` module that MLIR's C++ emitter prints as the
    artifact's `model.cpp` (`w4a4-compile` does both; by hand:
    `w4a4-opt --w4a4k-to-emitc | mlir-translate-22 --mlir-to-cpp`).

    - One static function `forward_body(w4a4::cc::Context *)` with one call
      per kernel op into `w4a4/runtime/Compiled.h`: every width, head count,
      epsilon and slot offset is a literal; rows and sequence lengths are
      read once from the context (`w4a4::cc::rows(ctx, extra)`).
    - The weight table (`kTensors`, in the order `weights.bin` stores them:
      the function's `w4a4.weight` ops), the quantized weights the runtime
      packs into the target layout when the artifact opens (`kPacks`), and
      `kSpec`: the weights' checksum, the arena plan, vocabulary, batch and
      the most tokens a call may take.
    - `w4a4_open`, the one C API function that knows the model; the rest of
      the C API (`w4a4/runtime/w4a4_model.h`) is the runtime's.
  }];
  let options = [
    Option<"weightsChecksum", "weights-checksum", "std::string",
           /*default=*/"\"\"",
           "The checksum of weights.bin (16 hex digits) when the caller has "
           "already written it (w4a4-compile); empty: computed here from the "
           "function's weights">,
  ];
  let dependentDialects = ["::mlir::emitc::EmitCDialect"];
}

#endif // W4A4_CONVERSION_PASSES_TD
