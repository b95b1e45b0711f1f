// RUN: not w4a4-opt %s --split-input-file --w4a4-lower-to-kernels 2>&1 | FileCheck %s
// RUN: not w4a4-opt %s --split-input-file --w4a4-lower-to-kernels=target=tpu 2>&1 | FileCheck %s --check-prefix=TARGET

// TARGET: error: unknown target 'tpu' for --w4a4-lower-to-kernels (available: cpu)

// CHECK: error: cannot lower to target 'cpu': weight-only quantization (act_bits = 0) has no CPU kernel yet; quantize the activations too
func.func @forward(%x: tensor<1x?x8xf32>) -> tensor<1x?x8xf32> {
  %c = w4a4.weight "c" = dense<1> : tensor<8x4xi8>
  %s = w4a4.weight "s" = dense<0.5> : tensor<8x1xf32>
  %q = w4a4.qlinear %x, %c, %s {act_bits = 0 : i64, weight_bits = 4 : i64} : (tensor<1x?x8xf32>, tensor<8x4xi8>, tensor<8x1xf32>) -> tensor<1x?x8xf32>
  return %q : tensor<1x?x8xf32>
}

// -----

// CHECK: error: cannot lower to target 'cpu': random_orthogonal rotations have no kernel yet
func.func @forward(%x: tensor<1x?x8xf32>) -> tensor<1x?x8xf32> {
  %h = w4a4.hadamard random_orthogonal(8) %x {seed = 1 : i64} : tensor<1x?x8xf32>
  return %h : tensor<1x?x8xf32>
}

// -----

// Registers prepended and never stripped: the returned value has more rows
// than the call's logits buffer.
// RUN: not w4a4-opt %s --split-input-file --w4a4-lower-to-kernels --w4a4k-plan-buffers 2>&1 | FileCheck %s --check-prefix=PLAN
// PLAN: error: --w4a4k-plan-buffers: the returned value has 2 rows per sequence more than the call (registers prepended and never stripped)
func.func @forward(%x: tensor<1x?x8xf32>) -> tensor<1x?x8xf32> {
  %regs = w4a4.weight "regs" = dense<0.5> : tensor<2x8xf32>
  %p = w4a4.registers prepend %x, %regs : (tensor<1x?x8xf32>, tensor<2x8xf32>) -> tensor<1x?x8xf32>
  %n = w4a4.rms_norm %p {epsilon = 1.0e-5 : f64} : tensor<1x?x8xf32>
  return %n : tensor<1x?x8xf32>
}
