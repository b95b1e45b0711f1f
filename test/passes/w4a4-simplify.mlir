// RUN: w4a4-opt %s --split-input-file --w4a4-simplify | FileCheck %s
// RUN: w4a4-opt %s --split-input-file --pass-pipeline='builtin.module(func.func(w4a4-simplify{max-iterations=4}))' | FileCheck %s
// RUN: not w4a4-opt %s --split-input-file --w4a4-simplify=max-iterations=1 2>&1 | FileCheck %s --check-prefix=NOCONV

// A rotated block whose rotations cancel and whose unit gain drops: the
// weights that become unused are erased too.
// CHECK-LABEL: func.func @rotated_block
// CHECK-SAME: (%[[X:.+]]: tensor<?x?x64xf32>, %[[W:.+]]: tensor<128x64xf32>)
// CHECK-NOT: w4a4.weight
// CHECK-NOT: w4a4.hadamard
// CHECK: %[[N:.+]] = w4a4.rms_norm %[[X]] : tensor<?x?x64xf32>
// CHECK: %[[Y:.+]] = w4a4.linear %[[N]], %[[W]] : (tensor<?x?x64xf32>, tensor<128x64xf32>) -> tensor<?x?x128xf32>
// CHECK: return %[[Y]]
// NOCONV: error: w4a4-simplify did not converge within max-iterations=1
func.func @rotated_block(%x: tensor<?x?x64xf32>, %w: tensor<128x64xf32>) -> tensor<?x?x128xf32> {
  %g = w4a4.weight "attn_norm.weight" = dense<1.0> : tensor<64xf32>
  %b = w4a4.weight "q_proj.bias" = dense<0.0> : tensor<128xf32>
  %r = w4a4.hadamard walsh(64) %x {seed = 7 : i64} : tensor<?x?x64xf32>
  %r2 = w4a4.hadamard walsh(32) %r {signs = array<i8: 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1>} : tensor<?x?x64xf32>
  %u2 = w4a4.hadamard walsh(32) %r2 inverse {signs = array<i8: 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1>} : tensor<?x?x64xf32>
  %u = w4a4.hadamard walsh(64) %u2 inverse {seed = 7 : i64} : tensor<?x?x64xf32>
  %n = w4a4.rms_norm %u gain(%g : tensor<64xf32>) : tensor<?x?x64xf32>
  %y = w4a4.linear %n, %w, %b : (tensor<?x?x64xf32>, tensor<128x64xf32>, tensor<128xf32>) -> tensor<?x?x128xf32>
  return %y : tensor<?x?x128xf32>
}

// -----

// Ops of other dialects and w4a4 ops with nothing to fold are left alone.
// CHECK-LABEL: func.func @nothing_to_do
// CHECK: w4a4.quantize
// CHECK: w4a4.swiglu
// CHECK: w4a4.add
func.func @nothing_to_do(%x: tensor<?x?x64xf32>) -> tensor<?x?x64xf32> {
  %q = w4a4.quantize %x {bits = 4 : i64} : tensor<?x?x64xf32>
  %s = w4a4.swiglu %q, %x : tensor<?x?x64xf32>
  %a = w4a4.add %s, %x : tensor<?x?x64xf32>
  return %a : tensor<?x?x64xf32>
}
