//===- NormalizeOnnx.cpp - canonical generic IR before raising ------------===//
//
// w4a4-normalize-onnx: folds the shape arithmetic stage 1 evaluated
// (`w4a4.sym` values that are all constants) and every small all-constant
// subgraph to arith.constant, and rewrites the spellings exporters use for
// one meaning into one form, so that each raising pattern covers them all:
//   Identity, Cast to the same type              -> the operand
//   Reciprocal(Sqrt x), Div(1, Sqrt x), Pow(x, -0.5) -> Rsqrt(x)
//   Div(a, Sqrt x)                               -> Mul(a, Rsqrt x)
//   Div(x, c) (c a float constant)               -> Mul(x, 1 / c)
//   Pow(x, 2)                                    -> Mul(x, x)
//   Split                                        -> one Slice per output
//   Gemm(a, b, c)                                -> MatMul(a, b or b^T) + c
// `Rsqrt` is a normalized-form op type, not an ONNX op.
//
//===----------------------------------------------------------------------===//

#include "dialects/W4A4/W4A4Ops.h"
#include "passes/Conversion/OnnxToW4A4/Evaluate.h"
#include "passes/Conversion/OnnxToW4A4/SymExpr.h"
#include "passes/Conversion/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Matchers.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::w4a4 {
#define GEN_PASS_DEF_W4A4NORMALIZEONNX
#include "passes/Conversion/Passes.h.inc"
} // namespace mlir::w4a4

using namespace mlir;
using namespace mlir::w4a4;
namespace ox = ::w4a4::onnx_import;

namespace {

constexpr int64_t kMaxFoldElements = 64;

OnnxOp defOnnx(Value v, StringRef type) {
  auto op = v ? v.getDefiningOp<OnnxOp>() : OnnxOp();
  return op && op.getOpType() == type ? op : OnnxOp();
}

std::optional<double> scalarConst(Value v) {
  DenseFPElementsAttr attr;
  if (!v || !matchPattern(v, m_Constant(&attr)) || !attr.isSplat())
    return std::nullopt;
  return attr.getSplatValue<APFloat>().convertToDouble();
}

OnnxOp createOnnx(PatternRewriter &rewriter, OnnxOp like, StringRef type,
                  Type result, ValueRange operands, StringRef suffix,
                  DictionaryAttr attrs = {}) {
  return OnnxOp::create(
      rewriter, like.getLoc(), TypeRange{result}, operands,
      rewriter.getStringAttr(type),
      rewriter.getStringAttr((like.getNodeName() + suffix).str()), attrs,
      DenseI64ArrayAttr());
}

/// Results whose stage-1 values are all constants, and small subgraphs of
/// constants only, become arith.constant.
struct FoldConstant : OpRewritePattern<OnnxOp> {
  FoldConstant(MLIRContext *ctx) : OpRewritePattern(ctx) {
    setDebugName("fold-constant");
  }
  LogicalResult matchAndRewrite(OnnxOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getNumResults() != 1)
      return failure();
    auto type = dyn_cast<RankedTensorType>(op.getResult(0).getType());
    if (!type || !type.hasStaticShape() ||
        type.getNumElements() > kMaxFoldElements)
      return failure();
    Type elem = type.getElementType();
    if (auto sym = op->getAttrOfType<ArrayAttr>("w4a4.sym");
        sym && isa<IntegerType>(elem)) {
      SmallVector<APInt> values;
      for (Attribute a : sym) {
        auto e = ox::SymExpr::parse(cast<StringAttr>(a).str());
        if (!e || !e->isConst())
          return failure();
        values.push_back(APInt(elem.getIntOrFloatBitWidth(), *e->constant(),
                               /*isSigned=*/true, /*implicitTrunc=*/true));
      }
      if (static_cast<int64_t>(values.size()) != type.getNumElements())
        return failure();
      rewriter.replaceOpWithNewOp<arith::ConstantOp>(
          op, DenseElementsAttr::get(type, values));
      return success();
    }
    // All-constant operands: evaluate.
    if (op.getNumOperands() == 0 ||
        !llvm::all_of(op.getOperands(),
                      [](Value v) { return matchPattern(v, m_Constant()); }))
      return failure();
    SubgraphEvaluator eval(op->getParentOfType<func::FuncOp>(), 1);
    auto t = eval.eval(op.getResult(0));
    if (!t || t->numel() != type.getNumElements())
      return failure();
    DenseElementsAttr attr;
    if (auto ft = dyn_cast<FloatType>(elem)) {
      SmallVector<APFloat> values;
      for (double d : t->v) {
        APFloat f(d);
        bool lost;
        f.convert(ft.getFloatSemantics(), APFloat::rmNearestTiesToEven, &lost);
        values.push_back(f);
      }
      attr = DenseElementsAttr::get(type, values);
    } else if (auto it = dyn_cast<IntegerType>(elem)) {
      SmallVector<APInt> values;
      for (double d : t->v)
        values.push_back(APInt(it.getWidth(), static_cast<int64_t>(d),
                               /*isSigned=*/!it.isUnsigned(),
                               /*implicitTrunc=*/true));
      attr = DenseElementsAttr::get(type, values);
    } else {
      return failure();
    }
    rewriter.replaceOpWithNewOp<arith::ConstantOp>(op, attr);
    return success();
  }
};

/// Identity, and Cast to the type the value already has.
struct DropIdentity : OpRewritePattern<OnnxOp> {
  DropIdentity(MLIRContext *ctx) : OpRewritePattern(ctx) {
    setDebugName("drop-identity");
  }
  LogicalResult matchAndRewrite(OnnxOp op,
                                PatternRewriter &rewriter) const override {
    StringRef type = op.getOpType();
    if ((type != "Identity" && type != "Cast") || op.getNumOperands() != 1 ||
        op.getNumResults() != 1 ||
        op.getOperand(0).getType() != op.getResult(0).getType())
      return failure();
    rewriter.replaceOp(op, op.getOperand(0));
    return success();
  }
};

/// Reciprocal(Sqrt x) / Div(1, Sqrt x) / Pow(x, -0.5) -> Rsqrt(x);
/// Div(a, Sqrt x) -> Mul(a, Rsqrt x).
struct CanonicalRsqrt : OpRewritePattern<OnnxOp> {
  CanonicalRsqrt(MLIRContext *ctx) : OpRewritePattern(ctx) {
    setDebugName("rsqrt");
  }
  LogicalResult matchAndRewrite(OnnxOp op,
                                PatternRewriter &rewriter) const override {
    StringRef type = op.getOpType();
    Type result = op.getNumResults() == 1 ? op.getResult(0).getType() : Type();
    if (type == "Reciprocal" && op.getNumOperands() == 1) {
      if (OnnxOp sqrt = defOnnx(op.getOperand(0), "Sqrt")) {
        rewriter.replaceOp(op, createOnnx(rewriter, op, "Rsqrt", result,
                                          sqrt.getOperand(0), ""));
        return success();
      }
    }
    if (type == "Pow" && op.getNumOperands() == 2 &&
        scalarConst(op.getOperand(1)) == -0.5) {
      rewriter.replaceOp(
          op, createOnnx(rewriter, op, "Rsqrt", result, op.getOperand(0), ""));
      return success();
    }
    if (type == "Div" && op.getNumOperands() == 2) {
      OnnxOp sqrt = defOnnx(op.getOperand(1), "Sqrt");
      if (!sqrt)
        return failure();
      Type rt = sqrt.getResult(0).getType();
      bool one = scalarConst(op.getOperand(0)) == 1.0;
      if (one && rt != result)
        return failure();
      Value r = createOnnx(rewriter, op, "Rsqrt", rt, sqrt.getOperand(0),
                           one ? "" : "/rsqrt")
                    .getResult(0);
      if (one) {
        rewriter.replaceOp(op, r);
        return success();
      }
      if (op.getOperand(0).getType() != result)
        return failure();
      rewriter.replaceOp(op, createOnnx(rewriter, op, "Mul", result,
                                        ValueRange{op.getOperand(0), r}, ""));
      return success();
    }
    return failure();
  }
};

/// Div(x, c) -> Mul(x, 1 / c); Pow(x, 2) -> Mul(x, x).
struct CanonicalArith : OpRewritePattern<OnnxOp> {
  CanonicalArith(MLIRContext *ctx) : OpRewritePattern(ctx) {
    setDebugName("div-pow");
  }
  LogicalResult matchAndRewrite(OnnxOp op,
                                PatternRewriter &rewriter) const override {
    StringRef type = op.getOpType();
    if (op.getNumOperands() != 2 || op.getNumResults() != 1)
      return failure();
    auto result = dyn_cast<RankedTensorType>(op.getResult(0).getType());
    if (!result || !isa<FloatType>(result.getElementType()))
      return failure();
    std::optional<double> c = scalarConst(op.getOperand(1));
    if (!c)
      return failure();
    if (type == "Pow" && *c == 2.0 &&
        op.getOperand(0).getType() == op.getResult(0).getType()) {
      Value x = op.getOperand(0);
      rewriter.replaceOp(
          op, createOnnx(rewriter, op, "Mul", result, ValueRange{x, x}, ""));
      return success();
    }
    if (type != "Div" || *c == 0.0)
      return failure();
    auto ctype = cast<ShapedType>(op.getOperand(1).getType());
    auto ft = cast<FloatType>(ctype.getElementType());
    APFloat r(1.0 / *c);
    bool lost;
    r.convert(ft.getFloatSemantics(), APFloat::rmNearestTiesToEven, &lost);
    auto cst = arith::ConstantOp::create(
        rewriter, op.getLoc(),
        DenseElementsAttr::get(RankedTensorType::get(ctype.getShape(), ft), r));
    rewriter.replaceOp(op, createOnnx(rewriter, op, "Mul", result,
                                      ValueRange{op.getOperand(0), cst}, ""));
    return success();
  }
};

/// Split -> one Slice per output.
struct SplitToSlices : OpRewritePattern<OnnxOp> {
  SplitToSlices(MLIRContext *ctx) : OpRewritePattern(ctx) {
    setDebugName("split");
  }
  LogicalResult matchAndRewrite(OnnxOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getOpType() != "Split" || op.getNumOperands() < 1)
      return failure();
    auto x = dyn_cast<RankedTensorType>(op.getOperand(0).getType());
    if (!x)
      return failure();
    int64_t axis = 0;
    if (DictionaryAttr d = op.getOnnxAttrsAttr())
      if (auto a = d.getAs<IntegerAttr>("axis"))
        axis = a.getInt();
    if (axis < 0)
      axis += x.getRank();
    SmallVector<Value> results;
    int64_t start = 0;
    auto i64 = [&](int64_t v) {
      return arith::ConstantOp::create(
                 rewriter, op.getLoc(),
                 DenseElementsAttr::get(
                     RankedTensorType::get({1}, rewriter.getI64Type()),
                     ArrayRef<int64_t>{v}))
          .getResult();
    };
    for (auto [i, r] : llvm::enumerate(op.getResults())) {
      auto t = dyn_cast<RankedTensorType>(r.getType());
      if (!t || t.isDynamicDim(axis))
        return failure(); // sizes along a dynamic axis: not by constants
      int64_t size = t.getDimSize(axis);
      results.push_back(
          createOnnx(rewriter, op, "Slice", t,
                     ValueRange{op.getOperand(0), i64(start), i64(start + size),
                                i64(axis), i64(1)},
                     "/slice" + std::to_string(i))
              .getResult(0));
      start += size;
    }
    rewriter.replaceOp(op, results);
    return success();
  }
};

/// Gemm(a, b, c) with alpha = beta = 1 -> MatMul(a, b or Transpose(b)) + c.
struct GemmToMatMul : OpRewritePattern<OnnxOp> {
  GemmToMatMul(MLIRContext *ctx) : OpRewritePattern(ctx) {
    setDebugName("gemm");
  }
  LogicalResult matchAndRewrite(OnnxOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getOpType() != "Gemm" || op.getNumOperands() < 2 ||
        op.getAbsentInputsAttr())
      return failure();
    auto attr = [&](StringRef name, double dflt) {
      if (DictionaryAttr d = op.getOnnxAttrsAttr()) {
        if (auto a = d.getAs<IntegerAttr>(name))
          return double(a.getInt());
        if (auto a = d.getAs<FloatAttr>(name))
          return a.getValueAsDouble();
      }
      return dflt;
    };
    if (attr("alpha", 1) != 1 || attr("beta", 1) != 1 || attr("transA", 0))
      return failure();
    Value a = op.getOperand(0), b = op.getOperand(1);
    auto bt = dyn_cast<RankedTensorType>(b.getType());
    auto rt = dyn_cast<RankedTensorType>(op.getResult(0).getType());
    if (!bt || !rt)
      return failure();
    if (attr("transB", 0)) {
      auto t = RankedTensorType::get({bt.getDimSize(1), bt.getDimSize(0)},
                                     bt.getElementType());
      b = createOnnx(rewriter, op, "Transpose", t, b, "/transB",
                     rewriter.getDictionaryAttr(rewriter.getNamedAttr(
                         "perm", rewriter.getDenseI64ArrayAttr({1, 0}))))
              .getResult(0);
    }
    Value y = createOnnx(rewriter, op, "MatMul", rt, ValueRange{a, b},
                         op.getNumOperands() > 2 ? "/matmul" : "")
                  .getResult(0);
    if (op.getNumOperands() > 2)
      y = createOnnx(rewriter, op, "Add", rt, ValueRange{y, op.getOperand(2)},
                     "")
              .getResult(0);
    rewriter.replaceOp(op, y);
    return success();
  }
};

struct W4A4NormalizeOnnxPass
    : mlir::w4a4::impl::W4A4NormalizeOnnxBase<W4A4NormalizeOnnxPass> {
  using Base::Base;
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateNormalizeOnnxPatterns(patterns);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns)))) {
      getOperation().emitError("w4a4-normalize-onnx did not converge");
      signalPassFailure();
    }
  }
};

} // namespace

void mlir::w4a4::populateNormalizeOnnxPatterns(RewritePatternSet &patterns) {
  patterns.add<FoldConstant, DropIdentity, CanonicalRsqrt, CanonicalArith,
               SplitToSlices, GemmToMatMul>(patterns.getContext());
}
