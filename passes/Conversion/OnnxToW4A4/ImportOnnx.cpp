//===- ImportOnnx.cpp - ONNX model to w4a4 IR -----------------------------===//

#include "passes/Conversion/OnnxToW4A4/ImportOnnx.h"
#include "passes/Conversion/OnnxToW4A4/OnnxReader.h"

#include "dialects/W4A4/W4A4Ops.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/AsmState.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "mlir/IR/Verifier.h"

#include <map>

using namespace mlir;
using namespace mlir::w4a4;
namespace ox = ::w4a4::onnx_import;

namespace {

Type elementType(int32_t t, MLIRContext *ctx) {
  switch (static_cast<ox::ElemType>(t)) {
  case ox::ElemType::Float:
    return Float32Type::get(ctx);
  case ox::ElemType::Float16:
    return Float16Type::get(ctx);
  case ox::ElemType::BFloat16:
    return BFloat16Type::get(ctx);
  case ox::ElemType::Double:
    return Float64Type::get(ctx);
  case ox::ElemType::Int64:
    return IntegerType::get(ctx, 64);
  case ox::ElemType::Int32:
    return IntegerType::get(ctx, 32);
  case ox::ElemType::Int8:
    return IntegerType::get(ctx, 8);
  case ox::ElemType::UInt8:
    return IntegerType::get(ctx, 8, IntegerType::Unsigned);
  case ox::ElemType::Bool:
    return IntegerType::get(ctx, 1);
  default:
    return {};
  }
}

SmallVector<int64_t> mlirShape(const std::vector<int64_t> &dims) {
  SmallVector<int64_t> shape;
  for (int64_t d : dims)
    shape.push_back(d < 0 ? ShapedType::kDynamic : d);
  return shape;
}

/// A resource key made of identifier characters.
std::string blobKey(StringRef name) {
  std::string key;
  for (char c : name)
    key.push_back(llvm::isAlnum(c) ? c : '_');
  return key.empty() ? std::string("blob") : key;
}

/// Constants up to this many elements are printed inline.
constexpr int64_t kMaxInlineElements = 16;

class Importer {
public:
  Importer(ox::Model &model, MLIRContext *ctx)
      : model(model), ctx(ctx), builder(ctx) {}

  llvm::Expected<OwningOpRef<ModuleOp>> run() {
    Location loc = FileLineColLoc::get(ctx, model.path, 0, 0);
    OwningOpRef<ModuleOp> module = ModuleOp::create(loc);
    module->getOperation()->setAttr("w4a4.onnx_opset",
                                    builder.getI64IntegerAttr(model.opset));
    if (model.msOpset)
      module->getOperation()->setAttr("w4a4.onnx_ms_opset",
                                      builder.getI64IntegerAttr(model.msOpset));
    if (!model.producer.empty())
      module->getOperation()->setAttr("w4a4.onnx_producer",
                                      builder.getStringAttr(model.producer));
    if (failed(importMetadata(module.get())))
      return takeError();

    SmallVector<Type> inputTypes, outputTypes;
    for (auto &[name, t] : model.inputs) {
      Type ty = tensorType(t, "graph input '" + name + "'");
      if (!ty)
        return takeError();
      inputTypes.push_back(ty);
    }
    for (auto &[name, t] : model.outputs) {
      Type ty = tensorType(t, "graph output '" + name + "'");
      if (!ty)
        return takeError();
      outputTypes.push_back(ty);
    }
    builder.setInsertionPointToEnd(module->getBody());
    auto func =
        func::FuncOp::create(builder, loc, "forward",
                             builder.getFunctionType(inputTypes, outputTypes));
    Block *body = func.addEntryBlock();
    builder.setInsertionPointToEnd(body);
    for (auto [i, in] : llvm::enumerate(model.inputs)) {
      values[in.first] = body->getArgument(i);
      func.setArgAttr(i, "w4a4.name", builder.getStringAttr(in.first));
      if (ArrayAttr dims = symAttr(model.symDims, in.first))
        func.setArgAttr(i, "w4a4.dims", dims);
    }
    for (ox::Initializer &init : model.initializers)
      if (failed(importInitializer(init)))
        return takeError();
    for (ox::Node &node : model.nodes)
      if (failed(importNode(node)))
        return takeError();
    SmallVector<Value> results;
    for (auto &[name, t] : model.outputs) {
      auto it = values.find(name);
      if (it == values.end())
        return error("graph output '" + name + "' is not produced by any node");
      results.push_back(it->second);
    }
    func::ReturnOp::create(builder, loc, results);
    for (auto [i, out] : llvm::enumerate(model.outputs))
      func.setResultAttr(i, "w4a4.name", builder.getStringAttr(out.first));
    return std::move(module);
  }

private:
  llvm::Error error(const std::string &message) {
    return llvm::createStringError(model.path + ": " + message);
  }
  LogicalResult fail(const std::string &message) {
    pending = model.path + ": " + message;
    return failure();
  }
  llvm::Error takeError() { return llvm::createStringError(pending); }

  Type tensorType(const ox::TensorType &t, const std::string &what) {
    Type elem = elementType(t.elemType, ctx);
    if (!elem) {
      (void)fail(what + " has no supported element type (ONNX type " +
                 std::to_string(t.elemType) + ")");
      return {};
    }
    if (!t.ranked)
      return UnrankedTensorType::get(elem);
    return RankedTensorType::get(mlirShape(t.dims), elem);
  }

  /// Module attributes from metadata_props: the integer keys the compiler
  /// uses become typed attributes (`w4a4.bos_id`, ...), and every entry is
  /// kept in `w4a4.onnx_metadata`.
  LogicalResult importMetadata(ModuleOp module) {
    if (model.metadata.empty())
      return success();
    SmallVector<NamedAttribute> all;
    for (auto &[key, value] : model.metadata) {
      all.push_back(builder.getNamedAttr(key, builder.getStringAttr(value)));
      static const char *intKeys[] = {"bos_id",      "eos_id",
                                      "pad_id",      "vocab_size",
                                      "n_registers", "max_positions"};
      if (!llvm::is_contained(intKeys, StringRef(key)))
        continue;
      int64_t v;
      if (StringRef(value).trim().getAsInteger(10, v) || v < 0)
        return fail("metadata_props '" + key + "' = '" + value +
                    "' is not a non-negative integer");
      module->setAttr("w4a4." + key, builder.getI64IntegerAttr(v));
    }
    module->setAttr("w4a4.onnx_metadata", builder.getDictionaryAttr(all));
    return success();
  }

  /// Stage 1's symbolic dims or values of `name` as an array of strings.
  ArrayAttr symAttr(const std::map<std::string, std::vector<std::string>> &m,
                    const std::string &name) {
    auto it = m.find(name);
    if (it == m.end())
      return {};
    SmallVector<Attribute> strs;
    for (const std::string &s : it->second)
      strs.push_back(builder.getStringAttr(s));
    return builder.getArrayAttr(strs);
  }

  Location nodeLoc(const std::string &name) {
    return NameLoc::get(builder.getStringAttr(name),
                        FileLineColLoc::get(ctx, model.path, 0, 0));
  }

  /// A constant over the tensor's bytes: a dense literal for small tensors
  /// (shape constants stay readable and foldable) and for booleans (i1 has no
  /// blob layout), else a dense_resource blob over the protobuf's buffer.
  ElementsAttr constantAttr(const std::string &name, int32_t elemType,
                            const std::vector<int64_t> &dims,
                            std::shared_ptr<std::string> bytes) {
    auto type =
        RankedTensorType::get(mlirShape(dims), elementType(elemType, ctx));
    if (static_cast<ox::ElemType>(elemType) == ox::ElemType::Bool) {
      SmallVector<bool> bits;
      for (char c : *bytes)
        bits.push_back(c != 0);
      return DenseElementsAttr::get(type, ArrayRef<bool>(bits));
    }
    size_t align = ox::elemSize(elemType);
    ArrayRef<char> data(bytes->data(), bytes->size());
    if (type.getNumElements() <= kMaxInlineElements)
      return DenseElementsAttr::getFromRawBuffer(type, data);
    AsmResourceBlob blob;
    if (reinterpret_cast<uintptr_t>(bytes->data()) % align == 0) {
      blob = UnmanagedAsmResourceBlob::allocateWithAlign(
          data, align, [keep = bytes](void *, size_t, size_t) {});
    } else {
      blob = HeapAsmResourceBlob::allocateAndCopyWithAlign(data, align);
    }
    return DenseResourceElementsAttr::get(type, blobKey(name), std::move(blob));
  }

  LogicalResult importInitializer(ox::Initializer &init) {
    if (!elementType(init.elemType, ctx))
      return fail("initializer '" + init.name + "' has unsupported data type " +
                  std::to_string(init.elemType));
    ElementsAttr value =
        constantAttr(init.name, init.elemType, init.dims, init.bytes);
    auto op = WeightOp::create(builder, nodeLoc(init.name), value.getType(),
                               builder.getStringAttr(init.name), value);
    values[init.name] = op.getResult();
    return success();
  }

  Attribute convertAttribute(ox::Attribute &a, const std::string &name) {
    switch (a.kind) {
    case ox::Attribute::Int:
      return builder.getI64IntegerAttr(a.i);
    case ox::Attribute::Float:
      return builder.getF32FloatAttr(a.f);
    case ox::Attribute::String:
      return builder.getStringAttr(a.s);
    case ox::Attribute::Ints:
      return builder.getDenseI64ArrayAttr(a.ints);
    case ox::Attribute::Floats:
      return builder.getDenseF32ArrayAttr(a.floats);
    case ox::Attribute::Strings: {
      SmallVector<Attribute> strs;
      for (auto &s : a.strings)
        strs.push_back(builder.getStringAttr(s));
      return builder.getArrayAttr(strs);
    }
    case ox::Attribute::Tensor:
      if (!elementType(a.tensorType, ctx))
        return {};
      return constantAttr(
          name, a.tensorType, a.tensorDims,
          std::make_shared<std::string>(std::move(a.tensorBytes)));
    case ox::Attribute::Other:
      return {};
    }
    return {};
  }

  bool isMicrosoft(const ox::Node &node) {
    return node.domain == "com.microsoft";
  }

  std::string describe(const ox::Node &node) {
    return "node '" + node.name + "' (op " +
           (isMicrosoft(node) ? "com.microsoft." : "") + node.opType +
           ", opset " +
           std::to_string(isMicrosoft(node) ? model.msOpset : model.opset) +
           ")";
  }

  /// The value of a Constant node as an attribute.
  TypedAttr constantValue(ox::Node &node) {
    if (node.outputs.size() != 1)
      return {};
    auto it = node.attributes.find("value");
    if (it != node.attributes.end() && it->second.kind == ox::Attribute::Tensor)
      return dyn_cast_or_null<TypedAttr>(
          convertAttribute(it->second, node.outputs[0]));
    if (auto i = node.attributes.find("value_int"); i != node.attributes.end())
      return DenseElementsAttr::get(
          RankedTensorType::get({}, builder.getI64Type()), i->second.i);
    if (auto i = node.attributes.find("value_ints"); i != node.attributes.end())
      return DenseElementsAttr::get(
          RankedTensorType::get({(int64_t)i->second.ints.size()},
                                builder.getI64Type()),
          ArrayRef<int64_t>(i->second.ints));
    if (auto f = node.attributes.find("value_float");
        f != node.attributes.end())
      return DenseElementsAttr::get(
          RankedTensorType::get({}, builder.getF32Type()), f->second.f);
    if (auto f = node.attributes.find("value_floats");
        f != node.attributes.end())
      return DenseElementsAttr::get(
          RankedTensorType::get({(int64_t)f->second.floats.size()},
                                builder.getF32Type()),
          ArrayRef<float>(f->second.floats));
    return {};
  }

  LogicalResult importNode(ox::Node &node) {
    if (!node.domain.empty() && node.domain != "ai.onnx" && !isMicrosoft(node))
      return fail(describe(node) + ": unsupported op domain '" + node.domain +
                  "'");
    Location loc = nodeLoc(node.name);

    if (node.opType == "Constant" && !isMicrosoft(node)) {
      TypedAttr value = constantValue(node);
      if (!value)
        return fail(describe(node) + ": unsupported constant (a 'value' "
                                     "tensor of a supported type, or "
                                     "value_int(s) / value_float(s))");
      values[node.outputs[0]] =
          arith::ConstantOp::create(builder, loc, value).getResult();
      return success();
    }

    SmallVector<Value> operands;
    SmallVector<int64_t> absent;
    for (auto [i, in] : llvm::enumerate(node.inputs)) {
      if (in.empty()) {
        absent.push_back(i);
        continue;
      }
      auto it = values.find(in);
      if (it == values.end())
        return fail(describe(node) + ": input '" + in +
                    "' is not defined before the node (graph not "
                    "topologically sorted, or a dangling name)");
      operands.push_back(it->second);
    }
    SmallVector<Type> resultTypes;
    for (const std::string &out : node.outputs) {
      auto it = model.valueTypes.find(out);
      if (out.empty() || it == model.valueTypes.end()) {
        // An optional output the op does not produce here: a placeholder
        // type; using it is an error below.
        resultTypes.push_back(NoneType::get(ctx));
        continue;
      }
      Type ty =
          tensorType(it->second, describe(node) + " output '" + out + "'");
      if (!ty)
        return failure();
      resultTypes.push_back(ty);
    }
    SmallVector<NamedAttribute> attrs;
    for (auto &[name, a] : node.attributes) {
      Attribute attr = convertAttribute(a, node.name + "." + name);
      if (!attr)
        return fail(describe(node) + ": attribute '" + name +
                    "' has an unsupported kind");
      attrs.push_back(builder.getNamedAttr(name, attr));
    }
    std::string opType =
        (isMicrosoft(node) ? "com.microsoft." : "") + node.opType;
    auto op = OnnxOp::create(
        builder, loc, resultTypes, operands, builder.getStringAttr(opType),
        builder.getStringAttr(node.name),
        attrs.empty() ? DictionaryAttr() : builder.getDictionaryAttr(attrs),
        absent.empty() ? DenseI64ArrayAttr()
                       : builder.getDenseI64ArrayAttr(absent));
    for (auto [out, res] : llvm::zip_equal(node.outputs, op.getResults()))
      if (!out.empty() && !isa<NoneType>(res.getType()))
        values[out] = res;
    // Stage 1's symbolic view of the (first) result: its dynamic dims and,
    // for shape arithmetic, its values; w4a4-normalize-onnx folds by them.
    if (op.getNumResults() == 1 && !node.outputs[0].empty()) {
      if (ArrayAttr dims = symAttr(model.symDims, node.outputs[0]))
        op->setAttr("w4a4.dims", dims);
      if (ArrayAttr data = symAttr(model.symData, node.outputs[0]))
        op->setAttr("w4a4.sym", data);
    }
    return success();
  }

  ox::Model &model;
  MLIRContext *ctx;
  OpBuilder builder;
  std::map<std::string, Value> values;
  std::string pending;
};

} // namespace

static llvm::Expected<OwningOpRef<ModuleOp>>
importModel(std::optional<ox::Model> model, const std::string &error,
            StringRef path, MLIRContext *context) {
  context->loadDialect<W4A4Dialect, func::FuncDialect, arith::ArithDialect>();
  if (!model)
    return llvm::createStringError(error);
  Importer importer(*model, context);
  auto module = importer.run();
  if (!module)
    return module.takeError();
  if (failed(mlir::verify((*module)->getOperation())))
    return llvm::createStringError(path.str() +
                                   ": the imported IR does not verify");
  return module;
}

llvm::Expected<OwningOpRef<ModuleOp>>
mlir::w4a4::importOnnxFile(StringRef path, MLIRContext *context) {
  std::string error;
  std::optional<ox::Model> model = ox::readModel(path.str(), error);
  return importModel(std::move(model), error, path, context);
}

llvm::Expected<OwningOpRef<ModuleOp>>
mlir::w4a4::importOnnxBytes(StringRef bytes, StringRef path,
                            MLIRContext *context) {
  std::string error;
  std::optional<ox::Model> model =
      ox::readModelFromBytes(bytes.str(), path.str(), error);
  return importModel(std::move(model), error, path, context);
}
