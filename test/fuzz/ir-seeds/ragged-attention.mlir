module {
  func.func @forward(%ids: tensor<1x?xi64>) -> tensor<1x?x4xf32> {
    %t = w4a4.weight "t" = dense<0.5> : tensor<3x4xf32>
    %h = w4a4.embedding %t[%ids] : (tensor<3x4xf32>, tensor<1x?xi64>) -> tensor<1x?x4xf32>
    %r = w4a4.weight "r" = dense<0.25> : tensor<2x4xf32>
    %k = w4a4.registers prepend %h, %r : (tensor<1x?x4xf32>, tensor<2x4xf32>) -> tensor<1x?x4xf32>
    %o = w4a4.attention %h, %k, %k {num_heads = 2 : i64, num_kv_heads = 2 : i64, head_dim = 2 : i64}
        : (tensor<1x?x4xf32>, tensor<1x?x4xf32>, tensor<1x?x4xf32>) -> tensor<1x?x4xf32>
    return %o : tensor<1x?x4xf32>
  }
}
