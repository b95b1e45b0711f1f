//===- W4A4Dialect.td - w4a4 dialect definition ------------*- tablegen -*-===//
//
// The w4a4 dialect: model-level ops of SwiGLU decoder-only language models and
// their 4-bit weight / 4-bit activation quantized forms.
//
//===----------------------------------------------------------------------===//

#ifndef W4A4_DIALECT_TD
#define W4A4_DIALECT_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/EnumAttr.td"

def W4A4_Dialect : Dialect {
  let name = "w4a4";
  let cppNamespace = "::mlir::w4a4";
  let summary = "Model-level ops for W4A4 inference of SwiGLU language models";
  let description = [{
    The `w4a4` dialect models a Llama-style SwiGLU decoder (RMSNorm, RoPE,
    causal multi-head attention with GQA, SwiGLU MLP, residual adds), the
    Depth Registers prefix, the online orthogonal transforms that QuaRot-style
    rotations insert, and the 4-bit quantized forms of linears and
    activations.

    Activations are ranked tensors `[batch, seq, features]` of a float type;
    the batch and sequence axes may be dynamic. Weights are `w4a4.weight` ops
    holding `dense_resource` blobs, named after the tensors of the model they
    came from. Model hyper-parameters (heads, head dim, RoPE theta, epsilon,
    bit widths, ...) live in op attributes.

    ```mlir
    %g = w4a4.weight "layers.0.attn_norm.weight" = dense_resource<g0> : tensor<64xf32>
    %n = w4a4.rms_norm %h gain(%g : tensor<64xf32>) {epsilon = 1.0e-05 : f64} : tensor<?x?x64xf32>
    ```
  }];
}

class W4A4_Op<string mnemonic, list<Trait> traits = []>
    : Op<W4A4_Dialect, mnemonic, traits>;

//===----------------------------------------------------------------------===//
// Enums
//===----------------------------------------------------------------------===//

def W4A4_HadamardKind : I32EnumAttr<"HadamardKind",
    "construction of an online orthogonal transform", [
      I32EnumAttrCase<"walsh", 0>,
      I32EnumAttrCase<"kronecker", 1>,
      I32EnumAttrCase<"random_orthogonal", 2>
    ]> {
  let cppNamespace = "::mlir::w4a4";
}

def W4A4_RegisterMode : I32EnumAttr<"RegisterMode",
    "how Depth Registers enter the residual stream", [
      I32EnumAttrCase<"prepend", 0>,
      I32EnumAttrCase<"add", 1>,
      I32EnumAttrCase<"strip", 2>
    ]> {
  let cppNamespace = "::mlir::w4a4";
}

#endif // W4A4_DIALECT_TD
