// RUN: w4a4-opt %s --split-input-file --verify-diagnostics

func.func @bits(%x: tensor<1x?x8xf32>) {
  // expected-error @+1 {{(w4a4k.quantize_c1) quantizes to 2..8 bits, not 9}}
  %q = w4a4k.quantize %x {clip_ratio = 1.0 : f64} : tensor<1x?x8xf32> -> !w4a4k.qrows<9 x 8>
  return
}

// -----

func.func @width(%x: tensor<1x?x8xf32>) {
  // expected-error @+1 {{(w4a4k.quantize_c2) the result's width 16 differs from the input's}}
  %q = w4a4k.quantize %x {clip_ratio = 1.0 : f64} : tensor<1x?x8xf32> -> !w4a4k.qrows<4 x 16>
  return
}

// -----

func.func @clip(%x: tensor<1x?x8xf32>) {
  // expected-error @+1 {{(w4a4k.quantize_c3) clip_ratio must be in (0, 1]}}
  %q = w4a4k.quantize %x {clip_ratio = 1.5 : f64} : tensor<1x?x8xf32> -> !w4a4k.qrows<4 x 8>
  return
}

// -----

func.func @layout(%q: !w4a4k.qrows<4 x 8>, %c: tensor<8x4xi8>, %s: tensor<8x1xf32>) {
  // expected-error @+1 {{(w4a4k.qgemm_c1) unknown weight layout 'rows' (known: cpu_vnni_panels)}}
  %y = w4a4k.qgemm %q, %c, %s {group_size = 0 : i64, layout = "rows", out_features = 8 : i64, weight_bits = 4 : i64} : !w4a4k.qrows<4 x 8>, tensor<8x4xi8>, tensor<8x1xf32> -> tensor<1x?x8xf32>
  return
}

// -----

func.func @codes(%q: !w4a4k.qrows<4 x 8>, %c: tensor<4x4xi8>, %s: tensor<8x1xf32>) {
  // expected-error @+1 {{(w4a4k.qgemm_c2) codes must be [out_features, packed inputs] of 2..8-bit codes}}
  %y = w4a4k.qgemm %q, %c, %s {group_size = 0 : i64, layout = "cpu_vnni_panels", out_features = 8 : i64, weight_bits = 4 : i64} : !w4a4k.qrows<4 x 8>, tensor<4x4xi8>, tensor<8x1xf32> -> tensor<1x?x8xf32>
  return
}

// -----

func.func @packed(%q: !w4a4k.qrows<4 x 8>, %c: tensor<8x8xi8>, %s: tensor<8x1xf32>) {
  // expected-error @+1 {{(w4a4k.qgemm_c3) codes hold 8 bytes per row; 8 inputs of 4 bits need 4}}
  %y = w4a4k.qgemm %q, %c, %s {group_size = 0 : i64, layout = "cpu_vnni_panels", out_features = 8 : i64, weight_bits = 4 : i64} : !w4a4k.qrows<4 x 8>, tensor<8x8xi8>, tensor<8x1xf32> -> tensor<1x?x8xf32>
  return
}

// -----

func.func @out(%q: !w4a4k.qrows<4 x 8>, %c: tensor<8x4xi8>, %s: tensor<8x1xf32>) {
  // expected-error @+1 {{(w4a4k.qgemm_c4) the result's width differs from out_features}}
  %y = w4a4k.qgemm %q, %c, %s {group_size = 0 : i64, layout = "cpu_vnni_panels", out_features = 8 : i64, weight_bits = 4 : i64} : !w4a4k.qrows<4 x 8>, tensor<8x4xi8>, tensor<8x1xf32> -> tensor<1x?x16xf32>
  return
}

// -----

func.func @norm_gain(%x: tensor<1x?x8xf32>, %g: tensor<4xf32>) {
  // expected-error @+1 {{(w4a4k.rms_norm_quantize_c1) the gain has one value per feature}}
  %q = w4a4k.rms_norm_quantize %x gain(%g : tensor<4xf32>) {epsilon = 1.0e-5 : f64, clip_ratio = 1.0 : f64} : tensor<1x?x8xf32> -> !w4a4k.qrows<4 x 8>
  return
}

// -----

func.func @norm_width(%x: tensor<1x?x8xf32>) {
  // expected-error @+1 {{(w4a4k.quantize_c2) the result's width 16 differs from the input's}}
  %q = w4a4k.rms_norm_quantize %x {epsilon = 1.0e-5 : f64, clip_ratio = 1.0 : f64} : tensor<1x?x8xf32> -> !w4a4k.qrows<4 x 16>
  return
}

// -----

func.func @swiglu_types(%g: tensor<1x?x8xf32>, %u: tensor<1x?x16xf32>) {
  // expected-error @+1 {{(w4a4k.swiglu_quantize_c1) gate and up must have one type}}
  %q = w4a4k.swiglu_quantize %g, %u {clip_ratio = 1.0 : f64, hadamard_inverse = false, hadamard_size = 0 : i64, hadamard_stride = 1 : i64} : tensor<1x?x8xf32>, tensor<1x?x16xf32> -> !w4a4k.qrows<4 x 8>
  return
}

// -----

func.func @swiglu_hadamard(%g: tensor<1x?x12xf32>) {
  // expected-error @+1 {{(w4a4k.swiglu_quantize_c2) hadamard_size x hadamard_stride must divide the width 12}}
  %q = w4a4k.swiglu_quantize %g, %g {clip_ratio = 1.0 : f64, hadamard_inverse = false, hadamard_size = 8 : i64, hadamard_stride = 1 : i64} : tensor<1x?x12xf32>, tensor<1x?x12xf32> -> !w4a4k.qrows<4 x 12>
  return
}

// -----

func.func @swiglu_signs(%g: tensor<1x?x8xf32>, %s: tensor<8xf32>) {
  // expected-error @+1 {{(w4a4k.swiglu_quantize_c3) signs need a Hadamard and one value per feature}}
  %q = w4a4k.swiglu_quantize %g, %g signs(%s : tensor<8xf32>) {clip_ratio = 1.0 : f64, hadamard_inverse = false, hadamard_size = 0 : i64, hadamard_stride = 1 : i64} : tensor<1x?x8xf32>, tensor<1x?x8xf32> -> !w4a4k.qrows<4 x 8>
  return
}

// -----

func.func @residual(%x: !w4a4k.qrows<4 x 8>, %c: tensor<8x4xi8>, %s: tensor<8x1xf32>, %r: tensor<1x?x4xf32>) {
  // expected-error @+1 {{(w4a4k.qgemm_c5) the residual must have the result's type}}
  %y = w4a4k.qgemm %x, %c, %s residual(%r : tensor<1x?x4xf32>) {group_size = 0 : i64, layout = "cpu_vnni_panels", out_features = 8 : i64, weight_bits = 4 : i64} : !w4a4k.qrows<4 x 8>, tensor<8x4xi8>, tensor<8x1xf32> -> tensor<1x?x8xf32>
  return
}
