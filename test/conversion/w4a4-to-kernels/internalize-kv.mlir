// RUN: w4a4-opt %s --split-input-file --w4a4-internalize-kv-cache --verify-diagnostics | FileCheck %s

// A decoder-with-past @forward loses position_ids, the pasts and the
// presents: the attention has no past, RoPE no positions (the artifact's
// cache length is the offset), and the assumption is recorded.
// CHECK: module attributes {w4a4.assumed_inputs = ["attention_mask: all ones (no padding)", "position_ids: the KV cache's length + 0..seq-1 (the compiled artifact keeps the cache)"]}
// CHECK-LABEL: func.func @forward(%arg0: tensor<1x?xi64>) -> tensor<1x?x8xf32>
// CHECK: w4a4.rope %{{[^ ]+}} {head_dim = 4 : i64}
// CHECK: %[[O:.+]] = w4a4.attention %{{[^ ]+}}, %{{[^ ]+}}, %{{[^ ]+}} {head_dim = 4 : i64, num_heads = 2 : i64, num_kv_heads = 2 : i64} : (tensor<1x?x8xf32>, tensor<1x?x8xf32>, tensor<1x?x8xf32>) -> tensor<1x?x8xf32>
// CHECK-NOT: past
// CHECK: return %{{[^ ]+}} : tensor<1x?x8xf32>
module attributes {w4a4.assumed_inputs = ["attention_mask: all ones (no padding)"]} {
func.func @forward(%ids: tensor<1x?xi64>, %pos: tensor<1x?xi64>, %pk: tensor<1x2x?x4xf32>, %pv: tensor<1x2x?x4xf32>) -> (tensor<1x?x8xf32>, tensor<1x2x?x4xf32>, tensor<1x2x?x4xf32>) {
  %table = w4a4.weight "embed" = dense<0.5> : tensor<16x8xf32>
  %x = w4a4.embedding %table[%ids] : (tensor<16x8xf32>, tensor<1x?xi64>) -> tensor<1x?x8xf32>
  %q = w4a4.rope %x positions(%pos : tensor<1x?xi64>) {head_dim = 4 : i64} : tensor<1x?x8xf32>
  %o, %k2, %v2 = w4a4.attention %q, %q, %x past(%pk, %pv) {num_heads = 2 : i64, num_kv_heads = 2 : i64, head_dim = 4 : i64} : (tensor<1x?x8xf32>, tensor<1x?x8xf32>, tensor<1x?x8xf32>, tensor<1x2x?x4xf32>, tensor<1x2x?x4xf32>) -> (tensor<1x?x8xf32>, tensor<1x2x?x4xf32>, tensor<1x2x?x4xf32>)
  return %o, %k2, %v2 : tensor<1x?x8xf32>, tensor<1x2x?x4xf32>, tensor<1x2x?x4xf32>
}
}

// -----

// GroupQueryAttention's positions from the past length go too.
// CHECK-LABEL: func.func @forward(%arg0: tensor<1x?xi64>) -> tensor<1x?x8xf32>
// CHECK-NOT: cache_positions
// CHECK: w4a4.rope %{{[^ ]+}} {head_dim = 4 : i64}
func.func @forward(%ids: tensor<1x?xi64>, %pk: tensor<1x2x?x4xf32>, %pv: tensor<1x2x?x4xf32>) -> (tensor<1x?x8xf32>, tensor<1x2x?x4xf32>, tensor<1x2x?x4xf32>) {
  %table = w4a4.weight "embed" = dense<0.5> : tensor<16x8xf32>
  %x = w4a4.embedding %table[%ids] : (tensor<16x8xf32>, tensor<1x?xi64>) -> tensor<1x?x8xf32>
  %pos = w4a4.cache_positions %ids, %pk : (tensor<1x?xi64>, tensor<1x2x?x4xf32>) -> tensor<1x?xi64>
  %q = w4a4.rope %x positions(%pos : tensor<1x?xi64>) {head_dim = 4 : i64} : tensor<1x?x8xf32>
  %o, %k2, %v2 = w4a4.attention %q, %q, %x past(%pk, %pv) {num_heads = 2 : i64, num_kv_heads = 2 : i64, head_dim = 4 : i64} : (tensor<1x?x8xf32>, tensor<1x?x8xf32>, tensor<1x?x8xf32>, tensor<1x2x?x4xf32>, tensor<1x2x?x4xf32>) -> (tensor<1x?x8xf32>, tensor<1x2x?x4xf32>, tensor<1x2x?x4xf32>)
  return %o, %k2, %v2 : tensor<1x?x8xf32>, tensor<1x2x?x4xf32>, tensor<1x2x?x4xf32>
}

// -----

// A present read by something else than the return cannot be dropped.
func.func @forward(%ids: tensor<1x?xi64>, %pk: tensor<1x2x?x4xf32>, %pv: tensor<1x2x?x4xf32>) -> (tensor<1x?x8xf32>, tensor<1x2x?x4xf32>) {
  %table = w4a4.weight "embed" = dense<0.5> : tensor<16x8xf32>
  %x = w4a4.embedding %table[%ids] : (tensor<16x8xf32>, tensor<1x?xi64>) -> tensor<1x?x8xf32>
  // expected-error @+1 {{--w4a4-internalize-kv-cache: the present keys / values must only be returned}}
  %o, %k2, %v2 = w4a4.attention %x, %x, %x past(%pk, %pv) {num_heads = 2 : i64, num_kv_heads = 2 : i64, head_dim = 4 : i64} : (tensor<1x?x8xf32>, tensor<1x?x8xf32>, tensor<1x?x8xf32>, tensor<1x2x?x4xf32>, tensor<1x2x?x4xf32>) -> (tensor<1x?x8xf32>, tensor<1x2x?x4xf32>, tensor<1x2x?x4xf32>)
  %s = w4a4.add %k2, %v2 : tensor<1x2x?x4xf32>
  return %o, %s : tensor<1x?x8xf32>, tensor<1x2x?x4xf32>
}

// -----

// position_ids read by anything but RoPE (here an embedding of positions)
// is more than the artifact's cache can stand for.
func.func @forward(%ids: tensor<1x?xi64>, %pos: tensor<1x?xi64>, %pk: tensor<1x2x?x4xf32>, %pv: tensor<1x2x?x4xf32>) -> (tensor<1x?x8xf32>, tensor<1x2x?x4xf32>, tensor<1x2x?x4xf32>) {
  %table = w4a4.weight "embed" = dense<0.5> : tensor<16x8xf32>
  // expected-error @+1 {{--w4a4-internalize-kv-cache: reads @forward's argument 1 (position_ids or a past), which the compiled artifact does not take}}
  %p = w4a4.embedding %table[%pos] : (tensor<16x8xf32>, tensor<1x?xi64>) -> tensor<1x?x8xf32>
  %o, %k2, %v2 = w4a4.attention %p, %p, %p past(%pk, %pv) {num_heads = 2 : i64, num_kv_heads = 2 : i64, head_dim = 4 : i64} : (tensor<1x?x8xf32>, tensor<1x?x8xf32>, tensor<1x?x8xf32>, tensor<1x2x?x4xf32>, tensor<1x2x?x4xf32>) -> (tensor<1x?x8xf32>, tensor<1x2x?x4xf32>, tensor<1x2x?x4xf32>)
  return %o, %k2, %v2 : tensor<1x?x8xf32>, tensor<1x2x?x4xf32>, tensor<1x2x?x4xf32>
}
