// One failing input per verifier constraint (tags `<op>_cN` in
// dialects/W4A4/W4A4Ops.cpp); constraint-coverage.test checks that none is
// missing.
// RUN: w4a4-opt %s --split-input-file --verify-diagnostics

func.func @weight_c1() -> tensor<2xf32> {
  // expected-error @+1 {{(weight_c1) expects a non-empty name}}
  %w = w4a4.weight "" = dense<1.0> : tensor<2xf32>
  return %w : tensor<2xf32>
}

// -----

func.func @weight_type(%x: tensor<2xf32>) -> tensor<2xf32> {
  // expected-error @+1 {{failed to verify that all of {value, result} have same type}}
  %w = "w4a4.weight"() <{name = "w", value = dense<1.0> : tensor<3xf32>}> : () -> tensor<2xf32>
  return %w : tensor<2xf32>
}

// -----

func.func @embedding_ids_type(%t: tensor<16x8xf32>, %ids: tensor<?xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{operand #1 must be ranked tensor of signless integer values}}
  %e = w4a4.embedding %t[%ids] : (tensor<16x8xf32>, tensor<?xf32>) -> tensor<?x8xf32>
  return %e : tensor<?x8xf32>
}

// -----

func.func @embedding_c1(%t: tensor<16x8x2xf32>, %ids: tensor<?xi64>) -> tensor<?x8xf32> {
  // expected-error @+1 {{(embedding_c1) expects a rank-2 table [vocab, hidden], got rank 3}}
  %e = w4a4.embedding %t[%ids] : (tensor<16x8x2xf32>, tensor<?xi64>) -> tensor<?x8xf32>
  return %e : tensor<?x8xf32>
}

// -----

func.func @embedding_c2(%t: tensor<16x8xf32>, %ids: tensor<?x?xi64>) -> tensor<?x?x9xf32> {
  // expected-error @+1 {{(embedding_c2) expects the result shape to be the ids shape followed by the table's hidden size}}
  %e = w4a4.embedding %t[%ids] : (tensor<16x8xf32>, tensor<?x?xi64>) -> tensor<?x?x9xf32>
  return %e : tensor<?x?x9xf32>
}

// -----

func.func @embedding_c3(%t: tensor<16x8xf16>, %ids: tensor<?xi64>) -> tensor<?x8xf32> {
  // expected-error @+1 {{(embedding_c3) expects the result element type to match the table's, got 'f32' and 'f16'}}
  %e = w4a4.embedding %t[%ids] : (tensor<16x8xf16>, tensor<?xi64>) -> tensor<?x8xf32>
  return %e : tensor<?x8xf32>
}

// -----

func.func @rms_norm_c1(%x: tensor<f32>) -> tensor<f32> {
  // expected-error @+1 {{(rms_norm_c1) expects an input of rank >= 1}}
  %y = w4a4.rms_norm %x : tensor<f32>
  return %y : tensor<f32>
}

// -----

func.func @rms_norm_c2(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{(rms_norm_c2) expects a finite epsilon > 0, got 0}}
  %y = w4a4.rms_norm %x {epsilon = 0.0 : f64} : tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

func.func @rms_norm_c3(%x: tensor<?x8xf32>, %g: tensor<7xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{(rms_norm_c3) expects the gain to be a vector of the input's last dimension}}
  %y = w4a4.rms_norm %x gain(%g : tensor<7xf32>) : tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

func.func @rms_norm_c4(%x: tensor<?x8xf32>, %g: tensor<8xf16>) -> tensor<?x8xf32> {
  // expected-error @+1 {{(rms_norm_c4) expects all float operands and the result to share one element type, got 'f32' and 'f16'}}
  %y = w4a4.rms_norm %x gain(%g : tensor<8xf16>) : tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

func.func @linear_c1(%x: tensor<?x8xf32>, %w: tensor<4x8x1xf32>) -> tensor<?x4xf32> {
  // expected-error @+1 {{(linear_c1) expects a rank-2 weight [out, in]}}
  %y = w4a4.linear %x, %w : (tensor<?x8xf32>, tensor<4x8x1xf32>) -> tensor<?x4xf32>
  return %y : tensor<?x4xf32>
}

// -----

func.func @linear_c2(%x: tensor<?x8xf32>, %w: tensor<4x6xf32>) -> tensor<?x4xf32> {
  // expected-error @+1 {{(linear_c2) expects the input's last dimension to equal the weight's input dimension 6}}
  %y = w4a4.linear %x, %w : (tensor<?x8xf32>, tensor<4x6xf32>) -> tensor<?x4xf32>
  return %y : tensor<?x4xf32>
}

// -----

func.func @linear_c3(%x: tensor<?x8xf32>, %w: tensor<4x8xf32>, %b: tensor<5xf32>) -> tensor<?x4xf32> {
  // expected-error @+1 {{(linear_c3) expects a bias vector of the weight's output dimension 4}}
  %y = w4a4.linear %x, %w, %b : (tensor<?x8xf32>, tensor<4x8xf32>, tensor<5xf32>) -> tensor<?x4xf32>
  return %y : tensor<?x4xf32>
}

// -----

func.func @linear_c4(%x: tensor<?x8xf32>, %w: tensor<4x8xf32>) -> tensor<?x5xf32> {
  // expected-error @+1 {{(linear_c4) expects the result shape to be the input shape with the last dimension replaced by 4}}
  %y = w4a4.linear %x, %w : (tensor<?x8xf32>, tensor<4x8xf32>) -> tensor<?x5xf32>
  return %y : tensor<?x5xf32>
}

// -----

func.func @linear_c5(%x: tensor<?x8xf32>, %w: tensor<4x8xbf16>) -> tensor<?x4xf32> {
  // expected-error @+1 {{(linear_c5) expects all float operands and the result to share one element type}}
  %y = w4a4.linear %x, %w : (tensor<?x8xf32>, tensor<4x8xbf16>) -> tensor<?x4xf32>
  return %y : tensor<?x4xf32>
}

// -----

func.func @rope_c1(%x: tensor<64xf32>) -> tensor<64xf32> {
  // expected-error @+1 {{(rope_c1) expects an input [..., seq, heads * head_dim] of rank >= 2}}
  %y = w4a4.rope %x {head_dim = 16 : i64} : tensor<64xf32>
  return %y : tensor<64xf32>
}

// -----

func.func @rope_c2(%x: tensor<?x?x64xf32>) -> tensor<?x?x64xf32> {
  // expected-error @+1 {{(rope_c2) expects a positive, even head_dim, got 15}}
  %y = w4a4.rope %x {head_dim = 15 : i64} : tensor<?x?x64xf32>
  return %y : tensor<?x?x64xf32>
}

// -----

func.func @rope_c3(%x: tensor<?x?x64xf32>) -> tensor<?x?x64xf32> {
  // expected-error @+1 {{(rope_c3) expects the last dimension 64 to be a multiple of head_dim 24}}
  %y = w4a4.rope %x {head_dim = 24 : i64} : tensor<?x?x64xf32>
  return %y : tensor<?x?x64xf32>
}

// -----

func.func @rope_c4(%x: tensor<?x?x64xf32>) -> tensor<?x?x64xf32> {
  // expected-error @+1 {{(rope_c4) expects a finite theta > 0, got -1}}
  %y = w4a4.rope %x {head_dim = 16 : i64, theta = -1.0 : f64} : tensor<?x?x64xf32>
  return %y : tensor<?x?x64xf32>
}

// -----

func.func @rope_c5(%x: tensor<?x?x64xf32>) -> tensor<?x?x64xf32> {
  // expected-error @+1 {{(rope_c5) expects position_offset >= 0, got -2}}
  %y = w4a4.rope %x {head_dim = 16 : i64, position_offset = -2 : i64} : tensor<?x?x64xf32>
  return %y : tensor<?x?x64xf32>
}

// -----

func.func @attention_c1(%q: tensor<?x64xf32>, %k: tensor<?x?x64xf32>) -> tensor<?x64xf32> {
  // expected-error @+1 {{(attention_c1) expects query, key and value of rank 3}}
  %o = w4a4.attention %q, %k, %k {num_heads = 4 : i64, num_kv_heads = 4 : i64, head_dim = 16 : i64}
      : (tensor<?x64xf32>, tensor<?x?x64xf32>, tensor<?x?x64xf32>) -> tensor<?x64xf32>
  return %o : tensor<?x64xf32>
}

// -----

func.func @attention_c2(%q: tensor<?x?x48xf32>, %k: tensor<?x?x32xf32>) -> tensor<?x?x48xf32> {
  // expected-error @+1 {{(attention_c2) expects positive num_heads, num_kv_heads and head_dim with num_heads a multiple of num_kv_heads and num_heads * head_dim <= 2^30, got 3, 2, 16}}
  %o = w4a4.attention %q, %k, %k {num_heads = 3 : i64, num_kv_heads = 2 : i64, head_dim = 16 : i64}
      : (tensor<?x?x48xf32>, tensor<?x?x32xf32>, tensor<?x?x32xf32>) -> tensor<?x?x48xf32>
  return %o : tensor<?x?x48xf32>
}

// -----

func.func @attention_c3(%q: tensor<?x?x64xf32>, %k: tensor<?x?x64xf32>) -> tensor<?x?x64xf32> {
  // expected-error @+1 {{(attention_c3) expects query width num_heads * head_dim = 64 and key/value width num_kv_heads * head_dim = 32}}
  %o = w4a4.attention %q, %k, %k {num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 16 : i64}
      : (tensor<?x?x64xf32>, tensor<?x?x64xf32>, tensor<?x?x64xf32>) -> tensor<?x?x64xf32>
  return %o : tensor<?x?x64xf32>
}

// -----

func.func @attention_c4(%q: tensor<1x5x64xf32>, %k: tensor<1x6x64xf32>) -> tensor<1x5x64xf32> {
  // expected-error @+1 {{(attention_c4) expects query, key and value to agree on the batch and sequence dimensions}}
  %o = w4a4.attention %q, %k, %k {num_heads = 4 : i64, num_kv_heads = 4 : i64, head_dim = 16 : i64}
      : (tensor<1x5x64xf32>, tensor<1x6x64xf32>, tensor<1x6x64xf32>) -> tensor<1x5x64xf32>
  return %o : tensor<1x5x64xf32>
}

// -----

func.func @attention_c5(%q: tensor<?x?x64xf32>, %kp: tensor<4x64xf32>) -> tensor<?x?x64xf32> {
  // expected-error @+1 {{(attention_c5) expects key_prefix and value_prefix to be given together}}
  %o = "w4a4.attention"(%q, %q, %q, %kp) <{num_heads = 4 : i64, num_kv_heads = 4 : i64, head_dim = 16 : i64,
                                           operandSegmentSizes = array<i32: 1, 1, 1, 1, 0, 0, 0>}>
      : (tensor<?x?x64xf32>, tensor<?x?x64xf32>, tensor<?x?x64xf32>, tensor<4x64xf32>) -> tensor<?x?x64xf32>
  return %o : tensor<?x?x64xf32>
}

// -----

func.func @attention_c6(%q: tensor<?x?x64xf32>, %kp: tensor<4x64xf32>, %vp: tensor<3x64xf32>) -> tensor<?x?x64xf32> {
  // expected-error @+1 {{(attention_c6) expects key and value prefixes of shape [prefix, num_kv_heads * head_dim] with one prefix length}}
  %o = w4a4.attention %q, %q, %q prefix(%kp, %vp) {num_heads = 4 : i64, num_kv_heads = 4 : i64, head_dim = 16 : i64}
      : (tensor<?x?x64xf32>, tensor<?x?x64xf32>, tensor<?x?x64xf32>, tensor<4x64xf32>, tensor<3x64xf32>) -> tensor<?x?x64xf32>
  return %o : tensor<?x?x64xf32>
}

// -----

func.func @attention_c7(%q: tensor<1x?x64xf32>) -> tensor<?x?x64xf32> {
  // expected-error @+1 {{(attention_c7) expects the result type to equal the query type 'tensor<1x?x64xf32>', got 'tensor<?x?x64xf32>'}}
  %o = w4a4.attention %q, %q, %q {num_heads = 4 : i64, num_kv_heads = 4 : i64, head_dim = 16 : i64}
      : (tensor<1x?x64xf32>, tensor<1x?x64xf32>, tensor<1x?x64xf32>) -> tensor<?x?x64xf32>
  return %o : tensor<?x?x64xf32>
}

// -----

func.func @attention_c8(%q: tensor<?x?x64xf32>) -> tensor<?x?x64xf32> {
  // expected-error @+1 {{(attention_c8) expects a finite scale > 0, got 0}}
  %o = w4a4.attention %q, %q, %q {num_heads = 4 : i64, num_kv_heads = 4 : i64, head_dim = 16 : i64, scale = 0.0 : f64}
      : (tensor<?x?x64xf32>, tensor<?x?x64xf32>, tensor<?x?x64xf32>) -> tensor<?x?x64xf32>
  return %o : tensor<?x?x64xf32>
}

// -----

func.func @attention_c9(%q: tensor<?x?x64xf32>, %k: tensor<?x?x64xf16>) -> tensor<?x?x64xf32> {
  // expected-error @+1 {{(attention_c9) expects all float operands and the result to share one element type}}
  %o = w4a4.attention %q, %k, %k {num_heads = 4 : i64, num_kv_heads = 4 : i64, head_dim = 16 : i64}
      : (tensor<?x?x64xf32>, tensor<?x?x64xf16>, tensor<?x?x64xf16>) -> tensor<?x?x64xf32>
  return %o : tensor<?x?x64xf32>
}

// -----

func.func @swiglu_types(%a: tensor<?x8xf32>, %b: tensor<?x8xf16>) -> tensor<?x8xf32> {
  // expected-error @+1 {{requires the same type for all operands and results}}
  %s = "w4a4.swiglu"(%a, %b) : (tensor<?x8xf32>, tensor<?x8xf16>) -> tensor<?x8xf32>
  return %s : tensor<?x8xf32>
}

// -----

func.func @add_types(%a: tensor<?x8xf32>, %b: tensor<?x4xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{requires the same type for all operands and results}}
  %s = "w4a4.add"(%a, %b) : (tensor<?x8xf32>, tensor<?x4xf32>) -> tensor<?x8xf32>
  return %s : tensor<?x8xf32>
}

// -----

func.func @registers_c1(%x: tensor<?x64xf32>, %r: tensor<4x64xf32>) -> tensor<?x64xf32> {
  // expected-error @+1 {{(registers_c1) expects an input [batch, seq, hidden] and registers [k, hidden]}}
  %y = w4a4.registers add %x, %r : (tensor<?x64xf32>, tensor<4x64xf32>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// -----

func.func @registers_c2(%x: tensor<1x?x64xf32>, %r: tensor<4x32xf32>) -> tensor<1x?x64xf32> {
  // expected-error @+1 {{(registers_c2) expects the registers' width 32 to equal the hidden size 64}}
  %y = w4a4.registers add %x, %r : (tensor<1x?x64xf32>, tensor<4x32xf32>) -> tensor<1x?x64xf32>
  return %y : tensor<1x?x64xf32>
}

// -----

func.func @registers_c3_prepend(%x: tensor<1x10x64xf32>, %r: tensor<4x64xf32>) -> tensor<1x10x64xf32> {
  // expected-error @+1 {{(registers_c3) expects prepend to give [batch, seq + k, hidden]}}
  %y = w4a4.registers prepend %x, %r : (tensor<1x10x64xf32>, tensor<4x64xf32>) -> tensor<1x10x64xf32>
  return %y : tensor<1x10x64xf32>
}

// -----

func.func @registers_c3_add(%x: tensor<1x10x64xf32>, %r: tensor<4x64xf32>) -> tensor<1x14x64xf32> {
  // expected-error @+1 {{(registers_c3) expects add to keep the input type}}
  %y = w4a4.registers add %x, %r : (tensor<1x10x64xf32>, tensor<4x64xf32>) -> tensor<1x14x64xf32>
  return %y : tensor<1x14x64xf32>
}

// -----

func.func @registers_c3_short(%x: tensor<1x2x64xf32>, %r: tensor<4x64xf32>) -> tensor<1x2x64xf32> {
  // expected-error @+1 {{(registers_c3) expects at least k = 4 positions, got 2}}
  %y = w4a4.registers add %x, %r : (tensor<1x2x64xf32>, tensor<4x64xf32>) -> tensor<1x2x64xf32>
  return %y : tensor<1x2x64xf32>
}

// -----

func.func @registers_c3_strip(%x: tensor<1x10x64xf32>, %r: tensor<4x64xf32>) -> tensor<1x10x64xf32> {
  // expected-error @+1 {{(registers_c3) expects strip to give [batch, seq - k, hidden]}}
  %y = w4a4.registers strip %x, %r : (tensor<1x10x64xf32>, tensor<4x64xf32>) -> tensor<1x10x64xf32>
  return %y : tensor<1x10x64xf32>
}

// -----

func.func @registers_c4(%x: tensor<1x?x64xf32>, %r: tensor<4x64xbf16>) -> tensor<1x?x64xf32> {
  // expected-error @+1 {{(registers_c4) expects all float operands and the result to share one element type}}
  %y = w4a4.registers add %x, %r : (tensor<1x?x64xf32>, tensor<4x64xbf16>) -> tensor<1x?x64xf32>
  return %y : tensor<1x?x64xf32>
}

// -----

func.func @hadamard_c1(%x: tensor<?x?x96xf32>) -> tensor<?x?x96xf32> {
  // expected-error @+1 {{(hadamard_c1) expects a positive size (times the stride) dividing the static last dimension, got size 64 and stride 1}}
  %y = w4a4.hadamard walsh(64) %x : tensor<?x?x96xf32>
  return %y : tensor<?x?x96xf32>
}

// -----

func.func @hadamard_c1_dynamic(%x: tensor<?x?xf32>) -> tensor<?x?xf32> {
  // expected-error @+1 {{(hadamard_c1) expects a positive size (times the stride) dividing the static last dimension}}
  %y = w4a4.hadamard walsh(64) %x : tensor<?x?xf32>
  return %y : tensor<?x?xf32>
}

// -----

func.func @hadamard_c1_stride(%x: tensor<?x96xf32>) -> tensor<?x96xf32> {
  // expected-error @+1 {{(hadamard_c1) expects a positive size (times the stride) dividing the static last dimension, got size 4 and stride 32}}
  %y = w4a4.hadamard walsh(4) %x {stride = 32 : i64} : tensor<?x96xf32>
  return %y : tensor<?x96xf32>
}

// -----

func.func @hadamard_c2_walsh(%x: tensor<?x96xf32>) -> tensor<?x96xf32> {
  // expected-error @+1 {{(hadamard_c2) expects a power-of-two size for kind walsh, got 96}}
  %y = w4a4.hadamard walsh(96) %x : tensor<?x96xf32>
  return %y : tensor<?x96xf32>
}

// -----

func.func @hadamard_c2_kronecker(%x: tensor<?x92xf32>) -> tensor<?x92xf32> {
  // expected-error @+1 {{(hadamard_c2) has no Hadamard matrix of order 92}}
  %y = w4a4.hadamard kronecker(92) %x : tensor<?x92xf32>
  return %y : tensor<?x92xf32>
}

// -----

func.func @hadamard_c3(%x: tensor<?x2xf32>) -> tensor<?x2xf32> {
  // expected-error @+1 {{(hadamard_c3) expects at most one of signs and seed}}
  %y = w4a4.hadamard walsh(2) %x {signs = array<i8: 1, -1>, seed = 1 : i64} : tensor<?x2xf32>
  return %y : tensor<?x2xf32>
}

// -----

func.func @hadamard_c4_length(%x: tensor<?x4xf32>) -> tensor<?x4xf32> {
  // expected-error @+1 {{(hadamard_c4) expects one sign per feature (4), got 2}}
  %y = w4a4.hadamard walsh(4) %x {signs = array<i8: 1, -1>} : tensor<?x4xf32>
  return %y : tensor<?x4xf32>
}

// -----

func.func @hadamard_c4_values(%x: tensor<?x2xf32>) -> tensor<?x2xf32> {
  // expected-error @+1 {{(hadamard_c4) expects signs of +1 or -1}}
  %y = w4a4.hadamard walsh(2) %x {signs = array<i8: 1, 0>} : tensor<?x2xf32>
  return %y : tensor<?x2xf32>
}

// -----

func.func @hadamard_c5(%x: tensor<?x96xf32>) -> tensor<?x96xf32> {
  // expected-error @+1 {{(hadamard_c5) expects a seed for kind random_orthogonal}}
  %y = w4a4.hadamard random_orthogonal(96) %x : tensor<?x96xf32>
  return %y : tensor<?x96xf32>
}

// -----

func.func @quantize_c1(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{(quantize_c1) expects bits in [2, 8], got 0}}
  %y = w4a4.quantize %x {bits = 0 : i64} : tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

func.func @quantize_c2(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{(quantize_c2) expects a clip ratio in (0, 1], got 1.5}}
  %y = w4a4.quantize %x {bits = 4 : i64, clip_ratio = 1.5 : f64} : tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

func.func @quantize_c3(%x: tensor<f32>) -> tensor<f32> {
  // expected-error @+1 {{(quantize_c3) expects an input of rank >= 1}}
  %y = w4a4.quantize %x {bits = 4 : i64} : tensor<f32>
  return %y : tensor<f32>
}

// -----

func.func @quantize_c4(%x: tensor<?x24xf32>) -> tensor<?x24xf32> {
  // expected-error @+1 {{(quantize_c4) expects a group_size > 0 dividing the last dimension 24, got 16}}
  %y = w4a4.quantize %x {bits = 4 : i64, group_size = 16 : i64} : tensor<?x24xf32>
  return %y : tensor<?x24xf32>
}

// -----

func.func @qlinear_c1(%x: tensor<?x64xf32>, %c: tensor<8x64xi8>, %s: tensor<8x1xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{(qlinear_c1) expects weight_bits in [2, 8], got 9}}
  %y = w4a4.qlinear %x, %c, %s {weight_bits = 9 : i64, act_bits = 4 : i64}
      : (tensor<?x64xf32>, tensor<8x64xi8>, tensor<8x1xf32>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

func.func @qlinear_c2(%x: tensor<?x64xf32>, %c: tensor<8x32xi8>, %s: tensor<8x1xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{(qlinear_c2) expects act_bits 0 (floating point) or in [2, 8], got 1}}
  %y = w4a4.qlinear %x, %c, %s {weight_bits = 4 : i64, act_bits = 1 : i64}
      : (tensor<?x64xf32>, tensor<8x32xi8>, tensor<8x1xf32>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

func.func @qlinear_c3(%x: tensor<?x64xf32>, %c: tensor<8x32xi8>, %s: tensor<8x1xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{(qlinear_c3) expects a clip ratio in (0, 1], got 0}}
  %y = w4a4.qlinear %x, %c, %s {weight_bits = 4 : i64, act_bits = 4 : i64, act_clip_ratio = 0.0 : f64}
      : (tensor<?x64xf32>, tensor<8x32xi8>, tensor<8x1xf32>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

func.func @qlinear_c4(%x: tensor<?x?xf32>, %c: tensor<8x32xi8>, %s: tensor<8x1xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{(qlinear_c4) expects an input with a static last dimension}}
  %y = w4a4.qlinear %x, %c, %s {weight_bits = 4 : i64, act_bits = 4 : i64}
      : (tensor<?x?xf32>, tensor<8x32xi8>, tensor<8x1xf32>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

func.func @qlinear_c5(%x: tensor<?x64xf32>, %c: tensor<8x64xi8>, %s: tensor<8x1xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{(qlinear_c5) expects weight codes [out, 32] (64 inputs, 2 codes per byte)}}
  %y = w4a4.qlinear %x, %c, %s {weight_bits = 4 : i64, act_bits = 4 : i64}
      : (tensor<?x64xf32>, tensor<8x64xi8>, tensor<8x1xf32>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

func.func @qlinear_c6(%x: tensor<?x64xf32>, %c: tensor<8x32xi8>, %s: tensor<8x2xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{(qlinear_c6) expects group_size 0 (per channel) or a positive divisor of the input dimension 64, got 48}}
  %y = w4a4.qlinear %x, %c, %s {weight_bits = 4 : i64, act_bits = 4 : i64, group_size = 48 : i64}
      : (tensor<?x64xf32>, tensor<8x32xi8>, tensor<8x2xf32>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

func.func @qlinear_c7(%x: tensor<?x64xf32>, %c: tensor<8x32xi8>, %s: tensor<8x1xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{(qlinear_c7) expects weight scales [out, groups] = [8, 4]}}
  %y = w4a4.qlinear %x, %c, %s {weight_bits = 4 : i64, act_bits = 4 : i64, group_size = 16 : i64}
      : (tensor<?x64xf32>, tensor<8x32xi8>, tensor<8x1xf32>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

func.func @qlinear_c8(%x: tensor<?x64xf32>, %c: tensor<8x32xi8>, %s: tensor<8x1xf32>, %b: tensor<9xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{(qlinear_c8) expects a bias vector of 8 outputs}}
  %y = w4a4.qlinear %x, %c, %s bias(%b) {weight_bits = 4 : i64, act_bits = 4 : i64}
      : (tensor<?x64xf32>, tensor<8x32xi8>, tensor<8x1xf32>, tensor<9xf32>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

func.func @qlinear_c9(%x: tensor<?x64xf32>, %c: tensor<8x32xi8>, %s: tensor<8x1xf32>,
                      %l: tensor<8x4xf32>, %r: tensor<5x64xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{(qlinear_c9) expects low-rank factors L [out, rank] and R [rank, in]}}
  %y = w4a4.qlinear %x, %c, %s low_rank(%l, %r) {weight_bits = 4 : i64, act_bits = 4 : i64}
      : (tensor<?x64xf32>, tensor<8x32xi8>, tensor<8x1xf32>, tensor<8x4xf32>, tensor<5x64xf32>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

func.func @qlinear_c9_one_factor(%x: tensor<?x64xf32>, %c: tensor<8x32xi8>, %s: tensor<8x1xf32>,
                                 %l: tensor<8x4xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{(qlinear_c9) expects both low-rank factors or neither}}
  %y = "w4a4.qlinear"(%x, %c, %s, %l) <{weight_bits = 4 : i64, act_bits = 4 : i64,
                                        operandSegmentSizes = array<i32: 1, 1, 1, 0, 1, 0>}>
      : (tensor<?x64xf32>, tensor<8x32xi8>, tensor<8x1xf32>, tensor<8x4xf32>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

func.func @qlinear_c10(%x: tensor<?x64xf32>, %c: tensor<8x32xi8>, %s: tensor<8x1xf32>) -> tensor<?x?x8xf32> {
  // expected-error @+1 {{(qlinear_c10) expects the result shape to be the input shape with the last dimension replaced by 8}}
  %y = w4a4.qlinear %x, %c, %s {weight_bits = 4 : i64, act_bits = 4 : i64}
      : (tensor<?x64xf32>, tensor<8x32xi8>, tensor<8x1xf32>) -> tensor<?x?x8xf32>
  return %y : tensor<?x?x8xf32>
}

// -----

func.func @qlinear_c11(%x: tensor<?x64xf32>, %c: tensor<8x32xi8>, %s: tensor<8x1xf16>) -> tensor<?x8xf32> {
  // expected-error @+1 {{(qlinear_c11) expects all float operands and the result to share one element type}}
  %y = w4a4.qlinear %x, %c, %s {weight_bits = 4 : i64, act_bits = 4 : i64}
      : (tensor<?x64xf32>, tensor<8x32xi8>, tensor<8x1xf16>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

func.func @qlinear_codes_type(%x: tensor<?x64xf32>, %c: tensor<8x32xi32>, %s: tensor<8x1xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{operand #1 must be ranked tensor of 8-bit signless integer values}}
  %y = w4a4.qlinear %x, %c, %s {weight_bits = 4 : i64, act_bits = 4 : i64}
      : (tensor<?x64xf32>, tensor<8x32xi32>, tensor<8x1xf32>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

func.func @onnx_c1(%x: tensor<2xf32>) -> tensor<2xf32> {
  // expected-error @+1 {{(onnx_c1) expects a non-empty ONNX op type}}
  %y = w4a4.onnx "" "n"(%x) : (tensor<2xf32>) -> tensor<2xf32>
  return %y : tensor<2xf32>
}

// -----

func.func @onnx_c2(%x: tensor<2xf32>) -> tensor<2xf32> {
  // expected-error @+1 {{(onnx_c2) expects absent_inputs to be increasing input positions below 3}}
  %y = w4a4.onnx "Clip" "clip"(%x, %x) {absent_inputs = array<i64: 3>} : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
  return %y : tensor<2xf32>
}

// -----

func.func @attention_c10(%q: tensor<?x?x64xf32>, %pk: tensor<?x4x?x16xf32>) -> tensor<?x?x64xf32> {
  // expected-error @+1 {{(attention_c10) expects past_key, past_value, present_key and present_value together}}
  %o = w4a4.attention %q, %q, %q past(%pk, %pk) {num_heads = 4 : i64, num_kv_heads = 4 : i64, head_dim = 16 : i64}
      : (tensor<?x?x64xf32>, tensor<?x?x64xf32>, tensor<?x?x64xf32>, tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>) -> tensor<?x?x64xf32>
  return %o : tensor<?x?x64xf32>
}

// -----

func.func @attention_c11(%q: tensor<?x?x64xf32>, %pk: tensor<?x2x?x16xf32>) -> tensor<?x?x64xf32> {
  // expected-error @+1 {{(attention_c11) expects past and present keys and values [batch, num_kv_heads, len, head_dim] = [?, 4, ?, 16]}}
  %o, %k, %v = w4a4.attention %q, %q, %q past(%pk, %pk) {num_heads = 4 : i64, num_kv_heads = 4 : i64, head_dim = 16 : i64}
      : (tensor<?x?x64xf32>, tensor<?x?x64xf32>, tensor<?x?x64xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>)
      -> (tensor<?x?x64xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>)
  return %o : tensor<?x?x64xf32>
}

// -----

func.func @rope_c6(%x: tensor<?x?x64xf32>, %p: tensor<?xi64>) -> tensor<?x?x64xf32> {
  // expected-error @+1 {{(rope_c6) expects positions [batch, seq] for an input [batch, seq, heads * head_dim]}}
  %y = w4a4.rope %x positions(%p : tensor<?xi64>) {head_dim = 16 : i64} : tensor<?x?x64xf32>
  return %y : tensor<?x?x64xf32>
}

// -----

func.func @cache_positions_c1(%ids: tensor<?x?xi64>, %pk: tensor<?x?x16xf32>) -> tensor<?x?xi64> {
  // expected-error @+1 {{(cache_positions_c1) expects ids [batch, seq] and a past key [batch, num_kv_heads, past, head_dim]}}
  %p = w4a4.cache_positions %ids, %pk : (tensor<?x?xi64>, tensor<?x?x16xf32>) -> tensor<?x?xi64>
  return %p : tensor<?x?xi64>
}

// -----

func.func @cache_positions_c2(%ids: tensor<2x5xi64>, %pk: tensor<2x4x3x16xf32>) -> tensor<2x6xi64> {
  // expected-error @+1 {{(cache_positions_c2) expects a result of the ids' shape}}
  %p = w4a4.cache_positions %ids, %pk : (tensor<2x5xi64>, tensor<2x4x3x16xf32>) -> tensor<2x6xi64>
  return %p : tensor<2x6xi64>
}
