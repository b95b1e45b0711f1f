//===- Passes.td - w4a4 passes -----------------------------*- tablegen -*-===//

#ifndef W4A4_PASSES_TD
#define W4A4_PASSES_TD

include "mlir/Pass/PassBase.td"

def W4A4Simplify : Pass<"w4a4-simplify"> {
  let summary = "Fold and canonicalize w4a4 ops with exact rewrites only";
  let description = [{
    Runs the w4a4 dialect's folds and canonicalization patterns to a fixed
    point and erases what becomes dead (unused weights included). Every
    rewrite is exact in floating point, so logits do not change by a bit:

    - a Hadamard followed by its inverse (same kind, size, signs or seed)
      cancels, and so do two signless Walsh transforms (the Sylvester matrix
      is symmetric);
    - an `rms_norm` gain of all ones is dropped;
    - a `linear` bias of all +0.0 is dropped;
    - `add` with a splat of -0.0 folds to the other operand;
    - Depth Registers with k = 0 fold away.

    Before:
    ```mlir
    %1 = w4a4.hadamard walsh(64) %x {seed = 3 : i64} : tensor<?x?x64xf32>
    %2 = w4a4.hadamard walsh(64) %1 inverse {seed = 3 : i64} : tensor<?x?x64xf32>
    %3 = w4a4.rms_norm %2 gain(%ones : tensor<64xf32>) : tensor<?x?x64xf32>
    ```
    After:
    ```mlir
    %3 = w4a4.rms_norm %x : tensor<?x?x64xf32>
    ```
  }];
  let dependentDialects = ["::mlir::w4a4::W4A4Dialect"];
  let options = [
    Option<"maxIterations", "max-iterations", "int64_t", /*default=*/"10",
           "Maximum number of greedy rewrite sweeps">,
  ];
}

def W4A4FoldRegisters : Pass<"w4a4-fold-registers", "::mlir::ModuleOp"> {
  let summary = "Fold the Depth-Register prefix into a constant per-layer KV prefix";
  let description = [{
    The register prefix sees only itself (causal attention), so its keys and
    values at every layer are constants. This pass computes them by running
    the model on an empty token sequence (only the k register positions flow
    through the layers), attaches them to every `w4a4.attention` as a constant
    fp32 `prefix(key, value)` (weights `<attention>.key_prefix` and
    `.value_prefix`, post-RoPE), shifts every RoPE's `position_offset` by k,
    and removes the `w4a4.registers` ops: the residual stream then holds token
    positions only, so register positions can never reach activation
    quantization. Logits are unchanged up to float rounding.

    Before:
    ```mlir
    %h = w4a4.registers prepend %e, %r0 : ...
    %o = w4a4.attention %q, %k, %v {...} : ...
    %t = w4a4.registers strip %h2, %r5 : ...
    ```
    After:
    ```mlir
    %o = w4a4.attention %q, %k, %v prefix(%kp, %vp) {...} : ...
    ```
  }];
  let dependentDialects = ["::mlir::w4a4::W4A4Dialect"];
}

def W4A4QuantizeWeights : Pass<"w4a4-quantize-weights", "::mlir::ModuleOp"> {
  let summary = "Quantize the block linears' weights to b bits (RTN)";
  let description = [{
    Replaces every `w4a4.linear` of a transformer block (the four sites qkv,
    o_proj, w1w3, w2; not lm_head) by a `w4a4.qlinear` with packed b-bit codes
    and scales, computed by round-to-nearest (DESIGN.md): per output row, or per
    group of `group` input columns, `s = clip * max|w| / (2^(b-1) - 1)`,
    `q = clamp(round_half_even(w / s), -2^(b-1), 2^(b-1) - 1)`. Activations
    stay in floating point (`act_bits = 0`) until `w4a4-quantize-activations`.

    Before:
    ```mlir
    %y = w4a4.linear %x, %w : (tensor<?x?x64xf32>, tensor<256x64xf32>) -> tensor<?x?x256xf32>
    ```
    After:
    ```mlir
    %c = w4a4.weight "w.codes" = dense_resource<w_codes> : tensor<256x32xi8>
    %s = w4a4.weight "w.scales" = dense_resource<w_scales> : tensor<256x1xf32>
    %y = w4a4.qlinear %x, %c, %s {act_bits = 0 : i64, weight_bits = 4 : i64} : (...) -> tensor<?x?x256xf32>
    ```
  }];
  let dependentDialects = ["::mlir::w4a4::W4A4Dialect"];
  let options = [
    Option<"bits", "bits", "int64_t", /*default=*/"4", "Weight bits, in [2, 8]">,
    Option<"group", "group", "int64_t", /*default=*/"0",
           "Input columns per scale (0: one scale per output row)">,
    Option<"clip", "clip", "double", /*default=*/"1.0", "Clip ratio in (0, 1]">,
  ];
}

def W4A4QuantizeActivations : Pass<"w4a4-quantize-activations", "::mlir::ModuleOp"> {
  let summary = "Quantize the inputs of quantized linears per token (dynamic, symmetric)";
  let description = [{
    Sets `act_bits` and `act_clip_ratio` on every `w4a4.qlinear` whose site is
    not listed in `keep-fp` (sites: qkv, o_proj, w1w3, w2). Models with Depth
    Registers must have them folded first (`w4a4-fold-registers`), so that
    register positions never pass through activation quantization.
  }];
  let dependentDialects = ["::mlir::w4a4::W4A4Dialect"];
  let options = [
    Option<"bits", "bits", "int64_t", /*default=*/"4", "Activation bits, in [2, 8]">,
    Option<"clip", "clip", "double", /*default=*/"1.0", "Clip ratio in (0, 1]">,
    ListOption<"keepFp", "keep-fp", "std::string",
               "Sites whose input stays floating point (qkv, o_proj, w1w3, w2)">,
  ];
}

#endif // W4A4_PASSES_TD
