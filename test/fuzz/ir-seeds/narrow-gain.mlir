module {
  func.func @forward(%ids: tensor<1x?xi64>) -> tensor<1x?x?xf32> {
    %t = w4a4.weight "t" = dense<1.0> : tensor<3x4xf32>
    %h = w4a4.embedding %t[%ids] : (tensor<3x4xf32>, tensor<1x?xi64>) -> tensor<1x?x?xf32>
    %g = w4a4.weight "g" = dense<1.0> : tensor<2xf32>
    %n = w4a4.rms_norm %h gain(%g : tensor<2xf32>) {epsilon = 1.0e-5 : f64} : tensor<1x?x?xf32>
    return %n : tensor<1x?x?xf32>
  }
}
