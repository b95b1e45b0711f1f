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

def W4A4FoldNorms : Pass<"w4a4-fold-norms", "::mlir::ModuleOp"> {
  let summary = "Fold RMSNorm gains into the linears that read them";
  let description = [{
    `y = rmsnorm(x) * g` feeding linears `W` becomes `rmsnorm(x)` feeding
    `W * diag(g)` (DESIGN.md); the final norm folds into lm_head. A gain read
    by anything but linears is an error. Logits are unchanged up to float
    rounding. Rotations require it; plain RTN does not use it (folding changes
    the rows and so the 4-bit weight error).
  }];
  let dependentDialects = ["::mlir::w4a4::W4A4Dialect"];
}

def W4A4Rotate : Pass<"w4a4-rotate", "::mlir::ModuleOp"> {
  let summary = "QuaRot residual rotation and online Hadamards";
  let description = [{
    `mode=readers`: the residual stream is rotated by `Q = diag(s) H / sqrt(d)`
    (seeded signs, Hadamard of the hidden size, applied as `x Q`): embedding
    rows and Depth Registers `E -> E Q`, readers (qkv, w1w3) `W -> W Q`,
    writers (o_proj, w2) `W -> Q^T W`, lm_head `W -> W Q`. RMSNorm without
    gain commutes with Q, so gains must be folded first (`w4a4-fold-norms`).
    `mode=full` adds online Hadamards at the o_proj and w2 inputs
    (`w4a4.hadamard` before the linear, `W -> W H`). Sizes without a Hadamard
    matrix fall back to a block-diagonal Walsh transform (the largest power of
    two dividing the width); the kind and size are in the IR (the residual
    rotation as the module attribute `w4a4.residual_rotation`). Logits are
    unchanged up to float rounding.
  }];
  let dependentDialects = ["::mlir::w4a4::W4A4Dialect"];
  let options = [
    Option<"mode", "mode", "std::string", /*default=*/"\"readers\"",
           "none | readers | full">,
    Option<"seed", "seed", "uint64_t", /*default=*/"0", "Seed of the residual signs">,
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

def W4A4Calibrate : Pass<"w4a4-calibrate", "::mlir::ModuleOp"> {
  let summary = "Record per-site activation statistics in a side file";
  let description = [{
    Runs the floating-point IR through the runtime's executor on calibration
    windows (the first `windows` runs of `ctx - 1` ids from `calib`, a file of
    whitespace-separated token ids, each after `bos`) and records for every
    activation site (the input of the qkv, o_proj, w1w3 and w2 linears) the
    per-channel max|x| and, with `hessian=true`, the float64 Hessian
    `X^T X` summed over the calibration positions. The statistics go to the
    side file `out`; the module names it in the attribute
    `w4a4.calibration = {file, sites, positions, hessian}` and each block
    linear carries its site's index (`w4a4.calib_site`). The result depends
    only on the IR and the ids (no randomness, fixed summation order).

    The statistics describe the IR as it was calibrated: every pass that
    changes site inputs or weights afterwards (fold-norms, smoothquant,
    rotate) drops them, and `w4a4-quantize-weights method=gptq` then asks for
    a new calibration. Needs folded Depth Registers (register positions never
    enter the statistics) and unquantized linears.

    ```mlir
    module attributes {w4a4.calibration = {file = "calib.w4a4cal", hessian = true, positions = 8160 : i64, sites = 24 : i64}} {
      ...
      %q = w4a4.linear %x, %wq {w4a4.calib_site = 0 : i64} : ...
    ```
  }];
  let dependentDialects = ["::mlir::w4a4::W4A4Dialect"];
  let options = [
    Option<"calib", "calib", "std::string", /*default=*/"\"\"", "File of calibration token ids">,
    Option<"windows", "windows", "int64_t", /*default=*/"32", "Calibration windows">,
    Option<"ctx", "ctx", "int64_t", /*default=*/"256", "Window length including BOS">,
    Option<"bos", "bos", "int64_t", /*default=*/"-1",
           "BOS id (default: the model's w4a4.bos_id, else 1)">,
    Option<"out", "out", "std::string", /*default=*/"\"\"", "Statistics file to write">,
    Option<"hessian", "hessian", "bool", /*default=*/"true", "Also record X^T X per site">,
  ];
}

def W4A4SmoothQuant : Pass<"w4a4-smoothquant", "::mlir::ModuleOp"> {
  let summary = "SmoothQuant: migrate activation outliers into the weights";
  let description = [{
    For each site, with input channels j and the stacked weights W of the
    linears reading it, `s_j = max|X_j|^alpha / max_o|W[o, j]|^(1 - alpha)`
    (both maxima clamped at >= 1e-5) from calibration; `W -> W diag(s)` and
    the input is divided by s where it is produced: readers (qkv, w1w3) in the
    preceding RMSNorm gain (created if absent), o_proj in v_proj's output rows
    (with GQA one scale per v_proj channel, maxima over every o_proj input
    channel that reads it; a folded value prefix is scaled too), w2 in w3's
    output rows. Calibration runs the model on the first `windows` windows of
    `ctx - 1` ids from `calib` (whitespace-separated token ids), each after
    `bos`. Needs folded Depth Registers (no register position in the
    statistics) and unquantized linears.
  }];
  let dependentDialects = ["::mlir::w4a4::W4A4Dialect"];
  let options = [
    Option<"alpha", "alpha", "double", /*default=*/"0.5", "Migration strength in [0, 1]">,
    Option<"calib", "calib", "std::string", /*default=*/"\"\"", "File of calibration token ids">,
    Option<"windows", "windows", "int64_t", /*default=*/"32", "Calibration windows">,
    Option<"ctx", "ctx", "int64_t", /*default=*/"256", "Window length including BOS">,
    Option<"bos", "bos", "int64_t", /*default=*/"-1",
           "BOS id (default: the model's w4a4.bos_id, else 1)">,
  ];
}

def W4A4QuantizeWeights : Pass<"w4a4-quantize-weights", "::mlir::ModuleOp"> {
  let summary = "Quantize the block linears' weights to b bits (RTN or GPTQ)";
  let description = [{
    Replaces every `w4a4.linear` of a transformer block (the four sites qkv,
    o_proj, w1w3, w2; not lm_head) by a `w4a4.qlinear` with packed b-bit codes
    and scales, computed by round-to-nearest (DESIGN.md): per output row, or per
    group of `group` input columns, `s = clip * max|w| / (2^(b-1) - 1)`,
    `q = clamp(round_half_even(w / s), -2^(b-1), 2^(b-1) - 1)`. Activations
    stay in floating point (`act_bits = 0`) until `w4a4-quantize-activations`.

    `method=gptq` runs GPTQ (Frantar et al.) in float64 with the site's
    Hessian from `w4a4-calibrate` (which must run after the last transform):
    columns in blocks of `group` (128 with per-row scales), error feedback
    through the upper Cholesky factor of `(H + damp * mean(diag H) I)^-1`,
    optionally in act-order (decreasing `H[j][j]`; per-row scales only).
    `clip-search` picks, per row or group, the clip ratio of
    `clip * (1 - 0.025 k)`, k = 0..19, whose RTN error `e` has the smallest
    output error `e^T H e` (also needs the calibration).

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
    Option<"method", "method", "std::string", /*default=*/"\"rtn\"", "rtn | gptq">,
    Option<"damp", "damp", "double", /*default=*/"0.01",
           "GPTQ dampening, a fraction of mean(diag H), in (0, 1)">,
    Option<"actOrder", "act-order", "bool", /*default=*/"false",
           "GPTQ: quantize columns by decreasing H[j][j]">,
    Option<"clipSearch", "clip-search", "bool", /*default=*/"false",
           "Search the clip ratio per row/group by output error">,
  ];
}

def W4A4QuantizeActivations : Pass<"w4a4-quantize-activations", "::mlir::ModuleOp"> {
  let summary = "Quantize the inputs of quantized linears per token (dynamic, symmetric)";
  let description = [{
    Sets `act_bits` and `act_clip_ratio` on every `w4a4.qlinear` at the
    chosen sites (sites: qkv, o_proj, w1w3, w2): all of them, or those listed
    in `sites`, minus those in `keep-fp`; `site-bits` sets other bits for a
    site (e.g. `site-bits=w2=8` keeps the generator w2 at 8 bits). Models with Depth
    Registers must have them folded first (`w4a4-fold-registers`), so that
    register positions never pass through activation quantization.
  }];
  let dependentDialects = ["::mlir::w4a4::W4A4Dialect"];
  let options = [
    Option<"bits", "bits", "int64_t", /*default=*/"4", "Activation bits, in [2, 8]">,
    Option<"clip", "clip", "double", /*default=*/"1.0", "Clip ratio in (0, 1]">,
    ListOption<"sites", "sites", "std::string",
               "Only these sites (default: all of qkv, o_proj, w1w3, w2)">,
    ListOption<"keepFp", "keep-fp", "std::string",
               "Sites whose input stays floating point (qkv, o_proj, w1w3, w2)">,
    ListOption<"siteBitsOption", "site-bits", "std::string",
               "Per-site bits overriding `bits`, e.g. w2=8">,
  ];
}

def W4A4QuantizeKV : Pass<"w4a4-quantize-kv", "::mlir::ModuleOp"> {
  let summary = "Quantize the keys and values attention reads (per token, per head)";
  let description = [{
    Inserts a `w4a4.quantize` (symmetric b-bit, one scale per token and per
    group of `group` channels, default one per head) on the key (after RoPE)
    and value operands of every `w4a4.attention`: DESIGN.md's KV-cache
    option. The folded Depth-Register prefix is a separate constant operand
    and stays in floating point; unfolded registers are refused.

    ```mlir
    %kq = w4a4.quantize %k {bits = 4 : i64, clip_ratio = 1.0 : f64, group_size = 16 : i64} : tensor<?x?x32xf32>
    %vq = w4a4.quantize %v {bits = 4 : i64, clip_ratio = 1.0 : f64, group_size = 16 : i64} : tensor<?x?x32xf32>
    %o = w4a4.attention %q, %kq, %vq prefix(%kp, %vp) {...} : ...
    ```
  }];
  let dependentDialects = ["::mlir::w4a4::W4A4Dialect"];
  let options = [
    Option<"bits", "bits", "int64_t", /*default=*/"4", "KV bits, in [2, 8]">,
    Option<"group", "group", "int64_t", /*default=*/"0",
           "Channels per scale (0: one scale per head)">,
  ];
}

#endif // W4A4_PASSES_TD
