//===- OnnxShapes.h - stage 1: per-op, per-opset ONNX inference -*- C++ -*-===//
//
// Stage 1 of the importer knows each supported ONNX op by itself, versioned
// by opset (the torch-mlir `onOp(name, sinceVersion, ...)` habit): its
// attributes and inputs at that version, its result types and shapes, and,
// for small integer tensors (shape arithmetic), its values. Dimensions and
// values are symbolic (SymExpr), so shape arithmetic on dynamic batch and
// sequence lengths is exact, and nothing depends on which opsets the
// installed ONNX library has schemas for. Plain C++ without MLIR.
//
//===----------------------------------------------------------------------===//

#ifndef W4A4_CONVERSION_ONNXTOW4A4_ONNXSHAPES_H
#define W4A4_CONVERSION_ONNXTOW4A4_ONNXSHAPES_H

#include "passes/Conversion/OnnxToW4A4/SymExpr.h"

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace w4a4::onnx_import {

struct Node;

/// What stage 1 knows of one value.
struct ValueInfo {
  int32_t elemType = 0;
  bool ranked = false;
  std::vector<SymExpr> dims;
  /// Row-major element values of small integer (and boolean) tensors.
  std::optional<std::vector<SymExpr>> data;
  /// For float scalars from constants (e.g. a Constant value_float).
  bool defined() const { return elemType != 0; }
};

/// Integer tensors up to this many elements carry their values.
constexpr int64_t kMaxDataElements = 64;

/// One supported op: domain ("" = default), name, the opset it is written
/// for (the converter applies from that version up to the next entry of the
/// same op), and the opsets it covers.
struct OpSupport {
  std::string domain, opType;
  int64_t sinceVersion;
};

/// Every supported (domain, op, since-version), for docs and --list-ops.
std::vector<OpSupport> supportedOps();

/// Newest default-domain opset stage 1 implements.
constexpr int64_t kMaxOpset = 23;

/// True when stage 1 has a converter for the op at `opset` of its domain;
/// else `why` says what is missing (unknown op, or the first version that
/// has it).
bool isSupported(const std::string &domain, const std::string &opType,
                 int64_t opset, std::string &why);

/// Infers the results of `node` from its inputs (nullptr: absent optional
/// input). `fresh` names symbols for dimensions nothing determines. Returns
/// an error message ("" on success) that does not name the node.
std::string inferNode(const Node &node, int64_t opset,
                      const std::vector<const ValueInfo *> &inputs,
                      std::vector<ValueInfo> &outputs,
                      const std::function<SymExpr()> &fresh);

/// "[batch, seq + 4, 64]".
std::string shapeString(const std::vector<SymExpr> &dims);

} // namespace w4a4::onnx_import

#endif // W4A4_CONVERSION_ONNXTOW4A4_ONNXSHAPES_H
