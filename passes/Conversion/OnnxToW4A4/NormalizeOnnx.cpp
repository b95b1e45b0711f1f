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

#include <cmath>
#include <cstdint>

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
        values.push_back(APInt(it.getWidth(),
                               // NaN / out of range: no UB in the cast.
                               std::isnan(d)  ? int64_t{0}
                               : d >= 9.2e18  ? INT64_MAX
                               : d <= -9.2e18 ? INT64_MIN
                                              : static_cast<int64_t>(d),
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

/// Initializers that are scalars or small integer tensors (exponents,
/// epsilons, axes, shapes written as initializers instead of Constant
/// nodes) are constants, so that patterns read them as they read Constant
/// nodes. Parameters (float tensors of rank >= 1) stay weights.
struct SmallWeightToConstant : OpRewritePattern<WeightOp> {
  SmallWeightToConstant(MLIRContext *ctx) : OpRewritePattern(ctx) {
    setDebugName("small-weight-constant");
  }
  LogicalResult matchAndRewrite(WeightOp op,
                                PatternRewriter &rewriter) const override {
    auto type = op.getType();
    bool scalar = type.getRank() == 0 || type.getNumElements() == 1;
    bool smallInt = isa<IntegerType>(type.getElementType()) &&
                    type.getNumElements() <= kMaxFoldElements;
    auto dense = dyn_cast<DenseElementsAttr>(op.getValue());
    if (!(scalar && isa<FloatType>(type.getElementType())) && !smallInt)
      return failure();
    if (!dense)
      return failure();
    rewriter.replaceOpWithNewOp<arith::ConstantOp>(op, dense);
    return success();
  }
};

std::optional<SmallVector<std::string>> dimsOf(Value v);

/// Identity, Cast to the type the value already has, and Reshape/Expand to
/// the symbolic shape it already has.
struct DropIdentity : OpRewritePattern<OnnxOp> {
  DropIdentity(MLIRContext *ctx) : OpRewritePattern(ctx) {
    setDebugName("drop-identity");
  }
  LogicalResult matchAndRewrite(OnnxOp op,
                                PatternRewriter &rewriter) const override {
    StringRef type = op.getOpType();
    // Reshape / Expand to the shape x already has (same symbolic dims).
    if ((type == "Reshape" || type == "Expand") && op.getNumResults() == 1 &&
        op.getNumOperands() == 2 &&
        op.getOperand(0).getType() == op.getResult(0).getType()) {
      auto a = dimsOf(op.getOperand(0)), b = dimsOf(op.getResult(0));
      if (a && b && *a == *b) {
        rewriter.replaceOp(op, op.getOperand(0));
        return success();
      }
    }
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
    double beta = attr("beta", 1);
    if (attr("alpha", 1) != 1 || (beta != 1 && beta != 0) || attr("transA", 0))
      return failure();
    bool bias = op.getNumOperands() > 2 && beta == 1;
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
                         bias ? "/matmul" : "")
                  .getResult(0);
    if (bias)
      y = createOnnx(rewriter, op, "Add", rt, ValueRange{y, op.getOperand(2)},
                     "")
              .getResult(0);
    rewriter.replaceOp(op, y);
    return success();
  }
};

//===----------------------------------------------------------------------===//
// Flattened token streams (Gemm-style exports): Reshape(x, [-1, last]) sinks
// below row-wise ops, so the stream keeps its [batch, seq, ...] shape.
//===----------------------------------------------------------------------===//

/// Reshape merging all leading dims of x into one, keeping the last dim
/// (x [b, s, n] -> [b * s, n]), or flattening integer ids [b, s] -> [b * s].
OnnxOp flattenDef(Value v) {
  OnnxOp rs = defOnnx(v, "Reshape");
  if (!rs || rs.getNumResults() != 1)
    return {};
  auto in = dyn_cast<RankedTensorType>(rs.getOperand(0).getType());
  auto out = dyn_cast<RankedTensorType>(rs.getResult(0).getType());
  if (!in || !out || in.getRank() < 2)
    return {};
  if (isa<IntegerType>(in.getElementType()))
    return out.getRank() == 1 && in.getRank() == 2 ? rs : OnnxOp();
  return out.getRank() == 2 && !in.isDynamicDim(in.getRank() - 1) &&
                 out.getDimSize(1) == in.getDimSize(in.getRank() - 1)
             ? rs
             : OnnxOp();
}

/// Stage 1's symbolic dims of v as strings (static dims as numbers).
std::optional<SmallVector<std::string>> dimsOf(Value v) {
  auto t = dyn_cast<RankedTensorType>(v.getType());
  if (!t)
    return std::nullopt;
  ArrayAttr a = stageOneDims(v);
  SmallVector<std::string> out;
  if (a && static_cast<int64_t>(a.size()) == t.getRank()) {
    for (Attribute s : a)
      out.push_back(cast<StringAttr>(s).str());
    return out;
  }
  if (!t.hasStaticShape())
    return std::nullopt;
  for (int64_t d : t.getShape())
    out.push_back(std::to_string(d));
  return out;
}

void setDims(PatternRewriter &rewriter, Operation *op,
             ArrayRef<std::string> dims) {
  SmallVector<Attribute> strs;
  for (const std::string &d : dims)
    strs.push_back(rewriter.getStringAttr(d));
  op->setAttr("w4a4.dims", rewriter.getArrayAttr(strs));
}

/// y -> Reshape(y, [-1, last]) (the flatten, re-applied below an op).
Value reflatten(PatternRewriter &rewriter, OnnxOp like, Value y,
                Type flatType) {
  auto t = cast<RankedTensorType>(flatType);
  SmallVector<int64_t> shape{-1};
  if (t.getRank() == 2)
    shape.push_back(t.getDimSize(1));
  auto cst = arith::ConstantOp::create(
      rewriter, like.getLoc(),
      DenseElementsAttr::get(
          RankedTensorType::get({(int64_t)shape.size()}, rewriter.getI64Type()),
          ArrayRef<int64_t>(shape)));
  return createOnnx(rewriter, like, "Reshape", flatType, ValueRange{y, cst},
                    "/flatten")
      .getResult(0);
}

/// The type of x with its last dim set to `last` (and the element type of
/// `elem`).
RankedTensorType withLast(Value x, int64_t last, Type elem) {
  auto t = cast<RankedTensorType>(x.getType());
  SmallVector<int64_t> shape(t.getShape());
  shape.back() = last;
  return RankedTensorType::get(shape, elem);
}

struct SinkFlatten : OpRewritePattern<OnnxOp> {
  SinkFlatten(MLIRContext *ctx) : OpRewritePattern(ctx) {
    setDebugName("sink-flatten");
  }
  LogicalResult matchAndRewrite(OnnxOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getNumResults() != 1 || op.getAbsentInputsAttr())
      return failure();
    StringRef type = op.getOpType();
    auto rt = dyn_cast<RankedTensorType>(op.getResult(0).getType());
    if (!rt)
      return failure();
    // Reshape(flatten(x), s) -> Reshape(x, s).
    if (type == "Reshape") {
      OnnxOp f = flattenDef(op.getOperand(0));
      if (!f)
        return failure();
      rewriter.modifyOpInPlace(op, [&] { op->setOperand(0, f.getOperand(0)); });
      return success();
    }
    // Gather(table, flatten(ids)) -> flatten(Gather(table, ids)).
    if (type == "Gather" && op.getNumOperands() == 2) {
      OnnxOp f = flattenDef(op.getOperand(1));
      auto table = dyn_cast<RankedTensorType>(op.getOperand(0).getType());
      if (!f || !table || table.getRank() != 2 || rt.getRank() != 2)
        return failure();
      Value ids = f.getOperand(0);
      auto idt = cast<RankedTensorType>(ids.getType());
      auto gt = RankedTensorType::get(
          {idt.getDimSize(0), idt.getDimSize(1), table.getDimSize(1)},
          table.getElementType());
      OnnxOp g = createOnnx(rewriter, op, "Gather", gt,
                            ValueRange{op.getOperand(0), ids}, "",
                            op.getOnnxAttrsAttr());
      if (auto d = dimsOf(ids)) {
        d->push_back(std::to_string(table.getDimSize(1)));
        setDims(rewriter, g, *d);
      }
      rewriter.replaceOp(op, reflatten(rewriter, op, g.getResult(0), rt));
      return success();
    }
    static const char *unary[] = {"Sigmoid",    "Neg",     "Sqrt", "Rsqrt",
                                  "Cast",       "Exp",     "Tanh", "Erf",
                                  "Reciprocal", "Identity"};
    static const char *binary[] = {"Add", "Mul", "Sub", "Div", "Pow"};
    bool isUnary = llvm::is_contained(unary, type) && op.getNumOperands() == 1;
    bool isBinary =
        llvm::is_contained(binary, type) && op.getNumOperands() == 2;
    bool isMatMul = type == "MatMul" && op.getNumOperands() == 2;
    bool isReduce = type == "ReduceMean" && op.getNumOperands() >= 1;
    if (!isUnary && !isBinary && !isMatMul && !isReduce)
      return failure();
    OnnxOp f = flattenDef(op.getOperand(0));
    Value other = isBinary || isMatMul ? op.getOperand(1) : Value();
    if (!f && isBinary && flattenDef(op.getOperand(1)) && type != "Sub" &&
        type != "Div" && type != "Pow") {
      // Commutative: the flattened operand second.
      f = flattenDef(op.getOperand(1));
      other = op.getOperand(0);
    }
    if (!f || rt.getRank() != 2)
      return failure();
    Value x = f.getOperand(0);
    SmallVector<Value> operands{x};
    if (isBinary) {
      auto ot = dyn_cast<RankedTensorType>(other.getType());
      if (!ot)
        return failure();
      if (OnnxOp g = flattenDef(other)) {
        // Both flattened from the same leading dims (the last may
        // broadcast: x * rsqrt(mean) with a [.., 1] mean).
        Value y = g.getOperand(0);
        auto xd = dimsOf(x), yd = dimsOf(y);
        if (!xd || !yd || xd->size() != yd->size() ||
            !std::equal(xd->begin(), xd->end() - 1, yd->begin()))
          return failure();
        operands.push_back(y);
      } else if (ot.getRank() <= 1 ||
                 (ot.getRank() == 2 && ot.getDimSize(0) == 1)) {
        operands.push_back(other); // broadcasts over the last dim only
      } else {
        return failure();
      }
      if (op.getOperand(0) != f.getResult(0))
        std::swap(operands[0], operands[1]);
    } else if (isMatMul) {
      auto wt = dyn_cast<RankedTensorType>(other.getType());
      if (!wt || wt.getRank() != 2)
        return failure();
      operands.push_back(other);
    } else if (isReduce) {
      auto axes = op.getOnnxAttrsAttr()
                      ? op.getOnnxAttrsAttr().getAs<DenseI64ArrayAttr>("axes")
                      : DenseI64ArrayAttr();
      if (!axes || axes.size() != 1 || !(axes[0] == -1 || axes[0] == 1) ||
          op.getNumOperands() != 1)
        return failure();
    }
    RankedTensorType nt = withLast(x, rt.getDimSize(1), rt.getElementType());
    DictionaryAttr attrs = op.getOnnxAttrsAttr();
    if (isReduce)
      attrs = rewriter.getDictionaryAttr(
          {rewriter.getNamedAttr("axes", rewriter.getDenseI64ArrayAttr({-1})),
           rewriter.getNamedAttr("keepdims", rewriter.getI64IntegerAttr(1))});
    OnnxOp n = createOnnx(rewriter, op, type, nt, operands, "", attrs);
    if (auto d = dimsOf(x)) {
      d->back() = std::to_string(rt.getDimSize(1));
      setDims(rewriter, n, *d);
    }
    rewriter.replaceOp(op, reflatten(rewriter, op, n.getResult(0), rt));
    return success();
  }
};

/// Reshape(x [b, s, h, d], [-1, h * d]) -> flatten(Reshape(x, [0, 0, h * d])):
/// heads merged back per token, then flattened (so the attention block ends
/// at a [b, s, h * d] Reshape).
struct SplitHeadMergeFlatten : OpRewritePattern<OnnxOp> {
  SplitHeadMergeFlatten(MLIRContext *ctx) : OpRewritePattern(ctx) {
    setDebugName("merge-heads-flatten");
  }
  LogicalResult matchAndRewrite(OnnxOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getOpType() != "Reshape" || op.getNumResults() != 1)
      return failure();
    auto in = dyn_cast<RankedTensorType>(op.getOperand(0).getType());
    auto out = dyn_cast<RankedTensorType>(op.getResult(0).getType());
    if (!in || !out || in.getRank() != 4 || out.getRank() != 2 ||
        in.isDynamicDim(2) || in.isDynamicDim(3) || out.isDynamicDim(1) ||
        out.getDimSize(1) != in.getDimSize(2) * in.getDimSize(3) ||
        !isa<FloatType>(in.getElementType()))
      return failure();
    int64_t width = out.getDimSize(1);
    auto cst = arith::ConstantOp::create(
        rewriter, op.getLoc(),
        DenseElementsAttr::get(
            RankedTensorType::get({3}, rewriter.getI64Type()),
            ArrayRef<int64_t>{0, 0, width}));
    auto mt = RankedTensorType::get({in.getDimSize(0), in.getDimSize(1), width},
                                    in.getElementType());
    OnnxOp merged = createOnnx(rewriter, op, "Reshape", mt,
                               ValueRange{op.getOperand(0), cst}, "/heads");
    if (auto d = dimsOf(op.getOperand(0)))
      setDims(rewriter, merged, {(*d)[0], (*d)[1], std::to_string(width)});
    rewriter.replaceOp(op, reflatten(rewriter, op, merged.getResult(0), out));
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
  patterns.add<FoldConstant, SmallWeightToConstant, DropIdentity,
               CanonicalRsqrt, CanonicalArith, SplitToSlices, GemmToMatMul,
               SinkFlatten, SplitHeadMergeFlatten>(patterns.getContext());
}
