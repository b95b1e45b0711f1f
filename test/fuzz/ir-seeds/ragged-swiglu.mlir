module {
  func.func @forward(%ids: tensor<1x?xi64>) -> tensor<1x?x?xf32> {
    %t = w4a4.weight "t" = dense<1.0> : tensor<3x4xf32>
    %u = w4a4.weight "u" = dense<1.0> : tensor<3x6xf32>
    %a = w4a4.embedding %t[%ids] : (tensor<3x4xf32>, tensor<1x?xi64>) -> tensor<1x?x?xf32>
    %b = w4a4.embedding %u[%ids] : (tensor<3x6xf32>, tensor<1x?xi64>) -> tensor<1x?x?xf32>
    %s = w4a4.swiglu %a, %b : tensor<1x?x?xf32>
    return %s : tensor<1x?x?xf32>
  }
}
