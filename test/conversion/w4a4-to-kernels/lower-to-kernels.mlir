// RUN: w4a4-opt %s --split-input-file --w4a4-lower-to-kernels | FileCheck %s
// RUN: w4a4-opt %s --split-input-file --w4a4-lower-to-kernels --w4a4k-plan-buffers | FileCheck %s --check-prefix=PLAN

// q, k and v read one normed input at 4 bits: one quantize, three integer
// GEMMs in the CPU's weight layout; a 4-bit read at another clip ratio has
// its own quantize.
// CHECK-LABEL: func.func @forward
// CHECK: %[[N:.+]] = w4a4k.rms_norm
// CHECK-NEXT: %[[XQ:.+]] = w4a4k.quantize %[[N]] {clip_ratio = 1.000000e+00 : f64} : tensor<1x?x8xf32> -> <4 x 8>
// CHECK-NEXT: %[[XC:.+]] = w4a4k.quantize %[[N]] {clip_ratio = 9.000000e-01 : f64} : tensor<1x?x8xf32> -> <4 x 8>
// CHECK-COUNT-3: w4a4k.qgemm %[[XQ]], %{{.+}}, %{{.+}} {group_size = 0 : i64, layout = "cpu_vnni_panels", out_features = 8 : i64, weight_bits = 4 : i64}
// CHECK: w4a4k.qgemm %[[XC]]
// CHECK-NOT: w4a4.qlinear
// CHECK: w4a4k.add
// CHECK: return
// A slot per live value: the norm's slot is free once it is quantized, so q
// reuses it; an op's result never shares with its operands (a + b needs a
// fifth slot while q, k, v and the clipped read live).
// PLAN-LABEL: func.func @forward
// PLAN-SAME: w4a4k.arena_width = 40 : i64, w4a4k.max_seq_extra = 0 : i64, w4a4k.qrows_slots = 2 : i64
// PLAN: w4a4k.rms_norm {{.*}}w4a4k.slot = array<i64: 0, 8>
// PLAN: w4a4k.quantize {{.*}}w4a4k.qslot = 0
// PLAN: w4a4k.quantize {{.*}}w4a4k.qslot = 1
// PLAN: w4a4k.qgemm {{.*}}w4a4k.slot = array<i64: 0, 8>
// PLAN: w4a4k.qgemm {{.*}}w4a4k.slot = array<i64: 8, 8>
// PLAN: w4a4k.qgemm {{.*}}w4a4k.slot = array<i64: 16, 8>
// PLAN: w4a4k.qgemm {{.*}}w4a4k.slot = array<i64: 24, 8>
// PLAN: w4a4k.add {{.*}}w4a4k.slot = array<i64: 32, 8>
// PLAN: w4a4k.add {{.*}}w4a4k.slot = array<i64: 0, 8>
// PLAN: w4a4k.add {{.*}}w4a4k.slot = "result"
func.func @forward(%x: tensor<1x?x8xf32>) -> tensor<1x?x8xf32> {
  %c = w4a4.weight "c" = dense<1> : tensor<8x4xi8>
  %s = w4a4.weight "s" = dense<0.5> : tensor<8x1xf32>
  %n = w4a4.rms_norm %x {epsilon = 1.0e-5 : f64} : tensor<1x?x8xf32>
  %q = w4a4.qlinear %n, %c, %s {act_bits = 4 : i64, weight_bits = 4 : i64} : (tensor<1x?x8xf32>, tensor<8x4xi8>, tensor<8x1xf32>) -> tensor<1x?x8xf32>
  %k = w4a4.qlinear %n, %c, %s {act_bits = 4 : i64, weight_bits = 4 : i64} : (tensor<1x?x8xf32>, tensor<8x4xi8>, tensor<8x1xf32>) -> tensor<1x?x8xf32>
  %v = w4a4.qlinear %n, %c, %s {act_bits = 4 : i64, weight_bits = 4 : i64} : (tensor<1x?x8xf32>, tensor<8x4xi8>, tensor<8x1xf32>) -> tensor<1x?x8xf32>
  %w = w4a4.qlinear %n, %c, %s {act_bits = 4 : i64, act_clip_ratio = 0.9 : f64, weight_bits = 4 : i64} : (tensor<1x?x8xf32>, tensor<8x4xi8>, tensor<8x1xf32>) -> tensor<1x?x8xf32>
  %a = w4a4.add %q, %k : tensor<1x?x8xf32>
  %b = w4a4.add %v, %w : tensor<1x?x8xf32>
  %r = w4a4.add %a, %b : tensor<1x?x8xf32>
  return %r : tensor<1x?x8xf32>
}

// -----

// A low-rank correction is two fp32 GEMMs and an add; a seeded Hadamard's
// signs become a weight.
// CHECK-LABEL: func.func @forward
// CHECK: %[[SIGNS:.+]] = w4a4.weight "hadamard.0.signs" = dense<{{.*}}> : tensor<8xf32>
// CHECK: %[[H:.+]] = w4a4k.hadamard %{{.+}} signs(%[[SIGNS]] : tensor<8xf32>) {inverse = false, size = 8 : i64, stride = 1 : i64}
// CHECK: %[[XQ:.+]] = w4a4k.quantize %[[H]]
// CHECK: %[[Y:.+]] = w4a4k.qgemm %[[XQ]]
// CHECK: %[[T:.+]] = w4a4k.gemm %[[H]], %{{.+}} : tensor<1x?x8xf32>, tensor<2x8xf32> -> tensor<1x?x2xf32>
// CHECK: %[[LR:.+]] = w4a4k.gemm %[[T]], %{{.+}} : tensor<1x?x2xf32>, tensor<8x2xf32> -> tensor<1x?x8xf32>
// CHECK: w4a4k.add %[[Y]], %[[LR]]
func.func @forward(%x: tensor<1x?x8xf32>) -> tensor<1x?x8xf32> {
  %c = w4a4.weight "c" = dense<1> : tensor<8x4xi8>
  %s = w4a4.weight "s" = dense<0.5> : tensor<8x1xf32>
  %l = w4a4.weight "l" = dense<0.25> : tensor<8x2xf32>
  %rr = w4a4.weight "r" = dense<0.125> : tensor<2x8xf32>
  %h = w4a4.hadamard walsh(8) %x {seed = 7 : i64} : tensor<1x?x8xf32>
  %y = w4a4.qlinear %h, %c, %s low_rank(%l, %rr) {act_bits = 4 : i64, weight_bits = 4 : i64} : (tensor<1x?x8xf32>, tensor<8x4xi8>, tensor<8x1xf32>, tensor<8x2xf32>, tensor<2x8xf32>) -> tensor<1x?x8xf32>
  return %y : tensor<1x?x8xf32>
}

// -----

// Registers shift the rows of what follows them: the arena is sized for
// seq + 2 rows per sequence.
// PLAN: func.func @forward({{.*}}w4a4k.arena_width = 16 : i64, w4a4k.max_seq_extra = 2 : i64
// PLAN: w4a4k.registers {{.*}}w4a4k.seq_extra = 2 : i64
// PLAN: w4a4k.rms_norm {{.*}}w4a4k.seq_extra = 2 : i64
// PLAN: w4a4k.registers {{.*}}w4a4k.slot = "result"
func.func @forward(%x: tensor<1x?x8xf32>) -> tensor<1x?x8xf32> {
  %regs = w4a4.weight "regs" = dense<0.5> : tensor<2x8xf32>
  %p = w4a4.registers prepend %x, %regs : (tensor<1x?x8xf32>, tensor<2x8xf32>) -> tensor<1x?x8xf32>
  %n = w4a4.rms_norm %p {epsilon = 1.0e-5 : f64} : tensor<1x?x8xf32>
  %s = w4a4.registers strip %n, %regs : (tensor<1x?x8xf32>, tensor<2x8xf32>) -> tensor<1x?x8xf32>
  return %s : tensor<1x?x8xf32>
}
