// RUN: w4a4-opt %s --split-input-file --w4a4-quantize-weights | FileCheck %s
// RUN: w4a4-opt %s --split-input-file --w4a4-quantize-weights="bits=8 group=2" | FileCheck %s --check-prefix=G2
// RUN: not w4a4-opt %s --split-input-file --w4a4-quantize-weights="bits=4 group=3" 2>&1 | FileCheck %s --check-prefix=BADGROUP
// RUN: not w4a4-opt %s --split-input-file --w4a4-quantize-weights="bits=0" 2>&1 | FileCheck %s --check-prefix=BADBITS
// RUN: not w4a4-opt %s --split-input-file --w4a4-quantize-weights="clip=1.5" 2>&1 | FileCheck %s --check-prefix=BADCLIP

// Worked by hand: row 0 has max 7, so s = 1 and codes 7, -7, 4 (3.5 rounds
// half to even), 0 (0.5 too); row 1 has max 4, s = fl(4/7) = 0.571428597
// (rounded up), so w/s = 1.75, 3.4999998, 5.25, 7 -> codes 2, 3, 5, 7. Two
// codes per byte, low nibble first: (7, -7) -> 0x97 = -105, (4, 0) -> 4,
// (2, 3) -> 0x32 = 50, (5, 7) -> 0x75 = 117.
// The w2 linear (input from swiglu) is a block site; lm_head (returned) is not.
// CHECK-LABEL: func.func @block
// CHECK-DAG: %[[C:.+]] = w4a4.weight "w2.codes" = dense<{{\[}}[-105, 4], [50, 117]]> : tensor<2x2xi8>
// CHECK-DAG: %[[S:.+]] = w4a4.weight "w2.scales" = dense<{{\[}}[1.000000e+00], [0.571428597]]> : tensor<2x1xf32>
// CHECK: %[[Y:.+]] = w4a4.qlinear %{{.+}}, %[[C]], %[[S]] {act_bits = 0 : i64, weight_bits = 4 : i64} : (tensor<?x4xf32>, tensor<2x2xi8>, tensor<2x1xf32>) -> tensor<?x2xf32>
// CHECK: w4a4.linear %[[Y]], %{{.+}} : (tensor<?x2xf32>, tensor<3x2xf32>) -> tensor<?x3xf32>
// 8 bits in groups of 2: scales max/127 per pair; 0.5 / (3.5/127) = 18.1 -> 18,
// 1 / (2/127) = 63.5 -> 64, 3 / (4/127) = 95.25 -> 95; one code per byte.
// G2: w4a4.weight "w2.codes" = dense<{{\[}}[127, -127, 127, 18], [64, 127, 95, 127]]> : tensor<2x4xi8>
// G2: w4a4.weight "w2.scales" = dense<{{\[}}[0.05511811, 0.027559055], [0.0157480314, 0.0314960629]]> : tensor<2x2xf32>
// G2: {act_bits = 0 : i64, group_size = 2 : i64, weight_bits = 8 : i64}
// BADGROUP: error: w4a4-quantize-weights: group 3 does not divide the input width 4 of 'w2'
// BADBITS: error: w4a4-quantize-weights: bits must be in [2, 8], got 0
// BADCLIP: error: w4a4-quantize-weights: need clip in (0, 1] and group >= 0, got clip 1.5
func.func @block(%a: tensor<?x4xf32>, %b: tensor<?x4xf32>) -> tensor<?x3xf32> {
  %s = w4a4.swiglu %a, %b : tensor<?x4xf32>
  %w = w4a4.weight "w2" = dense<[[7.0, -7.0, 3.5, 0.5], [1.0, 2.0, 3.0, 4.0]]> : tensor<2x4xf32>
  %y = w4a4.linear %s, %w : (tensor<?x4xf32>, tensor<2x4xf32>) -> tensor<?x2xf32>
  %h = w4a4.weight "output.weight" = dense<1.0> : tensor<3x2xf32>
  %l = w4a4.linear %y, %h : (tensor<?x2xf32>, tensor<3x2xf32>) -> tensor<?x3xf32>
  return %l : tensor<?x3xf32>
}
