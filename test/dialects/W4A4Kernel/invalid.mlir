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
