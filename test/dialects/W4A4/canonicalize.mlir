// Folds and canonicalization patterns of the w4a4 ops (all exact in floating
// point), through the upstream canonicalizer.
// RUN: w4a4-opt %s --split-input-file --canonicalize | FileCheck %s

// CHECK-LABEL: func.func @hadamard_inverse_pair
// CHECK-SAME: (%[[X:.+]]: tensor<?x?x64xf32>)
// CHECK-NOT: w4a4.hadamard
// CHECK: return %[[X]], %[[X]], %[[X]]
func.func @hadamard_inverse_pair(%x: tensor<?x?x64xf32>) -> (tensor<?x?x64xf32>, tensor<?x?x64xf32>, tensor<?x?x64xf32>) {
  %a = w4a4.hadamard walsh(64) %x {seed = 3 : i64} : tensor<?x?x64xf32>
  %b = w4a4.hadamard walsh(64) %a inverse {seed = 3 : i64} : tensor<?x?x64xf32>
  %c = w4a4.hadamard random_orthogonal(64) %x inverse {seed = 9 : i64} : tensor<?x?x64xf32>
  %d = w4a4.hadamard random_orthogonal(64) %c {seed = 9 : i64} : tensor<?x?x64xf32>
  %e = w4a4.hadamard walsh(64) %x : tensor<?x?x64xf32>
  %f = w4a4.hadamard walsh(64) %e : tensor<?x?x64xf32>
  return %b, %d, %f : tensor<?x?x64xf32>, tensor<?x?x64xf32>, tensor<?x?x64xf32>
}

// -----

// CHECK-LABEL: func.func @kronecker_inverse_pair
// CHECK-SAME: (%[[X:.+]]: tensor<?x192xf32>)
// CHECK-NEXT: return %[[X]]
func.func @kronecker_inverse_pair(%x: tensor<?x192xf32>) -> tensor<?x192xf32> {
  %a = w4a4.hadamard kronecker(192) %x inverse : tensor<?x192xf32>
  %b = w4a4.hadamard kronecker(192) %a : tensor<?x192xf32>
  return %b : tensor<?x192xf32>
}

// -----

// Pairs that are not inverses stay: signs make Q non-symmetric, Paley
// matrices are not symmetric, and different seeds or sizes differ.
// CHECK-LABEL: func.func @hadamard_not_inverse
// CHECK-COUNT-8: w4a4.hadamard
// CHECK-NOT: w4a4.hadamard
func.func @hadamard_not_inverse(%x: tensor<?x192xf32>, %y: tensor<?x64xf32>) -> (tensor<?x64xf32>, tensor<?x192xf32>, tensor<?x64xf32>, tensor<?x64xf32>) {
  %a = w4a4.hadamard walsh(64) %y {seed = 3 : i64} : tensor<?x64xf32>
  %b = w4a4.hadamard walsh(64) %a {seed = 3 : i64} : tensor<?x64xf32>
  %c = w4a4.hadamard kronecker(192) %x : tensor<?x192xf32>
  %d = w4a4.hadamard kronecker(192) %c : tensor<?x192xf32>
  %e = w4a4.hadamard walsh(64) %y {seed = 3 : i64} : tensor<?x64xf32>
  %f = w4a4.hadamard walsh(64) %e inverse {seed = 4 : i64} : tensor<?x64xf32>
  %g = w4a4.hadamard walsh(32) %y : tensor<?x64xf32>
  %h = w4a4.hadamard walsh(64) %g inverse : tensor<?x64xf32>
  return %b, %d, %f, %h : tensor<?x64xf32>, tensor<?x192xf32>, tensor<?x64xf32>, tensor<?x64xf32>
}

// -----

// CHECK-LABEL: func.func @unit_gain
// CHECK-NOT: w4a4.weight
// CHECK: %[[A:.+]] = w4a4.rms_norm %{{.+}} : tensor<?x4xf32>
// CHECK: %[[B:.+]] = w4a4.rms_norm %{{.+}} {epsilon = 2.500000e-01 : f64} : tensor<?x4xf32>
// CHECK: return %[[A]], %[[B]]
func.func @unit_gain(%x: tensor<?x4xf32>) -> (tensor<?x4xf32>, tensor<?x4xf32>) {
  %ones = w4a4.weight "norm.weight" = dense<1.0> : tensor<4xf32>
  %a = w4a4.rms_norm %x gain(%ones : tensor<4xf32>) : tensor<?x4xf32>
  %blob = w4a4.weight "norm2.weight" = dense_resource<ones_blob> : tensor<4xf32>
  %b = w4a4.rms_norm %x gain(%blob : tensor<4xf32>) {epsilon = 0.25 : f64} : tensor<?x4xf32>
  return %a, %b : tensor<?x4xf32>, tensor<?x4xf32>
}

{-#
  dialect_resources: {
    builtin: {
      ones_blob: "0x040000000000803F0000803F0000803F0000803F"
    }
  }
#-}

// -----

// CHECK-LABEL: func.func @non_unit_gain
// CHECK-COUNT-3: w4a4.rms_norm %{{.+}} gain(
func.func @non_unit_gain(%x: tensor<?x4xf32>) -> (tensor<?x4xf32>, tensor<?x4xf32>, tensor<?x4xf32>) {
  %two = w4a4.weight "a" = dense<2.0> : tensor<4xf32>
  %a = w4a4.rms_norm %x gain(%two : tensor<4xf32>) : tensor<?x4xf32>
  %mixed = w4a4.weight "b" = dense<[1.0, 1.0, 1.0, 0.5]> : tensor<4xf32>
  %b = w4a4.rms_norm %x gain(%mixed : tensor<4xf32>) : tensor<?x4xf32>
  %elided = w4a4.weight "c" = dense_resource<__elided__> : tensor<4xf32>
  %c = w4a4.rms_norm %x gain(%elided : tensor<4xf32>) : tensor<?x4xf32>
  return %a, %b, %c : tensor<?x4xf32>, tensor<?x4xf32>, tensor<?x4xf32>
}

// -----

// A +0.0 bias is dropped (the accumulator starts at +0.0 anyway); -0.0 is
// not the same bits and stays.
// CHECK-LABEL: func.func @zero_bias
// CHECK: w4a4.linear %{{.+}}, %{{.+}} : (tensor<?x4xf32>, tensor<2x4xf32>) -> tensor<?x2xf32>
// CHECK: w4a4.linear %{{.+}}, %{{.+}}, %{{.+}} : (tensor<?x4xf32>, tensor<2x4xf32>, tensor<2xf32>) -> tensor<?x2xf32>
func.func @zero_bias(%x: tensor<?x4xf32>, %w: tensor<2x4xf32>) -> (tensor<?x2xf32>, tensor<?x2xf32>) {
  %zero = w4a4.weight "b0" = dense<0.0> : tensor<2xf32>
  %a = w4a4.linear %x, %w, %zero : (tensor<?x4xf32>, tensor<2x4xf32>, tensor<2xf32>) -> tensor<?x2xf32>
  %negzero = w4a4.weight "b1" = dense<-0.0> : tensor<2xf32>
  %b = w4a4.linear %x, %w, %negzero : (tensor<?x4xf32>, tensor<2x4xf32>, tensor<2xf32>) -> tensor<?x2xf32>
  return %a, %b : tensor<?x2xf32>, tensor<?x2xf32>
}

// -----

// x + (-0.0) == x bit for bit; x + (+0.0) turns -0.0 into +0.0 and stays.
// CHECK-LABEL: func.func @add_zero
// CHECK-SAME: (%[[X:.+]]: tensor<2x4xf32>)
// CHECK: %[[P:.+]] = w4a4.add %[[X]], %{{.+}} : tensor<2x4xf32>
// CHECK: return %[[X]], %[[X]], %[[P]]
func.func @add_zero(%x: tensor<2x4xf32>) -> (tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>) {
  %nz = arith.constant dense<-0.0> : tensor<2x4xf32>
  %a = w4a4.add %x, %nz : tensor<2x4xf32>
  %b = w4a4.add %nz, %x : tensor<2x4xf32>
  %pz = arith.constant dense<0.0> : tensor<2x4xf32>
  %c = w4a4.add %x, %pz : tensor<2x4xf32>
  return %a, %b, %c : tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>
}

// -----

// CHECK-LABEL: func.func @no_registers
// CHECK-SAME: (%[[X:.+]]: tensor<1x?x8xf32>, %{{.+}}: tensor<0x8xf32>, %{{.+}}: tensor<2x8xf32>)
// CHECK: %[[R:.+]] = w4a4.registers prepend %[[X]]
// CHECK: return %[[X]], %[[X]], %[[R]]
func.func @no_registers(%x: tensor<1x?x8xf32>, %r0: tensor<0x8xf32>, %r2: tensor<2x8xf32>) -> (tensor<1x?x8xf32>, tensor<1x?x8xf32>, tensor<1x?x8xf32>) {
  %a = w4a4.registers prepend %x, %r0 : (tensor<1x?x8xf32>, tensor<0x8xf32>) -> tensor<1x?x8xf32>
  %b = w4a4.registers add %x, %r0 : (tensor<1x?x8xf32>, tensor<0x8xf32>) -> tensor<1x?x8xf32>
  %c = w4a4.registers prepend %x, %r2 : (tensor<1x?x8xf32>, tensor<2x8xf32>) -> tensor<1x?x8xf32>
  return %a, %b, %c : tensor<1x?x8xf32>, tensor<1x?x8xf32>, tensor<1x?x8xf32>
}
