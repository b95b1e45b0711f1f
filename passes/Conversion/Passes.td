//===- Passes.td - w4a4 conversion passes ------------------*- tablegen -*-===//

#ifndef W4A4_CONVERSION_PASSES_TD
#define W4A4_CONVERSION_PASSES_TD

include "mlir/Pass/PassBase.td"

def W4A4RaiseOnnx : Pass<"w4a4-raise-onnx", "::mlir::ModuleOp"> {
  let summary = "Raise imported ONNX subgraphs (w4a4.onnx ops) to model-level w4a4 ops";
  let description = [{
    Stage 2 of the importer. A set of named patterns rewrites the decomposed
    subgraphs that exporters emit into the model-level ops; shape arithmetic
    that only fed the raised subgraphs becomes dead and is erased. Phases:

    1. `cast-weight` (fp16/bf16 initializers + Cast -> one f32 weight),
       `embedding` (Gather), `linear` (MatMul of a transposed weight),
       `rms-norm` (Pow/ReduceMean/Add/Sqrt/Div), `rms-norm-gain` (Mul by a
       gain vector), `swiglu` (x * sigmoid(x) * up);
    2. `attention` (per-head Reshape/Transpose, rotate-half RoPE from cos/sin
       tables, GQA repeat by Unsqueeze/Expand/Reshape, QK^T / c, causal Where
       mask, Softmax, PV, back to [batch, seq, heads * head_dim]),
       `registers-prepend` and `registers-add` (Depth Registers concatenated
       before the tokens / added to the prefix positions);
    3. `residual-add` and `registers-strip` (dropping the prefix before the
       final norm).

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
