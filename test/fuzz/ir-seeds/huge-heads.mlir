module {
  func.func @forward(%ids: tensor<1x?xi64>) -> tensor<1x?x?xf32> {
    %t = w4a4.weight "t" = dense<1.0> : tensor<3x4xf32>
    %h = w4a4.embedding %t[%ids] : (tensor<3x4xf32>, tensor<1x?xi64>) -> tensor<1x?x?xf32>
    %o = w4a4.attention %h, %h, %h {num_heads = 4611686018427387904 : i64, num_kv_heads = 1 : i64, head_dim = 4 : i64}
        : (tensor<1x?x?xf32>, tensor<1x?x?xf32>, tensor<1x?x?xf32>) -> tensor<1x?x?xf32>
    return %o : tensor<1x?x?xf32>
  }
}
