//===- W4A4KernelDialect.cpp - kernel-level IR of w4a4 --------------------===//

#include "dialects/W4A4Kernel/W4A4KernelDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::w4a4k;

#include "dialects/W4A4Kernel/W4A4KernelDialect.cpp.inc"

#define GET_TYPEDEF_CLASSES
#include "dialects/W4A4Kernel/W4A4KernelTypes.cpp.inc"

#define GET_OP_CLASSES
#include "dialects/W4A4Kernel/W4A4KernelOps.cpp.inc"

void W4A4KDialect::initialize() {
  addTypes<
#define GET_TYPEDEF_LIST
#include "dialects/W4A4Kernel/W4A4KernelTypes.cpp.inc"
      >();
  addOperations<
#define GET_OP_LIST
#include "dialects/W4A4Kernel/W4A4KernelOps.cpp.inc"
      >();
}

/// The constraints every op making quantized rows shares (quantize_c1..c3).
static LogicalResult verifyQuantized(Operation *op, QRowsType t, Value input,
                                     FloatAttr clipRatio) {
  if (t.getBits() < 2 || t.getBits() > 8)
    return op->emitOpError("(w4a4k.quantize_c1) quantizes to 2..8 bits, not ")
           << t.getBits();
  if (cast<RankedTensorType>(input.getType()).getShape().back() != t.getWidth())
    return op->emitOpError("(w4a4k.quantize_c2) the result's width ")
           << t.getWidth() << " differs from the input's";
  double clip = clipRatio.getValueAsDouble();
  if (!(clip > 0.0 && clip <= 1.0))
    return op->emitOpError("(w4a4k.quantize_c3) clip_ratio must be in (0, 1]");
  return success();
}

LogicalResult QuantizeOp::verify() {
  return verifyQuantized(*this, getType(), getInput(), getClipRatioAttr());
}

LogicalResult RMSNormQuantizeOp::verify() {
  if (Value g = getGain())
    if (cast<RankedTensorType>(g.getType()).getNumElements() !=
        getInput().getType().getShape().back())
      return emitOpError("(w4a4k.rms_norm_quantize_c1) the gain has one "
                         "value per feature");
  return verifyQuantized(*this, getType(), getInput(), getClipRatioAttr());
}

LogicalResult SwiGLUQuantizeOp::verify() {
  if (getGate().getType() != getUp().getType())
    return emitOpError("(w4a4k.swiglu_quantize_c1) gate and up must have one "
                       "type");
  int64_t width = getGate().getType().getShape().back();
  int64_t size = getHadamardSize(), stride = getHadamardStride();
  if (size < 0 || stride < 1 || (size > 0 && width % (size * stride) != 0))
    return emitOpError("(w4a4k.swiglu_quantize_c2) hadamard_size x "
                       "hadamard_stride must divide the width ")
           << width;
  if (getSigns() &&
      (size == 0 ||
       cast<RankedTensorType>(getSigns().getType()).getNumElements() != width))
    return emitOpError("(w4a4k.swiglu_quantize_c3) signs need a Hadamard and "
                       "one value per feature");
  return verifyQuantized(*this, getType(), getGate(), getClipRatioAttr());
}

LogicalResult QGemmOp::verify() {
  QRowsType x = getInput().getType();
  int64_t bits = getWeightBits(), out = getOutFeatures();
  auto codes = getCodes().getType();
  if (getLayout() != "cpu_vnni_panels")
    return emitOpError("(w4a4k.qgemm_c1) unknown weight layout '")
           << getLayout() << "' (known: cpu_vnni_panels)";
  if (bits < 2 || bits > 8 || codes.getRank() != 2 ||
      codes.getDimSize(0) != out)
    return emitOpError("(w4a4k.qgemm_c2) codes must be [out_features, packed "
                       "inputs] of 2..8-bit codes");
  int64_t perByte = (bits == 2 || bits == 4) ? 8 / bits : 1;
  if (codes.getDimSize(1) != (x.getWidth() + perByte - 1) / perByte)
    return emitOpError("(w4a4k.qgemm_c3) codes hold ")
           << codes.getDimSize(1) << " bytes per row; " << x.getWidth()
           << " inputs of " << bits << " bits need "
           << (x.getWidth() + perByte - 1) / perByte;
  auto result = getType();
  if (result.getShape().back() != out)
    return emitOpError("(w4a4k.qgemm_c4) the result's width differs from "
                       "out_features");
  if (Value r = getResidual(); r && r.getType() != result)
    return emitOpError("(w4a4k.qgemm_c5) the residual must have the result's "
                       "type");
  return success();
}
