//===- ImportOnnx.h - ONNX model to w4a4 IR ---------------------*- C++ -*-===//
//
// Stage 1 of the importer: every ONNX node becomes one generic `w4a4.onnx`
// op, initializers become `w4a4.weight` ops over dense_resource blobs that
// reference the protobuf's buffers without copying them, and the graph
// becomes `func.func @forward`.
//
//===----------------------------------------------------------------------===//

#ifndef W4A4_CONVERSION_ONNXTOW4A4_IMPORTONNX_H
#define W4A4_CONVERSION_ONNXTOW4A4_IMPORTONNX_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/Support/Error.h"

namespace mlir::w4a4 {

/// Reads, validates and imports the ONNX file at `path`. Errors name the
/// file and, where it applies, the node, op type and opset.
llvm::Expected<OwningOpRef<ModuleOp>> importOnnxFile(llvm::StringRef path,
                                                     MLIRContext *context);

/// Same, from the bytes of an ONNX file named `path` in messages.
llvm::Expected<OwningOpRef<ModuleOp>> importOnnxBytes(llvm::StringRef bytes,
                                                      llvm::StringRef path,
                                                      MLIRContext *context);

} // namespace mlir::w4a4

#endif // W4A4_CONVERSION_ONNXTOW4A4_IMPORTONNX_H
