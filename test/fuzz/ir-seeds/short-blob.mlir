module {
  func.func @forward(%ids: tensor<1x?xi64>) -> tensor<1x?x2xf32> {
    %t = w4a4.weight "t" = dense_resource<t> : tensor<3x2xf32>
    %h = w4a4.embedding %t[%ids] : (tensor<3x2xf32>, tensor<1x?xi64>) -> tensor<1x?x2xf32>
    return %h : tensor<1x?x2xf32>
  }
}
{-#
  dialect_resources: {
    builtin: {
      t: "0x040000000000803F0000803F"
    }
  }
#-}
