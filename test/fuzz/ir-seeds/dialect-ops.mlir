// Round trip of every w4a4 op through the custom and the generic printer and
// through bytecode.
// RUN: w4a4-opt %s | w4a4-opt | FileCheck %s
// RUN: w4a4-opt %s --mlir-print-op-generic | w4a4-opt | FileCheck %s
// RUN: w4a4-opt %s --emit-bytecode | w4a4-opt | FileCheck %s

// CHECK-LABEL: func.func @weight
func.func @weight() -> (tensor<4xf32>, tensor<2x2xf32>) {
  // CHECK: %[[G:.+]] = w4a4.weight "norm.weight" = dense_resource<gain_blob> : tensor<4xf32>
  %g = w4a4.weight "norm.weight" = dense_resource<gain_blob> : tensor<4xf32>
  // CHECK: %[[W:.+]] = w4a4.weight "w" = dense<{{\[}}[1.000000e+00, 2.000000e+00], [3.000000e+00, 4.000000e+00]]> : tensor<2x2xf32>
  %w = w4a4.weight "w" = dense<[[1.0, 2.0], [3.0, 4.0]]> : tensor<2x2xf32>
  // CHECK: return %[[G]], %[[W]]
  return %g, %w : tensor<4xf32>, tensor<2x2xf32>
}

// CHECK-LABEL: func.func @embedding
func.func @embedding(%t: tensor<128x64xf32>, %ids: tensor<?x?xi64>) -> tensor<?x?x64xf32> {
  // CHECK: w4a4.embedding %{{.+}}[%{{.+}}] : (tensor<128x64xf32>, tensor<?x?xi64>) -> tensor<?x?x64xf32>
  %e = w4a4.embedding %t[%ids] : (tensor<128x64xf32>, tensor<?x?xi64>) -> tensor<?x?x64xf32>
  return %e : tensor<?x?x64xf32>
}

// CHECK-LABEL: func.func @rms_norm
func.func @rms_norm(%x: tensor<?x?x64xf32>, %g: tensor<64xf32>) -> (tensor<?x?x64xf32>, tensor<?x?x64xf32>) {
  // CHECK: %[[A:.+]] = w4a4.rms_norm %{{.+}} gain(%{{.+}} : tensor<64xf32>) {epsilon = 9.9999999999999995E-7 : f64} : tensor<?x?x64xf32>
  %a = w4a4.rms_norm %x gain(%g : tensor<64xf32>) {epsilon = 1.0e-6 : f64} : tensor<?x?x64xf32>
  // CHECK: %[[B:.+]] = w4a4.rms_norm %[[A]] : tensor<?x?x64xf32>
  %b = w4a4.rms_norm %a : tensor<?x?x64xf32>
  return %a, %b : tensor<?x?x64xf32>, tensor<?x?x64xf32>
}

// CHECK-LABEL: func.func @linear
func.func @linear(%x: tensor<2x?x64xf32>, %w: tensor<96x64xf32>, %b: tensor<96xf32>) -> (tensor<2x?x96xf32>, tensor<2x?x96xf32>) {
  // CHECK: w4a4.linear %{{.+}}, %{{.+}} : (tensor<2x?x64xf32>, tensor<96x64xf32>) -> tensor<2x?x96xf32>
  %y = w4a4.linear %x, %w : (tensor<2x?x64xf32>, tensor<96x64xf32>) -> tensor<2x?x96xf32>
  // CHECK: w4a4.linear %{{.+}}, %{{.+}}, %{{.+}} : (tensor<2x?x64xf32>, tensor<96x64xf32>, tensor<96xf32>) -> tensor<2x?x96xf32>
  %z = w4a4.linear %x, %w, %b : (tensor<2x?x64xf32>, tensor<96x64xf32>, tensor<96xf32>) -> tensor<2x?x96xf32>
  return %y, %z : tensor<2x?x96xf32>, tensor<2x?x96xf32>
}

// CHECK-LABEL: func.func @rope
func.func @rope(%q: tensor<?x?x128xf32>) -> (tensor<?x?x128xf32>, tensor<?x?x128xf32>) {
  // CHECK: w4a4.rope %{{.+}} {head_dim = 32 : i64, position_offset = 4 : i64} : tensor<?x?x128xf32>
  %a = w4a4.rope %q {head_dim = 32 : i64, theta = 10000.0 : f64, position_offset = 4 : i64} : tensor<?x?x128xf32>
  // CHECK: w4a4.rope %{{.+}} {head_dim = 64 : i64, interleaved, theta = 5.000000e+05 : f64} : tensor<?x?x128xf32>
  %b = w4a4.rope %q {head_dim = 64 : i64, theta = 500000.0 : f64, interleaved} : tensor<?x?x128xf32>
  return %a, %b : tensor<?x?x128xf32>, tensor<?x?x128xf32>
}

// CHECK-LABEL: func.func @attention
func.func @attention(%q: tensor<?x?x64xf32>, %k: tensor<?x?x32xf32>, %v: tensor<?x?x32xf32>,
                     %kp: tensor<4x32xf32>, %vp: tensor<4x32xf32>) -> (tensor<?x?x64xf32>, tensor<?x?x64xf32>) {
  // CHECK: w4a4.attention %{{.+}}, %{{.+}}, %{{.+}} {head_dim = 16 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64} : (tensor<?x?x64xf32>, tensor<?x?x32xf32>, tensor<?x?x32xf32>) -> tensor<?x?x64xf32>
  %a = w4a4.attention %q, %k, %v {num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 16 : i64}
      : (tensor<?x?x64xf32>, tensor<?x?x32xf32>, tensor<?x?x32xf32>) -> tensor<?x?x64xf32>
  // CHECK: w4a4.attention %{{.+}}, %{{.+}}, %{{.+}} prefix(%{{.+}}, %{{.+}}) {head_dim = 16 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, scale = 2.500000e-01 : f64} : (tensor<?x?x64xf32>, tensor<?x?x32xf32>, tensor<?x?x32xf32>, tensor<4x32xf32>, tensor<4x32xf32>) -> tensor<?x?x64xf32>
  %b = w4a4.attention %q, %k, %v prefix(%kp, %vp) {num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 16 : i64, scale = 0.25 : f64}
      : (tensor<?x?x64xf32>, tensor<?x?x32xf32>, tensor<?x?x32xf32>, tensor<4x32xf32>, tensor<4x32xf32>) -> tensor<?x?x64xf32>
  return %a, %b : tensor<?x?x64xf32>, tensor<?x?x64xf32>
}

// CHECK-LABEL: func.func @kv_cache
func.func @kv_cache(%ids: tensor<?x?xi64>, %q: tensor<?x?x64xf32>, %k: tensor<?x?x32xf32>, %v: tensor<?x?x32xf32>,
                    %pk: tensor<?x2x?x16xf32>, %pv: tensor<?x2x?x16xf32>)
    -> (tensor<?x?x64xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>) {
  // CHECK: %[[P:.+]] = w4a4.cache_positions %{{.+}}, %{{.+}} : (tensor<?x?xi64>, tensor<?x2x?x16xf32>) -> tensor<?x?xi64>
  %pos = w4a4.cache_positions %ids, %pk : (tensor<?x?xi64>, tensor<?x2x?x16xf32>) -> tensor<?x?xi64>
  // CHECK: w4a4.rope %{{.+}} positions(%[[P]] : tensor<?x?xi64>) {head_dim = 16 : i64} : tensor<?x?x64xf32>
  %qr = w4a4.rope %q positions(%pos : tensor<?x?xi64>) {head_dim = 16 : i64} : tensor<?x?x64xf32>
  // CHECK: %{{.+}}, %{{.+}}:2 = w4a4.attention %{{.+}}, %{{.+}}, %{{.+}} past(%{{.+}}, %{{.+}}) {head_dim = 16 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64} : (tensor<?x?x64xf32>, tensor<?x?x32xf32>, tensor<?x?x32xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>) -> (tensor<?x?x64xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>)
  %o, %nk, %nv = w4a4.attention %qr, %k, %v past(%pk, %pv) {num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 16 : i64}
      : (tensor<?x?x64xf32>, tensor<?x?x32xf32>, tensor<?x?x32xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>)
      -> (tensor<?x?x64xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>)
  return %o, %nk, %nv : tensor<?x?x64xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>
}

// CHECK-LABEL: func.func @swiglu_add
func.func @swiglu_add(%a: tensor<?x?x96xf32>, %b: tensor<?x?x96xf32>) -> tensor<?x?x96xf32> {
  // CHECK: %[[S:.+]] = w4a4.swiglu %{{.+}}, %{{.+}} : tensor<?x?x96xf32>
  %s = w4a4.swiglu %a, %b : tensor<?x?x96xf32>
  // CHECK: w4a4.add %[[S]], %{{.+}} : tensor<?x?x96xf32>
  %r = w4a4.add %s, %a : tensor<?x?x96xf32>
  return %r : tensor<?x?x96xf32>
}

// CHECK-LABEL: func.func @registers
func.func @registers(%x: tensor<1x?x64xf32>, %y: tensor<1x10x64xf32>, %r: tensor<4x64xf32>) -> (tensor<1x?x64xf32>, tensor<1x14x64xf32>, tensor<1x10x64xf32>) {
  // CHECK: w4a4.registers prepend %{{.+}}, %{{.+}} : (tensor<1x?x64xf32>, tensor<4x64xf32>) -> tensor<1x?x64xf32>
  %a = w4a4.registers prepend %x, %r : (tensor<1x?x64xf32>, tensor<4x64xf32>) -> tensor<1x?x64xf32>
  // CHECK: w4a4.registers prepend %{{.+}}, %{{.+}} : (tensor<1x10x64xf32>, tensor<4x64xf32>) -> tensor<1x14x64xf32>
  %b = w4a4.registers prepend %y, %r : (tensor<1x10x64xf32>, tensor<4x64xf32>) -> tensor<1x14x64xf32>
  // CHECK: w4a4.registers add %{{.+}}, %{{.+}} : (tensor<1x10x64xf32>, tensor<4x64xf32>) -> tensor<1x10x64xf32>
  %c = w4a4.registers add %y, %r : (tensor<1x10x64xf32>, tensor<4x64xf32>) -> tensor<1x10x64xf32>
  // CHECK: w4a4.registers strip %{{.+}}, %{{.+}} : (tensor<1x10x64xf32>, tensor<4x64xf32>) -> tensor<1x6x64xf32>
  %d = w4a4.registers strip %y, %r : (tensor<1x10x64xf32>, tensor<4x64xf32>) -> tensor<1x6x64xf32>
  return %a, %b, %c : tensor<1x?x64xf32>, tensor<1x14x64xf32>, tensor<1x10x64xf32>
}

// CHECK-LABEL: func.func @hadamard
func.func @hadamard(%x: tensor<?x?x192xf32>, %y: tensor<?x4xf32>) -> (tensor<?x?x192xf32>, tensor<?x?x192xf32>, tensor<?x?x192xf32>, tensor<?x4xf32>) {
  // CHECK: w4a4.hadamard kronecker(192) %{{.+}} inverse : tensor<?x?x192xf32>
  %a = w4a4.hadamard kronecker(192) %x inverse : tensor<?x?x192xf32>
  // CHECK: w4a4.hadamard walsh(64) %{{.+}} {seed = 11 : i64} : tensor<?x?x192xf32>
  %b = w4a4.hadamard walsh(64) %x {seed = 11 : i64} : tensor<?x?x192xf32>
  // CHECK: w4a4.hadamard random_orthogonal(192) %{{.+}} {seed = 5 : i64} : tensor<?x?x192xf32>
  %c = w4a4.hadamard random_orthogonal(192) %x {seed = 5 : i64} : tensor<?x?x192xf32>
  // CHECK: w4a4.hadamard walsh(4) %{{.+}} {signs = array<i8: 1, -1, -1, 1>} : tensor<?x4xf32>
  %d = w4a4.hadamard walsh(4) %y {signs = array<i8: 1, -1, -1, 1>} : tensor<?x4xf32>
  return %a, %b, %c, %d : tensor<?x?x192xf32>, tensor<?x?x192xf32>, tensor<?x?x192xf32>, tensor<?x4xf32>
}

// CHECK-LABEL: func.func @quantize
func.func @quantize(%x: tensor<?x?x64xf32>) -> (tensor<?x?x64xf32>, tensor<?x?x64xf32>) {
  // CHECK: w4a4.quantize %{{.+}} {bits = 4 : i64} : tensor<?x?x64xf32>
  %a = w4a4.quantize %x {bits = 4 : i64} : tensor<?x?x64xf32>
  // CHECK: w4a4.quantize %{{.+}} {bits = 8 : i64, clip_ratio = 9.000000e-01 : f64} : tensor<?x?x64xf32>
  %b = w4a4.quantize %x {bits = 8 : i64, clip_ratio = 0.9 : f64} : tensor<?x?x64xf32>
  // CHECK: w4a4.quantize %{{.+}} {bits = 4 : i64, group_size = 16 : i64} : tensor<?x?x64xf32>
  %c = w4a4.quantize %x {bits = 4 : i64, group_size = 16 : i64} : tensor<?x?x64xf32>
  return %a, %c : tensor<?x?x64xf32>, tensor<?x?x64xf32>
}

// CHECK-LABEL: func.func @qlinear
func.func @qlinear(%x: tensor<?x?x64xf32>, %c4: tensor<96x32xi8>, %s: tensor<96x1xf32>,
                   %c3: tensor<96x64xi8>, %sg: tensor<96x2xf32>, %b: tensor<96xf32>,
                   %l: tensor<96x8xf32>, %r: tensor<8x64xf32>) -> (tensor<?x?x96xf32>, tensor<?x?x96xf32>) {
  // CHECK: w4a4.qlinear %{{.+}}, %{{.+}}, %{{.+}} {act_bits = 4 : i64, weight_bits = 4 : i64} : (tensor<?x?x64xf32>, tensor<96x32xi8>, tensor<96x1xf32>) -> tensor<?x?x96xf32>
  %a = w4a4.qlinear %x, %c4, %s {weight_bits = 4 : i64, act_bits = 4 : i64}
      : (tensor<?x?x64xf32>, tensor<96x32xi8>, tensor<96x1xf32>) -> tensor<?x?x96xf32>
  // CHECK: w4a4.qlinear %{{.+}}, %{{.+}}, %{{.+}} bias(%{{.+}}) low_rank(%{{.+}}, %{{.+}}) {act_bits = 0 : i64, group_size = 32 : i64, weight_bits = 3 : i64} : (tensor<?x?x64xf32>, tensor<96x64xi8>, tensor<96x2xf32>, tensor<96xf32>, tensor<96x8xf32>, tensor<8x64xf32>) -> tensor<?x?x96xf32>
  %z = w4a4.qlinear %x, %c3, %sg bias(%b) low_rank(%l, %r) {weight_bits = 3 : i64, act_bits = 0 : i64, group_size = 32 : i64}
      : (tensor<?x?x64xf32>, tensor<96x64xi8>, tensor<96x2xf32>, tensor<96xf32>, tensor<96x8xf32>, tensor<8x64xf32>) -> tensor<?x?x96xf32>
  return %a, %z : tensor<?x?x96xf32>, tensor<?x?x96xf32>
}

// CHECK-LABEL: func.func @onnx
func.func @onnx(%x: tensor<?x?x8xf32>, %w: tensor<8x4xf32>) -> (tensor<?x?x4xf32>, tensor<?x?x4xf32>) {
  // CHECK: w4a4.onnx "MatMul" "/l0/MatMul"(%{{.+}}, %{{.+}}) : (tensor<?x?x8xf32>, tensor<8x4xf32>) -> tensor<?x?x4xf32>
  %y = w4a4.onnx "MatMul" "/l0/MatMul"(%x, %w) : (tensor<?x?x8xf32>, tensor<8x4xf32>) -> tensor<?x?x4xf32>
  // CHECK: w4a4.onnx "Softmax" "sm"(%{{.+}}) attributes {axis = -1 : i64} {absent_inputs = array<i64: 1>} : (tensor<?x?x4xf32>) -> tensor<?x?x4xf32>
  %s = w4a4.onnx "Softmax" "sm"(%y) attributes {axis = -1 : i64} {absent_inputs = array<i64: 1>} : (tensor<?x?x4xf32>) -> tensor<?x?x4xf32>
  return %y, %s : tensor<?x?x4xf32>, tensor<?x?x4xf32>
}

// CHECK: dialect_resources
// CHECK-NEXT: builtin
// CHECK-NEXT: gain_blob: "0x040000000000803F000000400000404000008040"
{-#
  dialect_resources: {
    builtin: {
      gain_blob: "0x040000000000803F000000400000404000008040"
    }
  }
#-}
