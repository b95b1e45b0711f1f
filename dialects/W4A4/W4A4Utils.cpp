//===- W4A4Utils.cpp - helpers for building and reading weights -----------===//

#include "dialects/W4A4/W4A4Utils.h"

#include "mlir/IR/DialectResourceBlobManager.h"
#include "llvm/ADT/StringExtras.h"

#include "w4a4/runtime/CheckedMath.h"

#include <algorithm>
#include <cstring>

using namespace mlir;
using namespace mlir::w4a4;

bool mlir::w4a4::denseDataMatchesType(DenseElementsAttr attr) {
  auto dense = dyn_cast<DenseIntOrFPElementsAttr>(attr);
  if (!dense)
    return true;
  Type element = dense.getElementType();
  if (!element.isIntOrFloat())
    return true; // complex and index: not weights
  int64_t bits = element.getIntOrFloatBitWidth();
  int64_t n = dense.isSplat() ? 1 : dense.getNumElements();
  std::optional<int64_t> bytes = bits == 1
                                     ? std::optional<int64_t>((n + 7) / 8)
                                     : ::w4a4::checkedMul(n, (bits + 7) / 8);
  return bytes && static_cast<int64_t>(dense.getRawData().size()) == *bytes;
}

std::optional<std::vector<double>> mlir::w4a4::readFloats(Attribute attr) {
  auto elements = dyn_cast_or_null<ElementsAttr>(attr);
  if (!elements)
    return std::nullopt;
  auto type = cast<ShapedType>(elements.getType());
  auto floatType = dyn_cast<FloatType>(type.getElementType());
  if (!floatType)
    return std::nullopt;
  // Checked size; a splat is not expanded past 2^31 elements (an unused
  // dense<0.0> : tensor<2^40 x f32> must not cost gigabytes).
  std::optional<int64_t> numel = ::w4a4::checkedProduct(type.getShape());
  if (!numel || *numel > (int64_t(1) << 31))
    return std::nullopt;
  std::vector<double> out;
  out.reserve(*numel);
  if (auto dense = dyn_cast<DenseFPElementsAttr>(attr)) {
    for (const APFloat &x : dense.getValues<APFloat>())
      out.push_back(x.convertToDouble());
    return out;
  }
  auto resource = dyn_cast<DenseResourceElementsAttr>(attr);
  if (!resource || !resource.getRawHandle().getBlob())
    return std::nullopt;
  ArrayRef<char> raw = resource.getRawHandle().getBlob()->getData();
  unsigned width = floatType.getWidth();
  if (width % 8 || raw.size() != static_cast<size_t>(*numel) * (width / 8))
    return std::nullopt;
  for (int64_t i = 0, n = *numel; i < n; ++i) {
    uint64_t bits = 0;
    std::memcpy(&bits, raw.data() + i * (width / 8), width / 8);
    out.push_back(APFloat(floatType.getFloatSemantics(), APInt(width, bits))
                      .convertToDouble());
  }
  return out;
}

static std::string blobKey(StringRef name) {
  std::string key;
  for (char c : name)
    key.push_back(llvm::isAlnum(c) ? c : '_');
  return key;
}

template <typename T>
static WeightOp createWeight(OpBuilder &builder, Location loc, StringRef name,
                             RankedTensorType type, ArrayRef<T> values) {
  ElementsAttr value;
  if (values.size() <= 16)
    value = DenseElementsAttr::get(type, values);
  else
    value = DenseResourceElementsAttr::get(
        type, blobKey(name),
        HeapAsmResourceBlob::allocateAndCopyInferAlign(values));
  return WeightOp::create(builder, loc, type, builder.getStringAttr(name),
                          value);
}

WeightOp mlir::w4a4::createF32Weight(OpBuilder &builder, Location loc,
                                     StringRef name, ArrayRef<int64_t> shape,
                                     ArrayRef<float> values) {
  return createWeight(builder, loc, name,
                      RankedTensorType::get(shape, builder.getF32Type()),
                      values);
}

WeightOp mlir::w4a4::createI8Weight(OpBuilder &builder, Location loc,
                                    StringRef name, ArrayRef<int64_t> shape,
                                    ArrayRef<int8_t> values) {
  return createWeight(builder, loc, name,
                      RankedTensorType::get(shape, builder.getI8Type()),
                      values);
}

LogicalResult mlir::w4a4::transformWeight(
    Value v, StringRef pass,
    llvm::function_ref<void(std::vector<double> &)> fn) {
  auto w = v.getDefiningOp<WeightOp>();
  std::optional<std::vector<double>> values =
      w ? readFloats(w.getValue()) : std::nullopt;
  if (!values) {
    if (Operation *def = v.getDefiningOp())
      return def->emitError() << pass << ": not a readable w4a4.weight";
    return emitError(v.getLoc()) << pass << ": not a readable w4a4.weight";
  }
  fn(*values);
  std::vector<float> f(values->begin(), values->end());
  OpBuilder b(w);
  WeightOp nw =
      createF32Weight(b, w.getLoc(), w.getName(), w.getType().getShape(), f);
  w.replaceAllUsesWith(nw.getResult());
  w.erase();
  return success();
}

std::optional<int64_t> mlir::w4a4::positionsFor(ModuleOp module,
                                                int64_t tokens) {
  int64_t prefix = 0, offset = 0;
  module.walk([&](Operation *op) {
    if (auto r = dyn_cast<RegistersOp>(op)) {
      if (r.getMode() == RegisterMode::prepend)
        prefix = std::max(prefix, r.getRegisters().getType().getDimSize(0));
    } else if (auto rope = dyn_cast<RoPEOp>(op)) {
      offset = std::max(offset, static_cast<int64_t>(rope.getPositionOffset()));
    }
  });
  std::optional<int64_t> n = ::w4a4::checkedAdd(tokens, prefix);
  return n ? ::w4a4::checkedAdd(*n, offset) : std::nullopt;
}

std::string mlir::w4a4::checkPositions(ModuleOp module, int64_t tokens,
                                       llvm::StringRef what) {
  auto limit = module->getAttrOfType<IntegerAttr>("w4a4.max_positions");
  if (!limit)
    return "";
  std::optional<int64_t> need = positionsFor(module, tokens);
  if (need && *need <= limit.getInt())
    return "";
  std::optional<int64_t> prefix = positionsFor(module, 0);
  return what.str() + " needs " +
         (need ? std::to_string(*need) : std::string("more than 2^63")) +
         " positions (register prefix " + std::to_string(prefix.value_or(0)) +
         " + " + std::to_string(tokens) + " tokens) but the model has " +
         std::to_string(limit.getInt());
}
