// RUN: w4a4-opt %s --split-input-file --w4a4-lower-to-kernels --w4a4k-fuse --w4a4k-split-tail | FileCheck %s

// The row-wise tail of a decoder: after the last attention, the MLP block,
// the final norm and the LM head work row by row; they start from the
// residual stream after the attention (%[[H]]) and run on the scored rows.
// CHECK-LABEL: func.func @forward
// CHECK: %[[O:.+]] = w4a4k.attention
// CHECK: %[[H:.+]] = w4a4k.add %{{[^ ]+}}, %[[O]]
// CHECK: %[[T:.+]] = w4a4k.tail_rows %[[H]] : tensor<1x?x8xf32> -> tensor<1x?x8xf32>
// CHECK-NEXT: w4a4k.rms_norm_quantize %[[T]] {{.*}}w4a4k.tail
// CHECK-NEXT: w4a4k.qgemm {{.*}}w4a4k.tail
// CHECK-NEXT: w4a4k.qgemm {{.*}}w4a4k.tail
// CHECK-NEXT: w4a4k.swiglu_quantize {{.*}}w4a4k.tail
// CHECK-NEXT: w4a4k.qgemm {{.*}} residual(%[[T]] : tensor<1x?x8xf32>) {{.*}}w4a4k.tail
// CHECK-NEXT: w4a4k.rms_norm {{.*}}w4a4k.tail
// CHECK-NEXT: w4a4k.gemm {{.*}}w4a4k.tail
// CHECK-NEXT: return
func.func @forward(%x: tensor<1x?x8xf32>) -> tensor<1x?x8xf32> {
  %c = w4a4.weight "c" = dense<1> : tensor<8x4xi8>
  %s = w4a4.weight "s" = dense<0.5> : tensor<8x1xf32>
  %head = w4a4.weight "head" = dense<0.5> : tensor<8x8xf32>
  %q = w4a4.qlinear %x, %c, %s {act_bits = 4 : i64, weight_bits = 4 : i64} : (tensor<1x?x8xf32>, tensor<8x4xi8>, tensor<8x1xf32>) -> tensor<1x?x8xf32>
  %o = w4a4.attention %q, %q, %q {num_heads = 2 : i64, num_kv_heads = 2 : i64, head_dim = 4 : i64} : (tensor<1x?x8xf32>, tensor<1x?x8xf32>, tensor<1x?x8xf32>) -> tensor<1x?x8xf32>
  %h = w4a4.add %x, %o : tensor<1x?x8xf32>
  %n = w4a4.rms_norm %h {epsilon = 1.0e-5 : f64} : tensor<1x?x8xf32>
  %g = w4a4.qlinear %n, %c, %s {act_bits = 4 : i64, weight_bits = 4 : i64} : (tensor<1x?x8xf32>, tensor<8x4xi8>, tensor<8x1xf32>) -> tensor<1x?x8xf32>
  %u = w4a4.qlinear %n, %c, %s {act_bits = 4 : i64, weight_bits = 4 : i64} : (tensor<1x?x8xf32>, tensor<8x4xi8>, tensor<8x1xf32>) -> tensor<1x?x8xf32>
  %sw = w4a4.swiglu %g, %u : tensor<1x?x8xf32>
  %d = w4a4.qlinear %sw, %c, %s {act_bits = 4 : i64, weight_bits = 4 : i64} : (tensor<1x?x8xf32>, tensor<8x4xi8>, tensor<8x1xf32>) -> tensor<1x?x8xf32>
  %h2 = w4a4.add %h, %d : tensor<1x?x8xf32>
  %n2 = w4a4.rms_norm %h2 {epsilon = 1.0e-5 : f64} : tensor<1x?x8xf32>
  %logits = w4a4.linear %n2, %head : (tensor<1x?x8xf32>, tensor<8x8xf32>) -> tensor<1x?x8xf32>
  return %logits : tensor<1x?x8xf32>
}

// -----

// The tail starts from one value: the add before the LM head reads two
// (the norm and what the registers made of it), so the tail is the head
// alone, from the add.
// CHECK-LABEL: func.func @forward
// CHECK: %[[B:.+]] = w4a4k.add
// CHECK-NEXT: %[[T:.+]] = w4a4k.tail_rows %[[B]]
// CHECK-NEXT: w4a4k.gemm %[[T]], {{.*}}w4a4k.tail
func.func @forward(%x: tensor<1x?x8xf32>) -> tensor<1x?x8xf32> {
  %head = w4a4.weight "head" = dense<0.5> : tensor<8x8xf32>
  %regs = w4a4.weight "regs" = dense<0.5> : tensor<2x8xf32>
  %n = w4a4.rms_norm %x {epsilon = 1.0e-5 : f64} : tensor<1x?x8xf32>
  %a = w4a4.registers add %n, %regs : (tensor<1x?x8xf32>, tensor<2x8xf32>) -> tensor<1x?x8xf32>
  %b = w4a4.add %a, %n : tensor<1x?x8xf32>
  %logits = w4a4.linear %b, %head : (tensor<1x?x8xf32>, tensor<8x8xf32>) -> tensor<1x?x8xf32>
  return %logits : tensor<1x?x8xf32>
}

// -----

// Nothing row-local at the end (the registers strip what is returned): no
// tail.
// CHECK-LABEL: func.func @forward
// CHECK-NOT: w4a4k.tail
// CHECK: return
func.func @forward(%x: tensor<1x?x8xf32>) -> tensor<1x?x8xf32> {
  %regs = w4a4.weight "regs" = dense<0.5> : tensor<2x8xf32>
  %p = w4a4.registers prepend %x, %regs : (tensor<1x?x8xf32>, tensor<2x8xf32>) -> tensor<1x?x8xf32>
  %n = w4a4.rms_norm %p {epsilon = 1.0e-5 : f64} : tensor<1x?x8xf32>
  %s = w4a4.registers strip %n, %regs : (tensor<1x?x8xf32>, tensor<2x8xf32>) -> tensor<1x?x8xf32>
  return %s : tensor<1x?x8xf32>
}
