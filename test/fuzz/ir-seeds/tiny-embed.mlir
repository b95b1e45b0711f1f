// logits = rms_norm(embedding(ids)) @ W^T: small enough to check by hand.
module {
  func.func @forward(%ids: tensor<1x?xi64>) -> tensor<1x?x3xf32> {
    %t = w4a4.weight "tok_embeddings.weight" = dense<[[3.0, 4.0], [1.0, 0.0], [0.0, -2.0]]> : tensor<3x2xf32>
    %h = w4a4.embedding %t[%ids] : (tensor<3x2xf32>, tensor<1x?xi64>) -> tensor<1x?x2xf32>
    %n = w4a4.rms_norm %h {epsilon = 1.0e-30 : f64} : tensor<1x?x2xf32>
    %w = w4a4.weight "output.weight" = dense<[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]> : tensor<3x2xf32>
    %y = w4a4.linear %n, %w : (tensor<1x?x2xf32>, tensor<3x2xf32>) -> tensor<1x?x3xf32>
    return %y : tensor<1x?x3xf32>
  }
}
