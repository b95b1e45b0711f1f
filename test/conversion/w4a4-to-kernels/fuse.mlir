// RUN: w4a4-opt %s --split-input-file --w4a4-lower-to-kernels --w4a4k-fuse | FileCheck %s

// The norm's only reader is the quantization q, k and v share: one fused
// rms_norm_quantize, no fp32 norm; the residual add after the GEMM moves
// into its epilogue.
// CHECK-LABEL: func.func @forward
// CHECK-NOT: w4a4k.rms_norm %
// CHECK: %[[XQ:.+]] = w4a4k.rms_norm_quantize %[[X:[^ ]+]] {clip_ratio = 1.000000e+00 : f64, epsilon = 1.000000e-05 : f64} : tensor<1x?x8xf32> -> <4 x 8>
// CHECK-COUNT-2: w4a4k.qgemm %[[XQ]], %{{[^ ]+}}, %{{[^ ]+}} {
// CHECK: w4a4k.qgemm %[[XQ]], %{{[^ ]+}}, %{{[^ ]+}} residual(%[[X]] : tensor<1x?x8xf32>)
// CHECK: w4a4k.add %{{[^ ]+}}, %{{[^ ]+}} : (tensor<1x?x8xf32>, tensor<1x?x8xf32>)
// CHECK-NEXT: return
func.func @forward(%arg: tensor<1x?x8xf32>) -> tensor<1x?x8xf32> {
  %c = w4a4.weight "c" = dense<1> : tensor<8x4xi8>
  %s = w4a4.weight "s" = dense<0.5> : tensor<8x1xf32>
  %x = w4a4.add %arg, %arg : tensor<1x?x8xf32>
  %n = w4a4.rms_norm %x {epsilon = 1.0e-5 : f64} : tensor<1x?x8xf32>
  %q = w4a4.qlinear %n, %c, %s {act_bits = 4 : i64, weight_bits = 4 : i64} : (tensor<1x?x8xf32>, tensor<8x4xi8>, tensor<8x1xf32>) -> tensor<1x?x8xf32>
  %k = w4a4.qlinear %n, %c, %s {act_bits = 4 : i64, weight_bits = 4 : i64} : (tensor<1x?x8xf32>, tensor<8x4xi8>, tensor<8x1xf32>) -> tensor<1x?x8xf32>
  %v = w4a4.qlinear %n, %c, %s {act_bits = 4 : i64, weight_bits = 4 : i64} : (tensor<1x?x8xf32>, tensor<8x4xi8>, tensor<8x1xf32>) -> tensor<1x?x8xf32>
  %o = w4a4.attention %q, %k, %v {num_heads = 2 : i64, num_kv_heads = 2 : i64, head_dim = 4 : i64} : (tensor<1x?x8xf32>, tensor<1x?x8xf32>, tensor<1x?x8xf32>) -> tensor<1x?x8xf32>
  %y = w4a4.qlinear %n, %c, %s {act_bits = 4 : i64, weight_bits = 4 : i64} : (tensor<1x?x8xf32>, tensor<8x4xi8>, tensor<8x1xf32>) -> tensor<1x?x8xf32>
  %r = w4a4.add %x, %y : tensor<1x?x8xf32>
  %z = w4a4.add %r, %o : tensor<1x?x8xf32>
  return %z : tensor<1x?x8xf32>
}

// -----

// A norm an fp32 GEMM reads too stays; so does a GEMM result read twice
// (no residual fusion), and an add of two fp32 values.
// CHECK-LABEL: func.func @forward
// CHECK: %[[N:.+]] = w4a4k.rms_norm
// CHECK: w4a4k.quantize %[[N]]
// CHECK: %[[Y:.+]] = w4a4k.qgemm
// CHECK-NOT: residual
// CHECK: w4a4k.gemm %[[N]]
// CHECK: w4a4k.add %[[Y]], %[[Y]]
func.func @forward(%x: tensor<1x?x8xf32>) -> tensor<1x?x8xf32> {
  %c = w4a4.weight "c" = dense<1> : tensor<8x4xi8>
  %s = w4a4.weight "s" = dense<0.5> : tensor<8x1xf32>
  %w = w4a4.weight "w" = dense<0.5> : tensor<8x8xf32>
  %n = w4a4.rms_norm %x {epsilon = 1.0e-5 : f64} : tensor<1x?x8xf32>
  %y = w4a4.qlinear %n, %c, %s {act_bits = 4 : i64, weight_bits = 4 : i64} : (tensor<1x?x8xf32>, tensor<8x4xi8>, tensor<8x1xf32>) -> tensor<1x?x8xf32>
  %f = w4a4.linear %n, %w : (tensor<1x?x8xf32>, tensor<8x8xf32>) -> tensor<1x?x8xf32>
  %a = w4a4.add %y, %y : tensor<1x?x8xf32>
  %b = w4a4.add %a, %f : tensor<1x?x8xf32>
  return %b : tensor<1x?x8xf32>
}

// -----

// SwiGLU, QuaRot's online Hadamard and the down projection's quantization:
// one swiglu_quantize with the Hadamard's signs; without a Hadamard,
// hadamard_size = 0.
// CHECK-LABEL: func.func @forward
// CHECK: %[[SIGNS:.+]] = w4a4.weight "hadamard.0.signs"
// CHECK: %[[A:.+]] = w4a4k.swiglu_quantize %{{[^ ]+}}, %{{[^ ]+}} signs(%[[SIGNS]] : tensor<8xf32>) {clip_ratio = 1.000000e+00 : f64, hadamard_inverse = false, hadamard_size = 8 : i64, hadamard_stride = 1 : i64}
// CHECK: w4a4k.qgemm %[[A]]
// CHECK: %[[B:.+]] = w4a4k.swiglu_quantize %{{[^ ]+}}, %{{[^ ]+}} {clip_ratio = 1.000000e+00 : f64, hadamard_inverse = false, hadamard_size = 0 : i64, hadamard_stride = 1 : i64}
// CHECK: w4a4k.qgemm %[[B]]
// CHECK-NOT: w4a4k.swiglu %
// CHECK-NOT: w4a4k.hadamard %
func.func @forward(%x: tensor<1x?x8xf32>, %g: tensor<1x?x8xf32>) -> tensor<1x?x8xf32> {
  %c = w4a4.weight "c" = dense<1> : tensor<8x4xi8>
  %s = w4a4.weight "s" = dense<0.5> : tensor<8x1xf32>
  %sw = w4a4.swiglu %g, %x : tensor<1x?x8xf32>
  %h = w4a4.hadamard walsh(8) %sw {seed = 7 : i64} : tensor<1x?x8xf32>
  %d = w4a4.qlinear %h, %c, %s {act_bits = 4 : i64, weight_bits = 4 : i64} : (tensor<1x?x8xf32>, tensor<8x4xi8>, tensor<8x1xf32>) -> tensor<1x?x8xf32>
  %sw2 = w4a4.swiglu %d, %x : tensor<1x?x8xf32>
  %d2 = w4a4.qlinear %sw2, %c, %s {act_bits = 4 : i64, weight_bits = 4 : i64} : (tensor<1x?x8xf32>, tensor<8x4xi8>, tensor<8x1xf32>) -> tensor<1x?x8xf32>
  return %d2 : tensor<1x?x8xf32>
}
