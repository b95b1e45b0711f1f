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

#endif // W4A4_CONVERSION_PASSES_TD
