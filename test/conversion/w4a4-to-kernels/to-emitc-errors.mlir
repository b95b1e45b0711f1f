// RUN: not w4a4-opt %s --split-input-file --w4a4k-plan-buffers --w4a4k-to-emitc 2>&1 | FileCheck %s
// RUN: not w4a4-opt %s --split-input-file --w4a4k-to-emitc 2>&1 | FileCheck %s --check-prefix=UNPLANNED

// UNPLANNED: error: --w4a4k-to-emitc: needs a @forward planned by --w4a4k-plan-buffers

// A kernel operand that is no weight, no input and no kernel result.
// CHECK: error: --w4a4k-to-emitc: a kernel reads a value that is neither a w4a4.weight (as a parameter), the ids nor a kernel's result
func.func @forward(%ids: tensor<1x?xi64>) -> tensor<1x?x8xf32> {
  %t = w4a4.weight "t" = dense<1.0> : tensor<16x8xf32>
  %g = arith.constant dense<1.0> : tensor<8xf32>
  %e = w4a4k.embedding %t[%ids] : tensor<16x8xf32>, tensor<1x?xi64> -> tensor<1x?x8xf32>
  %n = w4a4k.rms_norm %e gain(%g : tensor<8xf32>) {epsilon = 1.0e-5 : f64} : tensor<1x?x8xf32> -> tensor<1x?x8xf32>
  return %n : tensor<1x?x8xf32>
}

// -----

// CHECK: error: --w4a4k-to-emitc: @forward must take token ids and return logits (an export with KV-cache inputs needs --w4a4-internalize-kv-cache first)
func.func @forward(%x: tensor<1x?x8xf32>) -> tensor<1x?x8xf32> {
  %n = w4a4k.rms_norm %x {epsilon = 1.0e-5 : f64} : tensor<1x?x8xf32> -> tensor<1x?x8xf32>
  return %n : tensor<1x?x8xf32>
}

// -----

// A weight read as a row activation (its size is fixed; the call's rows are
// not).
// CHECK: error: --w4a4k-to-emitc: a kernel reads a value that is neither a w4a4.weight (as a parameter), the ids nor a kernel's result
func.func @forward(%ids: tensor<1x?xi64>) -> tensor<1x?x8xf32> {
  %t = w4a4.weight "t" = dense<1.0> : tensor<16x8xf32>
  %c = w4a4.weight "c" = dense<1.0> : tensor<1x4x8xf32>
  %e = w4a4k.embedding %t[%ids] : tensor<16x8xf32>, tensor<1x?xi64> -> tensor<1x?x8xf32>
  %s = w4a4k.add %e, %c : (tensor<1x?x8xf32>, tensor<1x4x8xf32>) -> tensor<1x?x8xf32>
  return %s : tensor<1x?x8xf32>
}
