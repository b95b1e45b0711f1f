//===- OnnxReader.h - ONNX protobuf reader ----------------------*- C++ -*-===//
//
// Reads an ONNX model with the ONNX protobuf library into plain C++ structures
// and validates it: protobuf well-formedness, opset, shapes (ONNX shape
// inference), initializer sizes, external-data paths. This file and its .cpp
// are the only ones that touch protobuf and C++ exceptions (the ONNX library
// throws); the MLIR side (ImportOnnx.cpp) sees only these structures.
//
//===----------------------------------------------------------------------===//

#ifndef W4A4_CONVERSION_ONNXTOW4A4_ONNXREADER_H
#define W4A4_CONVERSION_ONNXTOW4A4_ONNXREADER_H

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace w4a4::onnx_import {

/// ONNX TensorProto::DataType values used here.
enum class ElemType : int32_t {
  Undefined = 0,
  Float = 1,
  UInt8 = 2,
  Int8 = 3,
  Int32 = 6,
  Int64 = 7,
  Bool = 9,
  Float16 = 10,
  Double = 11,
  BFloat16 = 16,
};

/// Size in bytes of one element, 0 for unsupported types.
int64_t elemSize(int32_t onnxType);

struct TensorType {
  int32_t elemType = 0;
  bool ranked = false;
  std::vector<int64_t> dims; // -1: dynamic
};

struct Attribute {
  enum Kind { Int, Float, String, Ints, Floats, Strings, Tensor, Other };
  Kind kind = Other;
  int64_t i = 0;
  float f = 0;
  std::string s;
  std::vector<int64_t> ints;
  std::vector<float> floats;
  std::vector<std::string> strings;
  int32_t tensorType = 0; // for Tensor: element type, dims, raw bytes
  std::vector<int64_t> tensorDims;
  std::string tensorBytes;
};

struct Node {
  std::string name, opType, domain;
  std::vector<std::string> inputs, outputs; // "" = absent optional input
  std::map<std::string, Attribute> attributes;
};

struct Initializer {
  std::string name;
  int32_t elemType = 0;
  std::vector<int64_t> dims;
  /// Little-endian element bytes. Owned here; the importer hands the buffer
  /// to the IR without copying it.
  std::shared_ptr<std::string> bytes;
};

struct Model {
  std::string path;
  int64_t opset = 0;   // default ("ai.onnx") domain
  int64_t msOpset = 0; // com.microsoft domain, 0 when not imported
  int64_t irVersion = 0;
  std::string producer;
  std::vector<std::pair<std::string, TensorType>> inputs, outputs;
  std::vector<Node> nodes;
  std::vector<Initializer> initializers;
  std::map<std::string, TensorType> valueTypes; // after shape inference
  /// Stage 1's symbolic view: dimensions of every value whose shape has a
  /// dynamic dimension, and the values of small integer tensors (shape
  /// arithmetic), each element as SymExpr text ("seq + 4").
  std::map<std::string, std::vector<std::string>> symDims, symData;
  /// metadata_props, in file order.
  std::vector<std::pair<std::string, std::string>> metadata;
};

/// Oldest default-domain opset the importer accepts; the newest is
/// kMaxOpset (OnnxShapes.h): stage 1 has its own inference for every op, so
/// this does not depend on the installed ONNX library's schemas.
constexpr int64_t kMinOpset = 13;

/// Reads and validates `path`. On failure returns std::nullopt and sets
/// `error` to one message naming the file and, where it applies, the node,
/// op type and opset.
std::optional<Model> readModel(const std::string &path, std::string &error);

/// Same, from the bytes of an ONNX file; `path` names it in messages and
/// anchors external data (fuzzing and in-memory use).
std::optional<Model> readModelFromBytes(std::string bytes,
                                        const std::string &path,
                                        std::string &error);

} // namespace w4a4::onnx_import

#endif // W4A4_CONVERSION_ONNXTOW4A4_ONNXREADER_H
