// RUN: w4a4-opt %s --split-input-file --w4a4-normalize-onnx | FileCheck %s

// Every spelling of 1/sqrt is Rsqrt; a/sqrt(x) is a * rsqrt(x).
// CHECK-LABEL: func.func @rsqrt
// CHECK-SAME: (%[[X:.+]]: tensor<?x1xf32>, %[[A:.+]]: tensor<?x4xf32>)
// CHECK: %[[R1:.+]] = w4a4.onnx "Rsqrt" "recip"(%[[X]])
// CHECK: %[[R2:.+]] = w4a4.onnx "Rsqrt" "div1"(%[[X]])
// CHECK: %[[R3:.+]] = w4a4.onnx "Rsqrt" "pow"(%[[X]])
// CHECK: %[[R4:.+]] = w4a4.onnx "Rsqrt" "diva/rsqrt"(%[[X]])
// CHECK: w4a4.onnx "Mul" "diva"(%[[A]], %[[R4]]) : (tensor<?x4xf32>, tensor<?x1xf32>) -> tensor<?x4xf32>
// CHECK-NOT: "Sqrt"
// CHECK-NOT: "Reciprocal"
func.func @rsqrt(%x: tensor<?x1xf32>, %a: tensor<?x4xf32>) -> (tensor<?x1xf32>, tensor<?x1xf32>, tensor<?x1xf32>, tensor<?x4xf32>) {
  %one = arith.constant dense<1.0> : tensor<f32>
  %half = arith.constant dense<-0.5> : tensor<f32>
  %s = w4a4.onnx "Sqrt" "sqrt"(%x) : (tensor<?x1xf32>) -> tensor<?x1xf32>
  %r1 = w4a4.onnx "Reciprocal" "recip"(%s) : (tensor<?x1xf32>) -> tensor<?x1xf32>
  %r2 = w4a4.onnx "Div" "div1"(%one, %s) : (tensor<f32>, tensor<?x1xf32>) -> tensor<?x1xf32>
  %r3 = w4a4.onnx "Pow" "pow"(%x, %half) : (tensor<?x1xf32>, tensor<f32>) -> tensor<?x1xf32>
  %r4 = w4a4.onnx "Div" "diva"(%a, %s) : (tensor<?x4xf32>, tensor<?x1xf32>) -> tensor<?x4xf32>
  return %r1, %r2, %r3, %r4 : tensor<?x1xf32>, tensor<?x1xf32>, tensor<?x1xf32>, tensor<?x4xf32>
}

// -----

// Division by a constant is multiplication by its reciprocal; x^2 is x*x.
// CHECK-LABEL: func.func @div_pow
// CHECK-SAME: (%[[X:.+]]: tensor<?x4xf32>)
// CHECK-DAG: %[[C:.+]] = arith.constant dense<1.250000e-01> : tensor<f32>
// CHECK: w4a4.onnx "Mul" "div"(%[[X]], %[[C]])
// CHECK: w4a4.onnx "Mul" "pow"(%[[X]], %[[X]])
func.func @div_pow(%x: tensor<?x4xf32>) -> (tensor<?x4xf32>, tensor<?x4xf32>) {
  %eight = arith.constant dense<8.0> : tensor<f32>
  %two = arith.constant dense<2.0> : tensor<f32>
  %d = w4a4.onnx "Div" "div"(%x, %eight) : (tensor<?x4xf32>, tensor<f32>) -> tensor<?x4xf32>
  %p = w4a4.onnx "Pow" "pow"(%x, %two) : (tensor<?x4xf32>, tensor<f32>) -> tensor<?x4xf32>
  return %d, %p : tensor<?x4xf32>, tensor<?x4xf32>
}

// -----

// Split is one Slice per output with constant bounds.
// CHECK-LABEL: func.func @split
// CHECK-DAG: %[[Z:.+]] = arith.constant dense<0> : tensor<1xi64>
// CHECK-DAG: %[[T:.+]] = arith.constant dense<3> : tensor<1xi64>
// CHECK-DAG: %[[E:.+]] = arith.constant dense<8> : tensor<1xi64>
// CHECK-DAG: %[[AX:.+]] = arith.constant dense<1> : tensor<1xi64>
// CHECK: w4a4.onnx "Slice" "sp/slice0"(%{{.+}}, %[[Z]], %[[T]], %[[AX]], %[[AX]]) {{.*}} -> tensor<?x3xf32>
// CHECK: w4a4.onnx "Slice" "sp/slice1"(%{{.+}}, %[[T]], %[[E]], %[[AX]], %[[AX]]) {{.*}} -> tensor<?x5xf32>
// CHECK-NOT: "Split"
func.func @split(%x: tensor<?x8xf32>) -> (tensor<?x3xf32>, tensor<?x5xf32>) {
  %sizes = arith.constant dense<[3, 5]> : tensor<2xi64>
  %a:2 = w4a4.onnx "Split" "sp"(%x, %sizes) attributes {axis = 1 : i64} : (tensor<?x8xf32>, tensor<2xi64>) -> (tensor<?x3xf32>, tensor<?x5xf32>)
  return %a#0, %a#1 : tensor<?x3xf32>, tensor<?x5xf32>
}

// -----

// Gemm(transB) is MatMul of the transposed weight plus the bias.
// CHECK-LABEL: func.func @gemm
// CHECK: %[[T:.+]] = w4a4.onnx "Transpose" "g/transB"(%{{.+}}) attributes {perm = array<i64: 1, 0>} : (tensor<3x4xf32>) -> tensor<4x3xf32>
// CHECK: %[[M:.+]] = w4a4.onnx "MatMul" "g/matmul"(%{{.+}}, %[[T]])
// CHECK: w4a4.onnx "Add" "g"(%[[M]], %{{.+}})
func.func @gemm(%x: tensor<?x4xf32>, %w: tensor<3x4xf32>, %b: tensor<3xf32>) -> tensor<?x3xf32> {
  %y = w4a4.onnx "Gemm" "g"(%x, %w, %b) attributes {transB = 1 : i64} : (tensor<?x4xf32>, tensor<3x4xf32>, tensor<3xf32>) -> tensor<?x3xf32>
  return %y : tensor<?x3xf32>
}

// -----

// Stage 1's values: all-constant ones fold, symbolic ones stay; small
// constant subgraphs evaluate.
// CHECK-LABEL: func.func @shape_arith
// CHECK-DAG: arith.constant dense<[2, 64]> : tensor<2xi64>
// CHECK-DAG: arith.constant dense<5.65685415> : tensor<f32>
// CHECK: w4a4.onnx "Concat" "sym"{{.*}}{w4a4.sym = ["seq", "64"]}
// CHECK-NOT: "Cast"
func.func @shape_arith(%a: tensor<1xi64>, %s: tensor<1xi64>) -> (tensor<2xi64>, tensor<2xi64>, tensor<f32>) {
  %c64 = arith.constant dense<64> : tensor<1xi64>
  %c = w4a4.onnx "Concat" "const"(%a, %c64) attributes {axis = 0 : i64} {w4a4.sym = ["2", "64"]} : (tensor<1xi64>, tensor<1xi64>) -> tensor<2xi64>
  %y = w4a4.onnx "Concat" "sym"(%s, %c64) attributes {axis = 0 : i64} {w4a4.sym = ["seq", "64"]} : (tensor<1xi64>, tensor<1xi64>) -> tensor<2xi64>
  %d = arith.constant dense<32> : tensor<i64>
  %f = w4a4.onnx "Cast" "cast"(%d) attributes {to = 1 : i64} : (tensor<i64>) -> tensor<f32>
  %r = w4a4.onnx "Sqrt" "sqrt"(%f) : (tensor<f32>) -> tensor<f32>
  return %c, %y, %r : tensor<2xi64>, tensor<2xi64>, tensor<f32>
}

// -----

// A flattened token stream ([b*s, n], Gemm-style exports) keeps its
// [b, s, n] shape: the flatten sinks below the embedding Gather and the
// row-wise ops after it.
// CHECK-LABEL: func.func @flatten
// CHECK: %[[G:.+]] = w4a4.onnx "Gather" "emb"(%{{.+}}, %{{.+}}) : (tensor<8x4xf32>, tensor<?x?xi64>) -> tensor<?x?x4xf32>
// CHECK: %[[M:.+]] = w4a4.onnx "MatMul" "mm"(%[[G]], %{{.+}}) {{.*}}: (tensor<?x?x4xf32>, tensor<4x3xf32>) -> tensor<?x?x3xf32>
// CHECK: w4a4.onnx "Reshape" "mm/flatten"(%[[M]], %{{.+}}) : (tensor<?x?x3xf32>, tensor<2xi64>) -> tensor<?x3xf32>
func.func @flatten(%ids: tensor<?x?xi64>, %t: tensor<8x4xf32>, %w: tensor<4x3xf32>) -> tensor<?x3xf32> {
  %m1 = arith.constant dense<[-1]> : tensor<1xi64>
  %f = w4a4.onnx "Reshape" "flat"(%ids, %m1) : (tensor<?x?xi64>, tensor<1xi64>) -> tensor<?xi64>
  %e = w4a4.onnx "Gather" "emb"(%t, %f) : (tensor<8x4xf32>, tensor<?xi64>) -> tensor<?x4xf32>
  %y = w4a4.onnx "MatMul" "mm"(%e, %w) : (tensor<?x4xf32>, tensor<4x3xf32>) -> tensor<?x3xf32>
  return %y : tensor<?x3xf32>
}
