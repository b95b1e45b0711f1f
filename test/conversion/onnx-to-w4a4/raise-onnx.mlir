// One case (or more) per raising pattern of w4a4-raise-onnx, and the cases a
// pattern must refuse.
// RUN: w4a4-opt %s --split-input-file --w4a4-normalize-onnx --w4a4-raise-onnx=require-fully-raised=false | FileCheck %s
// RUN: not w4a4-opt %s --split-input-file --w4a4-normalize-onnx --w4a4-raise-onnx 2>&1 | FileCheck %s --check-prefix=STRICT

// cast-weight + linear: Cast(f16 weight) feeding MatMul(x, Transpose(W)).
// CHECK-LABEL: func.func @linear
// CHECK-SAME: (%[[X:.+]]: tensor<?x?x4xf32>)
// CHECK: %[[W:.+]] = w4a4.weight "wq" = dense<{{\[}}[1.000000e+00, 2.000000e+00, 3.000000e+00, 4.000000e+00], [5.000000e-01, 2.500000e-01, -1.000000e+00, -2.000000e+00]]> : tensor<2x4xf32>
// CHECK: %[[Y:.+]] = w4a4.linear %[[X]], %[[W]] : (tensor<?x?x4xf32>, tensor<2x4xf32>) -> tensor<?x?x2xf32>
// CHECK: return %[[Y]]
func.func @linear(%x: tensor<?x?x4xf32>) -> tensor<?x?x2xf32> {
  %w16 = w4a4.weight "wq" = dense<[[1.0, 2.0, 3.0, 4.0], [0.5, 0.25, -1.0, -2.0]]> : tensor<2x4xf16>
  %w = w4a4.onnx "Cast" "c"(%w16) attributes {to = 1 : i64} : (tensor<2x4xf16>) -> tensor<2x4xf32>
  %t = w4a4.onnx "Transpose" "t"(%w) attributes {perm = array<i64: 1, 0>} : (tensor<2x4xf32>) -> tensor<4x2xf32>
  %y = w4a4.onnx "MatMul" "mm"(%x, %t) : (tensor<?x?x4xf32>, tensor<4x2xf32>) -> tensor<?x?x2xf32>
  return %y : tensor<?x?x2xf32>
}

// -----

// A MatMul without the transposed weight is not a linear.
// CHECK-LABEL: func.func @not_linear
// CHECK: w4a4.onnx "MatMul"
// STRICT: error: node 'mm' (op MatMul, opset 0, feeds func.return) could not be raised (1 generic ops left)
func.func @not_linear(%x: tensor<?x4xf32>, %w: tensor<4x2xf32>) -> tensor<?x2xf32> {
  %y = w4a4.onnx "MatMul" "mm"(%x, %w) : (tensor<?x4xf32>, tensor<4x2xf32>) -> tensor<?x2xf32>
  return %y : tensor<?x2xf32>
}

// -----

// embedding: Gather on axis 0 of a weight.
// CHECK-LABEL: func.func @embedding
// CHECK: w4a4.embedding %{{.+}}[%{{.+}}] : (tensor<8x4xf32>, tensor<?x?xi64>) -> tensor<?x?x4xf32>
func.func @embedding(%ids: tensor<?x?xi64>) -> tensor<?x?x4xf32> {
  %e = w4a4.weight "emb" = dense<0.5> : tensor<8x4xf32>
  %h = w4a4.onnx "Gather" "g"(%e, %ids) : (tensor<8x4xf32>, tensor<?x?xi64>) -> tensor<?x?x4xf32>
  return %h : tensor<?x?x4xf32>
}

// -----

// rms-norm and rms-norm-gain.
// CHECK-LABEL: func.func @rms_norm
// CHECK-SAME: (%[[X:.+]]: tensor<?x?x4xf32>)
// CHECK: %[[G:.+]] = w4a4.weight "norm.weight"
// CHECK: %[[N:.+]] = w4a4.rms_norm %[[X]] gain(%[[G]] : tensor<4xf32>) {epsilon = 9.9999997473787516E-6 : f64} : tensor<?x?x4xf32>
// CHECK: return %[[N]]
func.func @rms_norm(%x: tensor<?x?x4xf32>) -> tensor<?x?x4xf32> {
  %g = w4a4.weight "norm.weight" = dense<[1.0, 2.0, 3.0, 4.0]> : tensor<4xf32>
  %two = arith.constant dense<2.0> : tensor<f32>
  %eps = arith.constant dense<1.0e-5> : tensor<f32>
  %p = w4a4.onnx "Pow" "pow"(%x, %two) : (tensor<?x?x4xf32>, tensor<f32>) -> tensor<?x?x4xf32>
  %m = w4a4.onnx "ReduceMean" "mean"(%p) attributes {axes = array<i64: -1>, keepdims = 1 : i64} : (tensor<?x?x4xf32>) -> tensor<?x?x1xf32>
  %a = w4a4.onnx "Add" "add"(%m, %eps) : (tensor<?x?x1xf32>, tensor<f32>) -> tensor<?x?x1xf32>
  %s = w4a4.onnx "Sqrt" "sqrt"(%a) : (tensor<?x?x1xf32>) -> tensor<?x?x1xf32>
  %d = w4a4.onnx "Div" "div"(%x, %s) : (tensor<?x?x4xf32>, tensor<?x?x1xf32>) -> tensor<?x?x4xf32>
  %y = w4a4.onnx "Mul" "mul"(%g, %d) : (tensor<4xf32>, tensor<?x?x4xf32>) -> tensor<?x?x4xf32>
  return %y : tensor<?x?x4xf32>
}

// -----

// Reducing over another axis, or squaring something else, is not RMSNorm.
// CHECK-LABEL: func.func @not_rms_norm
// CHECK-NOT: w4a4.rms_norm
func.func @not_rms_norm(%x: tensor<?x?x4xf32>) -> tensor<?x?x4xf32> {
  %two = arith.constant dense<2.0> : tensor<f32>
  %eps = arith.constant dense<1.0e-5> : tensor<f32>
  %p = w4a4.onnx "Pow" "pow"(%x, %two) : (tensor<?x?x4xf32>, tensor<f32>) -> tensor<?x?x4xf32>
  %m = w4a4.onnx "ReduceMean" "mean"(%p) attributes {axes = array<i64: 1>, keepdims = 1 : i64} : (tensor<?x?x4xf32>) -> tensor<?x1x4xf32>
  %a = w4a4.onnx "Add" "add"(%m, %eps) : (tensor<?x1x4xf32>, tensor<f32>) -> tensor<?x1x4xf32>
  %s = w4a4.onnx "Sqrt" "sqrt"(%a) : (tensor<?x1x4xf32>) -> tensor<?x1x4xf32>
  %d = w4a4.onnx "Div" "div"(%x, %s) : (tensor<?x?x4xf32>, tensor<?x1x4xf32>) -> tensor<?x?x4xf32>
  return %d : tensor<?x?x4xf32>
}

// -----

// swiglu: (a * sigmoid(a)) * b in either operand order.
// CHECK-LABEL: func.func @swiglu
// CHECK-SAME: (%[[A:.+]]: tensor<?x8xf32>, %[[B:.+]]: tensor<?x8xf32>)
// CHECK: %[[S:.+]] = w4a4.swiglu %[[A]], %[[B]] : tensor<?x8xf32>
// CHECK: return %[[S]]
func.func @swiglu(%a: tensor<?x8xf32>, %b: tensor<?x8xf32>) -> tensor<?x8xf32> {
  %s = w4a4.onnx "Sigmoid" "sig"(%a) : (tensor<?x8xf32>) -> tensor<?x8xf32>
  %m = w4a4.onnx "Mul" "silu"(%s, %a) : (tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
  %y = w4a4.onnx "Mul" "gate"(%b, %m) : (tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

// residual-add (phase 3), but not an add of a constant.
// CHECK-LABEL: func.func @residual_add
// CHECK: w4a4.add %{{.+}}, %{{.+}} : tensor<?x?x4xf32>
// CHECK: w4a4.onnx "Add"
func.func @residual_add(%x: tensor<?x?x4xf32>, %y: tensor<?x?x4xf32>) -> (tensor<?x?x4xf32>, tensor<?x?x4xf32>) {
  %a = w4a4.onnx "Add" "res"(%x, %y) : (tensor<?x?x4xf32>, tensor<?x?x4xf32>) -> tensor<?x?x4xf32>
  %c = arith.constant dense<1.0> : tensor<1x1x4xf32>
  %b = w4a4.onnx "Add" "bias"(%x, %c) : (tensor<?x?x4xf32>, tensor<1x1x4xf32>) -> tensor<?x?x4xf32>
  return %a, %b : tensor<?x?x4xf32>, tensor<?x?x4xf32>
}

// -----

// fold-int-constant: shape arithmetic on constants folds.
// CHECK-LABEL: func.func @fold_int_constant
// CHECK: %[[C:.+]] = arith.constant dense<[0, 7]> : tensor<2xi64>
// CHECK: return %[[C]]
func.func @fold_int_constant() -> tensor<2xi64> {
  %z = arith.constant dense<0> : tensor<i64>
  %ax = arith.constant dense<0> : tensor<1xi64>
  %u = w4a4.onnx "Unsqueeze" "u"(%z, %ax) : (tensor<i64>, tensor<1xi64>) -> tensor<1xi64>
  %s = arith.constant dense<7> : tensor<1xi64>
  %c = w4a4.onnx "Concat" "c"(%u, %s) attributes {axis = 0 : i64} : (tensor<1xi64>, tensor<1xi64>) -> tensor<2xi64>
  return %c : tensor<2xi64>
}

// -----

// registers-prepend, registers-add and registers-strip on a stacked
// [layers, k, hidden] parameter.
// CHECK-LABEL: func.func @registers
// CHECK-SAME: (%[[H:.+]]: tensor<?x?x4xf32>, %[[SHAPE:.+]]: tensor<3xi64>)
// CHECK-DAG: %[[R0:.+]] = w4a4.weight "registers[0]" = dense<1.000000e+00> : tensor<2x4xf32>
// CHECK-DAG: %[[R1:.+]] = w4a4.weight "registers[1]" = dense<1.000000e+00> : tensor<2x4xf32>
// CHECK: %[[P:.+]] = w4a4.registers prepend %[[H]], %[[R0]] : (tensor<?x?x4xf32>, tensor<2x4xf32>) -> tensor<?x?x4xf32>
// CHECK: %[[A:.+]] = w4a4.registers add %[[P]], %[[R1]] : (tensor<?x?x4xf32>, tensor<2x4xf32>) -> tensor<?x?x4xf32>
// CHECK: %[[S:.+]] = w4a4.registers strip %[[A]], %{{.+}} : (tensor<?x?x4xf32>, tensor<2x4xf32>) -> tensor<?x?x4xf32>
// CHECK: return %[[S]]
func.func @registers(%h: tensor<?x?x4xf32>, %shape: tensor<3xi64>) -> tensor<?x?x4xf32> {
  %r = w4a4.weight "registers" = dense<1.0> : tensor<2x2x4xf32>
  %i0 = arith.constant dense<0> : tensor<i64>
  %i1 = arith.constant dense<1> : tensor<i64>
  %ax0 = arith.constant dense<0> : tensor<1xi64>
  %r0 = w4a4.onnx "Gather" "g0"(%r, %i0) attributes {axis = 0 : i64} : (tensor<2x2x4xf32>, tensor<i64>) -> tensor<2x4xf32>
  %u = w4a4.onnx "Unsqueeze" "u"(%r0, %ax0) : (tensor<2x4xf32>, tensor<1xi64>) -> tensor<1x2x4xf32>
  %e = w4a4.onnx "Expand" "e"(%u, %shape) : (tensor<1x2x4xf32>, tensor<3xi64>) -> tensor<?x2x4xf32>
  %p = w4a4.onnx "Concat" "prepend"(%e, %h) attributes {axis = 1 : i64} : (tensor<?x2x4xf32>, tensor<?x?x4xf32>) -> tensor<?x?x4xf32>
  %zero = arith.constant dense<0> : tensor<1xi64>
  %two = arith.constant dense<2> : tensor<1xi64>
  %big = arith.constant dense<9223372036854775807> : tensor<1xi64>
  %one = arith.constant dense<1> : tensor<1xi64>
  %head = w4a4.onnx "Slice" "head"(%p, %zero, %two, %one, %one) : (tensor<?x?x4xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x2x4xf32>
  %r1 = w4a4.onnx "Gather" "g1"(%r, %i1) attributes {axis = 0 : i64} : (tensor<2x2x4xf32>, tensor<i64>) -> tensor<2x4xf32>
  %sum = w4a4.onnx "Add" "radd"(%head, %r1) : (tensor<?x2x4xf32>, tensor<2x4xf32>) -> tensor<?x2x4xf32>
  %tail = w4a4.onnx "Slice" "tail"(%p, %two, %big, %one, %one) : (tensor<?x?x4xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x?x4xf32>
  %a = w4a4.onnx "Concat" "readd"(%sum, %tail) attributes {axis = 1 : i64} : (tensor<?x2x4xf32>, tensor<?x?x4xf32>) -> tensor<?x?x4xf32>
  %s = w4a4.onnx "Slice" "strip"(%a, %two, %big, %one, %one) : (tensor<?x?x4xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x?x4xf32>
  return %s : tensor<?x?x4xf32>
}
