//===- W4A4Folds.cpp - w4a4 folds and canonicalizations -------------------===//
//
// Every rewrite here is exact in floating point: the folded IR computes the
// same bits as the original.
//
//===----------------------------------------------------------------------===//

#include "dialects/W4A4/W4A4Ops.h"

#include "mlir/IR/Matchers.h"
#include "mlir/IR/PatternMatch.h"

using namespace mlir;
using namespace mlir::w4a4;

namespace {

/// True if `attr` is a float constant whose every element has exactly the bit
/// pattern of `value` (so +0.0 and -0.0 differ). Handles dense literals and
/// dense_resource blobs of f32; elided blobs never match.
bool isFloatSplat(Attribute attr, const APFloat &value) {
  auto same = [&](APFloat x) {
    bool losesInfo = false;
    APFloat v = value;
    v.convert(x.getSemantics(), APFloat::rmNearestTiesToEven, &losesInfo);
    return !losesInfo && x.bitwiseIsEqual(v);
  };
  if (auto dense = dyn_cast_or_null<DenseFPElementsAttr>(attr)) {
    if (dense.isSplat())
      return same(dense.getSplatValue<APFloat>());
    return llvm::all_of(dense.getValues<APFloat>(), same);
  }
  if (auto blob = dyn_cast_or_null<DenseF32ResourceElementsAttr>(attr)) {
    std::optional<ArrayRef<float>> values = blob.tryGetAsArrayRef();
    return values && !values->empty() &&
           llvm::all_of(*values, [&](float x) { return same(APFloat(x)); });
  }
  return false;
}

/// The value of a w4a4.weight or of a constant op.
Attribute constantValue(Value v) {
  if (!v)
    return {};
  if (auto weight = v.getDefiningOp<WeightOp>())
    return weight.getValue();
  Attribute attr;
  return matchPattern(v, m_Constant(&attr)) ? attr : Attribute();
}

bool isConstantSplat(Value v, const APFloat &value) {
  return isFloatSplat(constantValue(v), value);
}

/// rms_norm(x) gain(all ones) -> rms_norm(x): multiplying by 1.0 is exact.
struct DropUnitGain : OpRewritePattern<RMSNormOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(RMSNormOp op,
                                PatternRewriter &rewriter) const override {
    if (!isConstantSplat(op.getGain(), APFloat(1.0)))
      return rewriter.notifyMatchFailure(op, "gain is not a constant of ones");
    rewriter.replaceOpWithNewOp<RMSNormOp>(op, op.getType(), op.getInput(),
                                           /*gain=*/Value(), op.getEpsilon());
    return success();
  }
};

/// linear(x, W, +0.0) -> linear(x, W): the bias initializes the accumulator,
/// and a linear without bias starts it at +0.0, so the results are identical
/// bit for bit (this is not true of -0.0).
struct DropZeroBias : OpRewritePattern<LinearOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(LinearOp op,
                                PatternRewriter &rewriter) const override {
    if (!isConstantSplat(op.getBias(), APFloat(0.0)))
      return rewriter.notifyMatchFailure(op, "bias is not a constant +0.0");
    rewriter.replaceOpWithNewOp<LinearOp>(op, op.getType(), op.getInput(),
                                          op.getWeight(), /*bias=*/Value());
    return success();
  }
};

} // namespace

OpFoldResult AddOp::fold(FoldAdaptor) {
  // x + (-0.0) == x for every x, including -0.0 and NaN payloads; x + (+0.0)
  // turns -0.0 into +0.0, so only the negative zero folds (as arith.addf).
  APFloat negZero = APFloat::getZero(APFloat::IEEEdouble(), /*Negative=*/true);
  if (isConstantSplat(getRhs(), negZero))
    return getLhs();
  if (isConstantSplat(getLhs(), negZero))
    return getRhs();
  return {};
}

OpFoldResult RegistersOp::fold(FoldAdaptor) {
  // No registers: both modes are the identity.
  if (getRegisters().getType().getDimSize(0) == 0 &&
      getInput().getType() == getType())
    return getInput();
  return {};
}

OpFoldResult HadamardOp::fold(FoldAdaptor) {
  auto producer = getInput().getDefiningOp<HadamardOp>();
  if (!producer || producer.getKind() != getKind() ||
      producer.getSize() != getSize() || producer.getStride() != getStride() ||
      producer.getSignsAttr() != getSignsAttr() ||
      producer.getSeedAttr() != getSeedAttr())
    return {};
  // Q^T Q = Q Q^T = I.
  if (producer.getInverse() != getInverse())
    return producer.getInput();
  // The Sylvester matrix without signs is symmetric: Q = Q^T, so Q Q = I.
  if (getKind() == HadamardKind::walsh && !getSignsAttr() && !getSeedAttr())
    return producer.getInput();
  return {};
}

void RMSNormOp::getCanonicalizationPatterns(RewritePatternSet &results,
                                            MLIRContext *context) {
  results.add<DropUnitGain>(context);
}

void LinearOp::getCanonicalizationPatterns(RewritePatternSet &results,
                                           MLIRContext *context) {
  results.add<DropZeroBias>(context);
}
