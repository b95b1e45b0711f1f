// A model whose embedding table holds a NaN.
module {
  func.func @forward(%ids: tensor<1x?xi64>) -> tensor<1x?x2xf32> {
    %t = w4a4.weight "tok_embeddings.weight" = dense<[[1.0, 2.0], [0x7FC00000, 0.0], [3.0, 4.0]]> : tensor<3x2xf32>
    %h = w4a4.embedding %t[%ids] : (tensor<3x2xf32>, tensor<1x?xi64>) -> tensor<1x?x2xf32>
    return %h : tensor<1x?x2xf32>
  }
}
