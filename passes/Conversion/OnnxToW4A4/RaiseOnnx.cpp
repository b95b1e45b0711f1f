//===- RaiseOnnx.cpp - raise w4a4.onnx subgraphs to model-level ops -------===//
//
// Each pattern is named (its debug name) after the subgraph it raises; the
// pass description in Passes.td lists them by phase. Patterns check structure
// and every constant that matters (axes, exponents, table values) and leave
// anything else alone; the pass then reports what could not be raised.
//
//===----------------------------------------------------------------------===//

#include "dialects/W4A4/W4A4Ops.h"
#include "dialects/W4A4/W4A4Utils.h"
#include "passes/Conversion/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "mlir/IR/Matchers.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#include "llvm/ADT/StringExtras.h"

#include <cmath>
#include <cstring>

namespace mlir::w4a4 {
#define GEN_PASS_DEF_W4A4RAISEONNX
#include "passes/Conversion/Passes.h.inc"
} // namespace mlir::w4a4

using namespace mlir;
using namespace mlir::w4a4;

namespace {

//===----------------------------------------------------------------------===//
// Matching helpers
//===----------------------------------------------------------------------===//

OnnxOp def(Value v, StringRef opType) {
  auto op = v ? v.getDefiningOp<OnnxOp>() : OnnxOp();
  return op && op.getOpType() == opType ? op : OnnxOp();
}

int64_t attrInt(OnnxOp op, StringRef name, int64_t dflt) {
  if (DictionaryAttr d = op.getOnnxAttrsAttr())
    if (auto a = d.getAs<IntegerAttr>(name))
      return a.getInt();
  return dflt;
}

std::optional<SmallVector<int64_t>> attrInts(OnnxOp op, StringRef name) {
  if (DictionaryAttr d = op.getOnnxAttrsAttr())
    if (auto a = d.getAs<DenseI64ArrayAttr>(name))
      return SmallVector<int64_t>(a.asArrayRef());
  return std::nullopt;
}

std::optional<SmallVector<int64_t>> constInts(Value v) {
  DenseIntElementsAttr attr;
  if (!v || !matchPattern(v, m_Constant(&attr)))
    return std::nullopt;
  SmallVector<int64_t> out;
  for (const APInt &x : attr.getValues<APInt>())
    out.push_back(x.getSExtValue());
  return out;
}

std::optional<double> constScalar(Value v) {
  DenseFPElementsAttr attr;
  if (!v || !matchPattern(v, m_Constant(&attr)) || attr.getNumElements() != 1)
    return std::nullopt;
  return (*attr.getValues<APFloat>().begin()).convertToDouble();
}

std::optional<std::vector<double>> constFloats(Attribute attr) {
  return readFloats(attr);
}

WeightOp weightDef(Value v) {
  return v ? v.getDefiningOp<WeightOp>() : WeightOp();
}

RankedTensorType rankedFloat(Value v) {
  auto t = dyn_cast<RankedTensorType>(v.getType());
  return t && isa<FloatType>(t.getElementType()) ? t : RankedTensorType();
}

WeightOp makeF32Weight(PatternRewriter &rewriter, Location loc, StringRef name,
                       ArrayRef<int64_t> shape, ArrayRef<float> values) {
  return createF32Weight(rewriter, loc, name, shape, values);
}

/// Matches either operand order of a binary op: returns true with `a` the
/// operand satisfying `pred` and `b` the other.
template <typename Pred>
bool eitherOperand(OnnxOp op, Value &a, Value &b, Pred pred) {
  if (op.getNumOperands() != 2)
    return false;
  Value x = op.getOperand(0), y = op.getOperand(1);
  if (pred(x)) {
    a = x, b = y;
    return true;
  }
  if (pred(y)) {
    a = y, b = x;
    return true;
  }
  return false;
}

bool isLastAxis(int64_t axis, int64_t rank) {
  return axis == -1 || (rank > 0 && axis == rank - 1);
}

//===----------------------------------------------------------------------===//
// Phase 1
//===----------------------------------------------------------------------===//

/// Integer shape arithmetic on constants (Unsqueeze, Squeeze, Concat, Cast
/// between integer types, Identity) folds to an arith.constant, so that
/// patterns can read slice bounds and axes.
struct FoldIntConstant : OpRewritePattern<OnnxOp> {
  FoldIntConstant(MLIRContext *ctx) : OpRewritePattern(ctx) {
    setDebugName("fold-int-constant");
  }
  LogicalResult matchAndRewrite(OnnxOp op,
                                PatternRewriter &rewriter) const override {
    StringRef type = op.getOpType();
    if (op.getNumResults() != 1 ||
        !llvm::is_contained(
            {"Unsqueeze", "Squeeze", "Concat", "Cast", "Identity"}, type))
      return failure();
    auto result = dyn_cast<RankedTensorType>(op.getResult(0).getType());
    if (!result || !result.hasStaticShape() ||
        !isa<IntegerType>(result.getElementType()) ||
        result.getElementType().getIntOrFloatBitWidth() != 64)
      return failure();
    SmallVector<int64_t> values;
    for (auto [i, operand] : llvm::enumerate(op.getOperands())) {
      std::optional<SmallVector<int64_t>> v = constInts(operand);
      if (!v)
        return failure();
      // Unsqueeze/Squeeze: only the data operand contributes values.
      if (i == 0 || type == "Concat")
        values.append(v->begin(), v->end());
    }
    if (type == "Cast" && attrInt(op, "to", 0) != 7)
      return failure();
    if (static_cast<int64_t>(values.size()) != result.getNumElements())
      return failure();
    rewriter.replaceOpWithNewOp<arith::ConstantOp>(
        op, DenseElementsAttr::get(result, ArrayRef<int64_t>(values)));
    return success();
  }
};

/// Cast(weight f16|bf16|f64 -> f32) becomes one f32 weight of the same name.
struct CastWeight : OpRewritePattern<OnnxOp> {
  CastWeight(MLIRContext *ctx) : OpRewritePattern(ctx) {
    setDebugName("cast-weight");
  }
  LogicalResult matchAndRewrite(OnnxOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getOpType() != "Cast" || attrInt(op, "to", 0) != 1 ||
        op.getNumOperands() != 1)
      return failure();
    WeightOp w = weightDef(op.getOperand(0));
    if (!w || w.getType().getElementType().isF32())
      return failure();
    std::optional<std::vector<double>> values = constFloats(w.getValue());
    if (!values)
      return rewriter.notifyMatchFailure(op, "weight data not readable");
    std::vector<float> f32(values->begin(), values->end());
    WeightOp nw = makeF32Weight(rewriter, w.getLoc(), w.getName(),
                                w.getType().getShape(), f32);
    rewriter.replaceOp(op, nw.getResult());
    return success();
  }
};

/// Gather(table [vocab, hidden], ids) on axis 0 -> embedding.
struct RaiseEmbedding : OpRewritePattern<OnnxOp> {
  RaiseEmbedding(MLIRContext *ctx) : OpRewritePattern(ctx) {
    setDebugName("embedding");
  }
  LogicalResult matchAndRewrite(OnnxOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getOpType() != "Gather" || attrInt(op, "axis", 0) != 0 ||
        op.getNumOperands() != 2)
      return failure();
    WeightOp table = weightDef(op.getOperand(0));
    auto ids = dyn_cast<RankedTensorType>(op.getOperand(1).getType());
    if (!table || !table.getType().getElementType().isF32() ||
        table.getType().getRank() != 2 || !ids || ids.getRank() == 0 ||
        !isa<IntegerType>(ids.getElementType()))
      return failure();
    SmallVector<int64_t> shape(ids.getShape());
    shape.push_back(table.getType().getDimSize(1));
    auto type = RankedTensorType::get(shape, rewriter.getF32Type());
    rewriter.replaceOpWithNewOp<EmbeddingOp>(op, type, table, op.getOperand(1));
    return success();
  }
};

/// MatMul(x, Transpose(W, perm = [1, 0])) with W [out, in] -> linear(x, W).
struct RaiseLinear : OpRewritePattern<OnnxOp> {
  RaiseLinear(MLIRContext *ctx) : OpRewritePattern(ctx) {
    setDebugName("linear");
  }
  LogicalResult matchAndRewrite(OnnxOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getOpType() != "MatMul" || op.getNumOperands() != 2)
      return failure();
    OnnxOp t = def(op.getOperand(1), "Transpose");
    RankedTensorType x = rankedFloat(op.getOperand(0));
    if (!t || !x || attrInts(t, "perm") != SmallVector<int64_t>{1, 0})
      return failure();
    WeightOp w = weightDef(t.getOperand(0));
    if (!w || w.getType().getRank() != 2 ||
        w.getType().getElementType() != x.getElementType() ||
        x.getShape().back() != w.getType().getDimSize(1))
      return failure();
    SmallVector<int64_t> shape(x.getShape());
    shape.back() = w.getType().getDimSize(0);
    rewriter.replaceOpWithNewOp<LinearOp>(
        op, RankedTensorType::get(shape, x.getElementType()), op.getOperand(0),
        w, Value());
    return success();
  }
};

/// x / Sqrt(ReduceMean(Pow(x, 2), last axis, keepdims) + eps) -> rms_norm(x).
struct RaiseRMSNorm : OpRewritePattern<OnnxOp> {
  RaiseRMSNorm(MLIRContext *ctx) : OpRewritePattern(ctx) {
    setDebugName("rms-norm");
  }
  LogicalResult matchAndRewrite(OnnxOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getOpType() != "Div" || op.getNumOperands() != 2)
      return failure();
    Value x = op.getOperand(0);
    RankedTensorType xt = rankedFloat(x);
    OnnxOp sqrt = def(op.getOperand(1), "Sqrt");
    if (!xt || !sqrt)
      return failure();
    OnnxOp add = def(sqrt.getOperand(0), "Add");
    if (!add)
      return failure();
    Value mean, epsValue;
    if (!eitherOperand(add, mean, epsValue,
                       [](Value v) { return bool(def(v, "ReduceMean")); }))
      return failure();
    std::optional<double> eps = constScalar(epsValue);
    OnnxOp rm = def(mean, "ReduceMean");
    if (!eps || !(*eps > 0) || attrInt(rm, "keepdims", 1) != 1)
      return failure();
    std::optional<SmallVector<int64_t>> axes = attrInts(rm, "axes");
    if (!axes && rm.getNumOperands() == 2)
      axes = constInts(rm.getOperand(1)); // opset >= 18
    if (!axes || axes->size() != 1 || !isLastAxis((*axes)[0], xt.getRank()))
      return failure();
    OnnxOp pow = def(rm.getOperand(0), "Pow");
    if (!pow || pow.getOperand(0) != x || constScalar(pow.getOperand(1)) != 2.0)
      return failure();
    // The exported epsilon is an f32 constant; keep the value it has.
    rewriter.replaceOpWithNewOp<RMSNormOp>(op, xt, x, Value(),
                                           rewriter.getF64FloatAttr(*eps));
    return success();
  }
};

/// rms_norm(x) * g, g [hidden] -> rms_norm(x) gain(g).
struct RaiseRMSNormGain : OpRewritePattern<OnnxOp> {
  RaiseRMSNormGain(MLIRContext *ctx) : OpRewritePattern(ctx) {
    setDebugName("rms-norm-gain");
  }
  LogicalResult matchAndRewrite(OnnxOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getOpType() != "Mul")
      return failure();
    Value n, g;
    if (!eitherOperand(op, n, g, [](Value v) {
          auto norm = v.getDefiningOp<RMSNormOp>();
          return norm && !norm.getGain() && v.hasOneUse();
        }))
      return failure();
    auto norm = n.getDefiningOp<RMSNormOp>();
    WeightOp w = weightDef(g);
    if (!w || w.getType().getRank() != 1 ||
        w.getType().getDimSize(0) != norm.getType().getShape().back() ||
        w.getType().getElementType() != norm.getType().getElementType())
      return failure();
    rewriter.replaceOpWithNewOp<RMSNormOp>(op, norm.getType(), norm.getInput(),
                                           g, norm.getEpsilonAttr());
    return success();
  }
};

/// (a * Sigmoid(a)) * b -> swiglu(a, b).
struct RaiseSwiGLU : OpRewritePattern<OnnxOp> {
  RaiseSwiGLU(MLIRContext *ctx) : OpRewritePattern(ctx) {
    setDebugName("swiglu");
  }
  static Value siluInput(Value v) {
    OnnxOp mul = def(v, "Mul");
    if (!mul)
      return {};
    Value a, s;
    if (eitherOperand(mul, s, a,
                      [](Value x) { return bool(def(x, "Sigmoid")); }) &&
        def(s, "Sigmoid").getOperand(0) == a)
      return a;
    return {};
  }
  LogicalResult matchAndRewrite(OnnxOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getOpType() != "Mul")
      return failure();
    Value silu, up;
    if (!eitherOperand(op, silu, up,
                       [](Value v) { return bool(siluInput(v)); }))
      return failure();
    Value gate = siluInput(silu);
    RankedTensorType t = rankedFloat(gate);
    if (!t || up.getType() != t)
      return failure();
    rewriter.replaceOpWithNewOp<SwiGLUOp>(op, t, gate, up);
    return success();
  }
};

//===----------------------------------------------------------------------===//
// Phase 2: attention and Depth Registers
//===----------------------------------------------------------------------===//

/// Transpose(Reshape(flat [b, t, h * d]), perm = [0, 2, 1, 3]) -> flat.
Value matchSplitHeads(Value v4) {
  OnnxOp tr = def(v4, "Transpose");
  if (!tr || attrInts(tr, "perm") != SmallVector<int64_t>{0, 2, 1, 3})
    return {};
  OnnxOp rs = def(tr.getOperand(0), "Reshape");
  if (!rs)
    return {};
  Value flat = rs.getOperand(0);
  RankedTensorType t = rankedFloat(flat);
  return t && t.getRank() == 3 && !ShapedType::isDynamic(t.getShape().back())
             ? flat
             : Value();
}

/// Reshape(Expand(Unsqueeze(x4, axes = [2]), ...), ...) (repeat of KV heads
/// for GQA) -> x4; anything else -> itself.
Value skipRepeatKV(Value v) {
  OnnxOp rs = def(v, "Reshape");
  OnnxOp ex = rs ? def(rs.getOperand(0), "Expand") : OnnxOp();
  OnnxOp un = ex ? def(ex.getOperand(0), "Unsqueeze") : OnnxOp();
  if (!un)
    return v;
  std::optional<SmallVector<int64_t>> axes = attrInts(un, "axes");
  if (!axes && un.getNumOperands() == 2)
    axes = constInts(un.getOperand(1));
  return axes && *axes == SmallVector<int64_t>{2} ? un.getOperand(0) : v;
}

struct RopeMatch {
  Value x4;
  Attribute cosTable, sinTable;
  int64_t offset = 0;
};

/// A table Slice(table [positions, head_dim], starts = [p0], ...) on axis 0.
std::optional<std::pair<Attribute, int64_t>> matchTable(Value v) {
  OnnxOp slice = def(v, "Slice");
  Attribute table;
  if (!slice || slice.getNumOperands() < 3 ||
      !matchPattern(slice.getOperand(0), m_Constant(&table)))
    return std::nullopt;
  std::optional<SmallVector<int64_t>> starts = constInts(slice.getOperand(1));
  std::optional<SmallVector<int64_t>> axes =
      slice.getNumOperands() > 3 ? constInts(slice.getOperand(3))
                                 : SmallVector<int64_t>{0};
  if (!starts || starts->size() != 1 || !axes ||
      *axes != SmallVector<int64_t>{0})
    return std::nullopt;
  return std::make_pair(table, (*starts)[0]);
}

/// x4 * cos + Concat(-Slice(x4), Slice(x4), axis = -1) * sin (rotate half).
std::optional<RopeMatch> matchRope(Value v) {
  OnnxOp add = def(v, "Add");
  if (!add)
    return std::nullopt;
  for (int swap = 0; swap < 2; ++swap) {
    OnnxOp m1 = def(add.getOperand(swap), "Mul"),
           m2 = def(add.getOperand(1 - swap), "Mul");
    if (!m1 || !m2)
      continue;
    for (int a = 0; a < 2; ++a)
      for (int b = 0; b < 2; ++b) {
        Value x4 = m1.getOperand(a);
        auto cos = matchTable(m1.getOperand(1 - a));
        OnnxOp cat = def(m2.getOperand(b), "Concat");
        auto sin = matchTable(m2.getOperand(1 - b));
        if (!cos || !sin || !cat || cat.getNumOperands() != 2 ||
            cos->second != sin->second)
          continue;
        int64_t axis = attrInt(cat, "axis", 0);
        OnnxOp neg = def(cat.getOperand(0), "Neg");
        OnnxOp hi = neg ? def(neg.getOperand(0), "Slice") : OnnxOp();
        OnnxOp lo = def(cat.getOperand(1), "Slice");
        if (!hi || !lo || hi.getOperand(0) != x4 || lo.getOperand(0) != x4 ||
            !(axis == -1 || axis == 3))
          continue;
        return RopeMatch{x4, cos->first, sin->first, cos->second};
      }
  }
  return std::nullopt;
}

/// theta such that table[p][i] = cos|sin(p * theta^(-2 (i mod d/2) / d)),
/// verified over the whole table. The estimate from the fp32 table is off in
/// the last digits; the nearest integer is preferred when it verifies.
std::optional<double> ropeTheta(Attribute cosAttr, Attribute sinAttr,
                                int64_t headDim) {
  auto cosV = constFloats(cosAttr), sinV = constFloats(sinAttr);
  auto type = cast<ShapedType>(cast<ElementsAttr>(cosAttr).getType());
  if (!cosV || !sinV || type.getRank() != 2 || type.getDimSize(1) != headDim ||
      type.getDimSize(0) < 2 || headDim < 4)
    return std::nullopt;
  int64_t rows = type.getDimSize(0), half = headDim / 2;
  auto verifies = [&](double theta) {
    for (int64_t p = 0; p < rows; ++p)
      for (int64_t i = 0; i < headDim; ++i) {
        double ang = p * std::pow(theta, -2.0 * (i % half) / headDim);
        if (std::abs(static_cast<float>(std::cos(ang)) -
                     (*cosV)[p * headDim + i]) > 1e-5 ||
            std::abs(static_cast<float>(std::sin(ang)) -
                     (*sinV)[p * headDim + i]) > 1e-5)
          return false;
      }
    return true;
  };
  double inv1 = std::atan2((*sinV)[headDim + 1], (*cosV)[headDim + 1]);
  if (!(inv1 > 0))
    return std::nullopt;
  double estimate = std::pow(inv1, -static_cast<double>(headDim) / 2.0);
  for (double theta : {std::round(estimate), estimate})
    if (theta > 0 && verifies(theta))
      return theta;
  return std::nullopt;
}

/// A constant [n, n] boolean matrix, true exactly above the diagonal, read
/// through Slices that start at 0 (the exporters' sliced mask buffer).
bool isConstantCausalMask(Value cond) {
  while (OnnxOp slice = def(cond, "Slice")) {
    auto starts = constInts(slice.getOperand(1));
    if (!starts || llvm::any_of(*starts, [](int64_t s) { return s != 0; }))
      return false;
    cond = slice.getOperand(0);
  }
  DenseElementsAttr attr;
  if (!matchPattern(cond, m_Constant(&attr)) ||
      !attr.getElementType().isInteger(1))
    return false;
  auto type = cast<ShapedType>(attr.getType());
  if (type.getRank() != 2 || type.getDimSize(0) != type.getDimSize(1))
    return false;
  int64_t n = type.getDimSize(0), idx = 0;
  for (bool v : attr.getValues<bool>()) {
    if (v != (idx % n > idx / n))
      return false;
    ++idx;
  }
  return true;
}

/// Causal mask: Greater(Unsqueeze(Range(0, t, 1), [0]), Unsqueeze(Range, [1])),
/// or a sliced constant mask, possibly behind a Cast to bool.
bool isCausalMask(Value cond) {
  if (OnnxOp cast = def(cond, "Cast"); cast && attrInt(cast, "to", 0) == 9)
    cond = cast.getOperand(0);
  if (isConstantCausalMask(cond))
    return true;
  OnnxOp gt = def(cond, "Greater");
  if (!gt)
    return false;
  OnnxOp u0 = def(gt.getOperand(0), "Unsqueeze"),
         u1 = def(gt.getOperand(1), "Unsqueeze");
  if (!u0 || !u1 || u0.getOperand(0) != u1.getOperand(0))
    return false;
  OnnxOp range = def(u0.getOperand(0), "Range");
  return range && constInts(u0.getOperand(1)) == SmallVector<int64_t>{0} &&
         constInts(u1.getOperand(1)) == SmallVector<int64_t>{1} &&
         constInts(range.getOperand(0)) == SmallVector<int64_t>{0} &&
         constInts(range.getOperand(2)) == SmallVector<int64_t>{1};
}

/// The attention block, anchored at the final Reshape back to
/// [batch, seq, heads * head_dim].
struct RaiseAttention : OpRewritePattern<OnnxOp> {
  RaiseAttention(MLIRContext *ctx) : OpRewritePattern(ctx) {
    setDebugName("attention");
  }
  LogicalResult matchAndRewrite(OnnxOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getOpType() != "Reshape")
      return failure();
    RankedTensorType outType = rankedFloat(op.getResult(0));
    OnnxOp tr = def(op.getOperand(0), "Transpose");
    if (!outType || outType.getRank() != 3 || !tr ||
        attrInts(tr, "perm") != SmallVector<int64_t>{0, 2, 1, 3})
      return failure();
    OnnxOp pv = def(tr.getOperand(0), "MatMul");
    OnnxOp sm = pv ? def(pv.getOperand(0), "Softmax") : OnnxOp();
    if (!sm || !(attrInt(sm, "axis", -1) == -1 || attrInt(sm, "axis", -1) == 3))
      return failure();
    OnnxOp where = def(sm.getOperand(0), "Where");
    if (!where || !isCausalMask(where.getOperand(0)))
      return rewriter.notifyMatchFailure(op, "no causal mask");
    std::optional<double> fill = constScalar(where.getOperand(1));
    if (!fill || !(*fill < -1e30)) // -inf or a huge negative fill
      return failure();
    OnnxOp div = def(where.getOperand(2), "Div");
    std::optional<double> divisor =
        div ? constScalar(div.getOperand(1)) : std::nullopt;
    OnnxOp qk = div ? def(div.getOperand(0), "MatMul") : OnnxOp();
    if (!divisor || !(*divisor > 0) || !qk)
      return failure();
    OnnxOp kt = def(qk.getOperand(1), "Transpose");
    if (!kt || attrInts(kt, "perm") != SmallVector<int64_t>{0, 1, 3, 2})
      return failure();
    std::optional<RopeMatch> qRope = matchRope(qk.getOperand(0));
    std::optional<RopeMatch> kRope = matchRope(skipRepeatKV(kt.getOperand(0)));
    if (!qRope || !kRope)
      return rewriter.notifyMatchFailure(op, "no rotate-half RoPE on q and k");
    Value qFlat = matchSplitHeads(qRope->x4),
          kFlat = matchSplitHeads(kRope->x4),
          vFlat = matchSplitHeads(skipRepeatKV(pv.getOperand(1)));
    if (!qFlat || !kFlat || !vFlat)
      return failure();
    auto tableType =
        cast<ShapedType>(cast<ElementsAttr>(qRope->cosTable).getType());
    int64_t headDim = tableType.getRank() == 2 ? tableType.getDimSize(1) : 0;
    int64_t qWidth = rankedFloat(qFlat).getShape().back();
    int64_t kvWidth = rankedFloat(kFlat).getShape().back();
    if (headDim <= 0 || qWidth % headDim || kvWidth % headDim ||
        rankedFloat(vFlat).getShape().back() != kvWidth ||
        qRope->offset != kRope->offset || qRope->cosTable != kRope->cosTable ||
        outType.getShape().back() != qWidth)
      return failure();
    std::optional<double> theta =
        ropeTheta(qRope->cosTable, qRope->sinTable, headDim);
    if (!theta)
      return rewriter.notifyMatchFailure(op, "RoPE tables match no theta");
    int64_t heads = qWidth / headDim, kvHeads = kvWidth / headDim;
    if (heads % kvHeads)
      return failure();
    Location loc = op.getLoc();
    auto rope = [&](Value flat) {
      return RoPEOp::create(rewriter, loc, flat.getType(), flat,
                            rewriter.getI64IntegerAttr(headDim),
                            rewriter.getF64FloatAttr(*theta),
                            rewriter.getI64IntegerAttr(qRope->offset),
                            UnitAttr())
          .getResult();
    };
    Value q = rope(qFlat), k = rope(kFlat);
    // The tables bound the positions the exported model supports.
    if (auto module = op->getParentOfType<ModuleOp>()) {
      int64_t rows = tableType.getDimSize(0) - qRope->offset;
      auto old = module->getAttrOfType<IntegerAttr>("w4a4.max_positions");
      if (!old || old.getInt() > rows)
        module->setAttr("w4a4.max_positions", rewriter.getI64IntegerAttr(rows));
    }
    double scale = 1.0 / *divisor;
    rewriter.replaceOpWithNewOp<AttentionOp>(
        op, qFlat.getType(), q, k, vFlat, Value(), Value(),
        rewriter.getI64IntegerAttr(heads), rewriter.getI64IntegerAttr(kvHeads),
        rewriter.getI64IntegerAttr(headDim),
        std::abs(scale * std::sqrt(static_cast<double>(headDim)) - 1.0) < 1e-6
            ? FloatAttr()
            : rewriter.getF64FloatAttr(scale));
    return success();
  }
};

/// Gather(registers [layers, k, hidden], l) on axis 0 -> (weight, l).
std::optional<std::pair<WeightOp, int64_t>> matchRegisterRow(Value v) {
  OnnxOp g = def(v, "Gather");
  if (!g || attrInt(g, "axis", 0) != 0)
    return std::nullopt;
  WeightOp w = weightDef(g.getOperand(0));
  std::optional<SmallVector<int64_t>> idx = constInts(g.getOperand(1));
  if (!w || w.getType().getRank() != 3 ||
      !w.getType().getElementType().isF32() || !idx || idx->size() != 1 ||
      (*idx)[0] < 0 || (*idx)[0] >= w.getType().getDimSize(0))
    return std::nullopt;
  return std::make_pair(w, (*idx)[0]);
}

/// The [k, hidden] weight of one layer's registers (a slice of the stacked
/// parameter), reused when it already exists.
Value registerWeight(PatternRewriter &rewriter, WeightOp stacked,
                     int64_t layer) {
  std::string name =
      (stacked.getName() + "[" + std::to_string(layer) + "]").str();
  for (Operation *user : stacked->getBlock()->getParent()->getOps<WeightOp>())
    if (cast<WeightOp>(user).getName() == name)
      return cast<WeightOp>(user).getResult();
  auto values = *constFloats(stacked.getValue());
  int64_t k = stacked.getType().getDimSize(1),
          d = stacked.getType().getDimSize(2);
  std::vector<float> row(values.begin() + layer * k * d,
                         values.begin() + (layer + 1) * k * d);
  OpBuilder::InsertionGuard guard(rewriter);
  rewriter.setInsertionPointAfter(stacked);
  return makeF32Weight(rewriter, stacked.getLoc(), name, {k, d}, row)
      .getResult();
}

/// Concat(Expand(Unsqueeze(Gather(R, l), [0])), h, axis = 1) -> registers
/// prepend.
struct RaiseRegistersPrepend : OpRewritePattern<OnnxOp> {
  RaiseRegistersPrepend(MLIRContext *ctx) : OpRewritePattern(ctx) {
    setDebugName("registers-prepend");
  }
  LogicalResult matchAndRewrite(OnnxOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getOpType() != "Concat" || attrInt(op, "axis", 0) != 1 ||
        op.getNumOperands() != 2)
      return failure();
    OnnxOp ex = def(op.getOperand(0), "Expand");
    OnnxOp un = ex ? def(ex.getOperand(0), "Unsqueeze") : OnnxOp();
    auto row = un ? matchRegisterRow(un.getOperand(0)) : std::nullopt;
    RankedTensorType h = rankedFloat(op.getOperand(1));
    RankedTensorType out = rankedFloat(op.getResult(0));
    if (!row || !h || !out || h.getRank() != 3)
      return failure();
    Value regs = registerWeight(rewriter, row->first, row->second);
    rewriter.replaceOpWithNewOp<RegistersOp>(op, out, RegisterMode::prepend,
                                             op.getOperand(1), regs);
    return success();
  }
};

/// A Slice of h on axis 1 from `start` (to the end when `toEnd`, else to
/// `end`).
bool isSeqSlice(OnnxOp s, int64_t start, std::optional<int64_t> end) {
  if (!s || s.getNumOperands() < 4)
    return false;
  auto starts = constInts(s.getOperand(1)), ends = constInts(s.getOperand(2)),
       axes = constInts(s.getOperand(3));
  std::optional<SmallVector<int64_t>> steps = s.getNumOperands() > 4
                                                  ? constInts(s.getOperand(4))
                                                  : SmallVector<int64_t>{1};
  if (!starts || !ends || !axes || !steps || *axes != SmallVector<int64_t>{1} ||
      *steps != SmallVector<int64_t>{1} ||
      *starts != SmallVector<int64_t>{start})
    return false;
  return end ? *ends == SmallVector<int64_t>{*end}
             : ends->size() == 1 && (*ends)[0] >= (int64_t{1} << 31);
}

/// Concat(Slice(h, 0:k) + Gather(R, l), Slice(h, k:), axis = 1) -> registers
/// add.
struct RaiseRegistersAdd : OpRewritePattern<OnnxOp> {
  RaiseRegistersAdd(MLIRContext *ctx) : OpRewritePattern(ctx) {
    setDebugName("registers-add");
  }
  LogicalResult matchAndRewrite(OnnxOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getOpType() != "Concat" || attrInt(op, "axis", 0) != 1 ||
        op.getNumOperands() != 2)
      return failure();
    OnnxOp add = def(op.getOperand(0), "Add");
    OnnxOp rest = def(op.getOperand(1), "Slice");
    if (!add || !rest)
      return failure();
    Value prefix, r;
    if (!eitherOperand(add, r, prefix,
                       [](Value v) { return bool(matchRegisterRow(v)); }))
      return failure();
    auto row = matchRegisterRow(r);
    int64_t k = row->first.getType().getDimSize(1);
    OnnxOp head = def(prefix, "Slice");
    Value h = rest.getOperand(0);
    if (!head || head.getOperand(0) != h || !isSeqSlice(head, 0, k) ||
        !isSeqSlice(rest, k, std::nullopt) || !rankedFloat(h) ||
        rankedFloat(h).getRank() != 3)
      return failure();
    Value regs = registerWeight(rewriter, row->first, row->second);
    rewriter.replaceOpWithNewOp<RegistersOp>(op, h.getType(), RegisterMode::add,
                                             h, regs);
    return success();
  }
};

//===----------------------------------------------------------------------===//
// Phase 3
//===----------------------------------------------------------------------===//

/// Add(x, y) of two [.., hidden] activations of one type -> add.
struct RaiseResidualAdd : OpRewritePattern<OnnxOp> {
  RaiseResidualAdd(MLIRContext *ctx) : OpRewritePattern(ctx) {
    setDebugName("residual-add");
  }
  LogicalResult matchAndRewrite(OnnxOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getOpType() != "Add" || op.getNumOperands() != 2)
      return failure();
    RankedTensorType t = rankedFloat(op.getOperand(0));
    if (!t || t.getRank() < 2 || op.getOperand(1).getType() != t ||
        op.getResult(0).getType() != t ||
        matchPattern(op.getOperand(0), m_Constant()) ||
        matchPattern(op.getOperand(1), m_Constant()))
      return failure();
    rewriter.replaceOpWithNewOp<AddOp>(op, t, op.getOperand(0),
                                       op.getOperand(1));
    return success();
  }
};

/// Slice(h, k:, axis = 1) of a residual that went through registers ->
/// registers strip.
struct RaiseRegistersStrip : OpRewritePattern<OnnxOp> {
  RaiseRegistersStrip(MLIRContext *ctx) : OpRewritePattern(ctx) {
    setDebugName("registers-strip");
  }
  LogicalResult matchAndRewrite(OnnxOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getOpType() != "Slice")
      return failure();
    RankedTensorType h = rankedFloat(op.getOperand(0));
    auto starts =
        op.getNumOperands() > 1 ? constInts(op.getOperand(1)) : std::nullopt;
    if (!h || h.getRank() != 3 || !starts || starts->size() != 1)
      return failure();
    int64_t k = (*starts)[0];
    if (k <= 0 || !isSeqSlice(op, k, std::nullopt))
      return failure();
    // The registers of the function with k rows.
    Value regs;
    op->getParentOfType<func::FuncOp>().walk([&](RegistersOp r) {
      if (r.getRegisters().getType().getDimSize(0) == k)
        regs = r.getRegisters();
    });
    if (!regs)
      return rewriter.notifyMatchFailure(op, "no Depth Registers with k rows");
    SmallVector<int64_t> shape(h.getShape());
    if (!ShapedType::isDynamic(shape[1]))
      shape[1] -= k;
    rewriter.replaceOpWithNewOp<RegistersOp>(
        op, RankedTensorType::get(shape, h.getElementType()),
        RegisterMode::strip, op.getOperand(0), regs);
    return success();
  }
};

struct W4A4RaiseOnnxPass
    : mlir::w4a4::impl::W4A4RaiseOnnxBase<W4A4RaiseOnnxPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    for (int phase = 1; phase <= 3; ++phase) {
      RewritePatternSet patterns(&getContext());
      populateRaiseOnnxPatterns(patterns, phase);
      if (failed(applyPatternsGreedily(module, std::move(patterns)))) {
        module.emitError("w4a4-raise-onnx: phase ")
            << phase << " did not converge";
        return signalPassFailure();
      }
    }
    if (!requireFullyRaised)
      return;
    OnnxOp left;
    int64_t count = 0;
    module.walk([&](OnnxOp op) {
      if (!left)
        left = op;
      ++count;
    });
    if (left) {
      auto opset = module->getAttrOfType<IntegerAttr>("w4a4.onnx_opset");
      left.emitError()
          << "node '" << left.getNodeName() << "' (op " << left.getOpType()
          << ", opset " << (opset ? opset.getInt() : 0)
          << ") could not be raised (" << count
          << " generic ops left): the graph is not a SwiGLU decoder that "
             "w4a4-raise-onnx understands";
      signalPassFailure();
    }
  }
};

} // namespace

void mlir::w4a4::populateRaiseOnnxPatterns(RewritePatternSet &patterns,
                                           int phase) {
  MLIRContext *ctx = patterns.getContext();
  if (phase == 1)
    patterns.add<FoldIntConstant, CastWeight, RaiseEmbedding, RaiseLinear,
                 RaiseRMSNorm, RaiseRMSNormGain, RaiseSwiGLU>(ctx);
  else if (phase == 2)
    patterns.add<RaiseAttention, RaiseRegistersPrepend, RaiseRegistersAdd>(ctx);
  else
    patterns.add<RaiseResidualAdd, RaiseRegistersStrip>(ctx);
}
