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
#include "passes/Conversion/OnnxToW4A4/Evaluate.h"
#include "passes/Conversion/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "mlir/IR/Matchers.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
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
  return onnxAttrInt(op, name, dflt);
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
  if (!v)
    return {};
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

/// A [out, in] weight for `v`: W itself when v = Transpose(W [out, in]),
/// else a transposed copy of v = W [in, out] (exporters that fold the
/// transpose), reused when it exists.
Value outInWeight(PatternRewriter &rewriter, Value v, int64_t in) {
  if (OnnxOp t = def(v, "Transpose");
      t && attrInts(t, "perm") == SmallVector<int64_t>{1, 0})
    if (WeightOp w = weightDef(t.getOperand(0));
        w && w.getType().getRank() == 2 && w.getType().getDimSize(1) == in)
      return w.getResult();
  WeightOp w = weightDef(v);
  if (!w || w.getType().getRank() != 2 || w.getType().getDimSize(0) != in ||
      !w.getType().getElementType().isF32())
    return {};
  std::string name = (w.getName() + ".T").str();
  for (WeightOp other : w->getBlock()->getOps<WeightOp>())
    if (other.getName() == name)
      return other.getResult();
  auto values = constFloats(w.getValue());
  if (!values)
    return {};
  int64_t rows = w.getType().getDimSize(0), cols = w.getType().getDimSize(1);
  std::vector<float> t(values->size());
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j)
      t[j * rows + i] = static_cast<float>((*values)[i * cols + j]);
  OpBuilder::InsertionGuard guard(rewriter);
  rewriter.setInsertionPointAfter(w);
  return makeF32Weight(rewriter, w.getLoc(), name, {cols, rows}, t).getResult();
}

/// MatMul(x, Transpose(W [out, in])) or MatMul(x, W [in, out]) -> linear.
struct RaiseLinear : OpRewritePattern<OnnxOp> {
  RaiseLinear(MLIRContext *ctx) : OpRewritePattern(ctx) {
    setDebugName("linear");
  }
  LogicalResult matchAndRewrite(OnnxOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getOpType() != "MatMul" || op.getNumOperands() != 2)
      return failure();
    RankedTensorType x = rankedFloat(op.getOperand(0));
    if (!x || x.getRank() < 2 || x.isDynamicDim(x.getRank() - 1) ||
        !x.getElementType().isF32())
      return failure();
    Value w = outInWeight(rewriter, op.getOperand(1), x.getShape().back());
    if (!w)
      return failure();
    SmallVector<int64_t> shape(x.getShape());
    shape.back() = cast<ShapedType>(w.getType()).getDimSize(0);
    rewriter.replaceOpWithNewOp<LinearOp>(
        op, RankedTensorType::get(shape, x.getElementType()), op.getOperand(0),
        w, Value());
    return success();
  }
};

/// A Slice of a linear's output along the last axis (a packed QKV or
/// gate/up projection split after the GEMM) -> a linear over those rows.
struct RaiseSlicedLinear : OpRewritePattern<OnnxOp> {
  RaiseSlicedLinear(MLIRContext *ctx) : OpRewritePattern(ctx) {
    setDebugName("sliced-linear");
  }
  LogicalResult matchAndRewrite(OnnxOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getOpType() != "Slice" || op.getNumOperands() < 4)
      return failure();
    auto lin = op.getOperand(0).getDefiningOp<LinearOp>();
    RankedTensorType out = rankedFloat(op.getResult(0));
    if (!lin || lin.getBias() || !out)
      return failure();
    WeightOp w = weightDef(lin.getWeight());
    auto starts = constInts(op.getOperand(1)),
         ends = constInts(op.getOperand(2)), axes = constInts(op.getOperand(3));
    std::optional<SmallVector<int64_t>> steps =
        op.getNumOperands() > 4 ? constInts(op.getOperand(4))
                                : SmallVector<int64_t>{1};
    int64_t rank = out.getRank();
    if (!w || !starts || !ends || !axes || !steps || starts->size() != 1 ||
        (*steps)[0] != 1 || !((*axes)[0] == -1 || (*axes)[0] == rank - 1))
      return failure();
    int64_t rows = w.getType().getDimSize(0), in = w.getType().getDimSize(1);
    int64_t b = (*starts)[0] < 0 ? (*starts)[0] + rows : (*starts)[0];
    int64_t e = (*ends)[0] < 0 ? (*ends)[0] + rows : std::min((*ends)[0], rows);
    if (b < 0 || e <= b || out.getShape().back() != e - b)
      return failure();
    auto values = constFloats(w.getValue());
    if (!values)
      return failure();
    std::vector<float> part(values->begin() + b * in, values->begin() + e * in);
    std::string name =
        (w.getName() + "[" + std::to_string(b) + ":" + std::to_string(e) + "]")
            .str();
    Value nw;
    {
      OpBuilder::InsertionGuard guard(rewriter);
      rewriter.setInsertionPointAfter(w);
      nw = makeF32Weight(rewriter, w.getLoc(), name, {e - b, in}, part)
               .getResult();
    }
    rewriter.replaceOpWithNewOp<LinearOp>(op, out, lin.getInput(), nw, Value());
    return success();
  }
};

/// Reshape(linear(Reshape(x, [-1, in])), ...) back to x's leading dims ->
/// linear(x) (Gemm-style exports flatten the tokens).
struct RaiseFlattenedLinear : OpRewritePattern<OnnxOp> {
  RaiseFlattenedLinear(MLIRContext *ctx) : OpRewritePattern(ctx) {
    setDebugName("flattened-linear");
  }
  LogicalResult matchAndRewrite(OnnxOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getOpType() != "Reshape")
      return failure();
    auto lin = op.getOperand(0).getDefiningOp<LinearOp>();
    OnnxOp flat = lin ? def(lin.getInput(), "Reshape") : OnnxOp();
    RankedTensorType out = rankedFloat(op.getResult(0));
    if (!flat || !out || rankedFloat(lin.getInput()).getRank() != 2)
      return failure();
    Value x = flat.getOperand(0);
    RankedTensorType xt = rankedFloat(x);
    if (!xt || xt.getRank() != out.getRank() ||
        xt.getShape().back() != rankedFloat(lin.getInput()).getShape().back())
      return failure();
    // The result restores x's leading dims (compared under the evaluator's
    // bindings of stage 1's symbolic dims).
    auto func = op->getParentOfType<func::FuncOp>();
    SubgraphEvaluator eval(func, 7);
    auto xs = eval.shapeOf(x), os = eval.shapeOf(op.getResult(0));
    if (!xs || !os || xs->size() != os->size())
      return rewriter.notifyMatchFailure(op, "leading dims not known");
    for (size_t i = 0; i + 1 < xs->size(); ++i)
      if ((*xs)[i] != (*os)[i])
        return failure();
    SmallVector<int64_t> shape(xt.getShape());
    shape.back() = out.getShape().back();
    rewriter.replaceOpWithNewOp<LinearOp>(
        op, RankedTensorType::get(shape, xt.getElementType()), x,
        lin.getWeight(), lin.getBias());
    return success();
  }
};

/// linear(x) + b, b a [out] weight -> linear with bias.
struct RaiseLinearBias : OpRewritePattern<OnnxOp> {
  RaiseLinearBias(MLIRContext *ctx) : OpRewritePattern(ctx) {
    setDebugName("linear-bias");
  }
  LogicalResult matchAndRewrite(OnnxOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getOpType() != "Add")
      return failure();
    Value l, b;
    if (!eitherOperand(op, l, b, [](Value v) {
          auto lin = v.getDefiningOp<LinearOp>();
          return lin && !lin.getBias() && v.hasOneUse();
        }))
      return failure();
    auto lin = l.getDefiningOp<LinearOp>();
    WeightOp w = weightDef(b);
    if (!w || w.getType().getRank() != 1 ||
        w.getType().getDimSize(0) != lin.getType().getShape().back() ||
        op.getResult(0).getType() != lin.getType())
      return failure();
    rewriter.replaceOpWithNewOp<LinearOp>(op, lin.getType(), lin.getInput(),
                                          lin.getWeight(), b);
    return success();
  }
};

/// x * Rsqrt(ReduceMean(x * x, last axis, keepdims) + eps) -> rms_norm(x)
/// (the normalized form of x / Sqrt(...), x * Reciprocal(Sqrt(...)),
/// x * Pow(..., -0.5) and Pow(x, 2) squares).
struct RaiseRMSNorm : OpRewritePattern<OnnxOp> {
  RaiseRMSNorm(MLIRContext *ctx) : OpRewritePattern(ctx) {
    setDebugName("rms-norm");
  }
  LogicalResult matchAndRewrite(OnnxOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getOpType() != "Mul" || op.getNumOperands() != 2)
      return failure();
    Value x, r;
    if (!eitherOperand(op, r, x, [](Value v) { return bool(def(v, "Rsqrt")); }))
      return failure();
    RankedTensorType xt = rankedFloat(x);
    if (!xt || op.getResult(0).getType() != xt)
      return failure();
    OnnxOp add = def(def(r, "Rsqrt").getOperand(0), "Add");
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
    OnnxOp sq = def(rm.getOperand(0), "Mul");
    if (!sq || sq.getOperand(0) != x || sq.getOperand(1) != x)
      return failure();
    // The exported epsilon is an f32 constant; keep the value it has.
    rewriter.replaceOpWithNewOp<RMSNormOp>(op, xt, x, Value(),
                                           rewriter.getF64FloatAttr(*eps));
    return success();
  }
};

/// SimplifiedLayerNormalization / RMSNormalization (opset 23) on the last
/// axis -> rms_norm with gain; com.microsoft SkipSimplifiedLayerNormalization
/// -> add + rms_norm (its 4th result is the residual sum).
struct RaiseFusedNorm : OpRewritePattern<OnnxOp> {
  RaiseFusedNorm(MLIRContext *ctx) : OpRewritePattern(ctx) {
    setDebugName("fused-rms-norm");
  }
  LogicalResult matchAndRewrite(OnnxOp op,
                                PatternRewriter &rewriter) const override {
    StringRef type = op.getOpType();
    bool skip = type == "com.microsoft.SkipSimplifiedLayerNormalization";
    if (!skip && type != "SimplifiedLayerNormalization" &&
        type != "com.microsoft.SimplifiedLayerNormalization" &&
        type != "RMSNormalization")
      return failure();
    if (op.getAbsentInputsAttr() || op.getNumOperands() != (skip ? 3u : 2u))
      return rewriter.notifyMatchFailure(op, "bias or missing inputs");
    Value x = op.getOperand(0);
    RankedTensorType xt = rankedFloat(x);
    Value gain = op.getOperand(skip ? 2 : 1);
    WeightOp g = weightDef(gain);
    if (!xt || !g || g.getType().getRank() != 1 ||
        g.getType().getElementType() != xt.getElementType())
      return failure();
    if (!isLastAxis(attrInt(op, "axis", -1), xt.getRank()))
      return failure();
    // Only the normalized output (and the sum) may be used.
    for (unsigned i = 1; i < op.getNumResults(); ++i)
      if (!(skip && i == 3) && !op.getResult(i).use_empty())
        return rewriter.notifyMatchFailure(op, "statistics outputs are used");
    double eps = 1e-5;
    if (DictionaryAttr d = op.getOnnxAttrsAttr())
      if (auto e = d.getAs<FloatAttr>("epsilon"))
        eps = e.getValueAsDouble();
    Location loc = op.getLoc();
    Value in = x;
    if (skip) {
      if (op.getOperand(1).getType() != xt)
        return failure();
      in = AddOp::create(rewriter, loc, xt, x, op.getOperand(1)).getResult();
    }
    Value norm = RMSNormOp::create(rewriter, loc, xt, in, gain,
                                   rewriter.getF64FloatAttr(eps))
                     .getResult();
    SmallVector<Value> results(op.getNumResults(), Value());
    results[0] = norm;
    if (skip && op.getNumResults() > 3)
      results[3] = in;
    for (unsigned i = 0; i < op.getNumResults(); ++i)
      if (!results[i])
        results[i] = norm; // unused (checked above)
    rewriter.replaceOp(op, results);
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

/// The KV heads of `v` repeated for GQA -> (the unrepeated value, repeat
/// factor): Reshape(Expand|Tile(Unsqueeze(x, 2))) (repeat_kv), Gather(x,
/// [0,0,1,1,...], axis 1) (index_select); anything else -> (v, 1). A
/// Concat with a past KV input on the sequence axis (before or after the
/// repeat) is skipped too; that input is returned in `past`.
std::pair<Value, int64_t> skipRepeatKVOnly(Value v);

/// A function input whose ONNX name contains "past" (a KV-cache input).
bool isPastInput(Value v) {
  auto arg = dyn_cast_or_null<BlockArgument>(v);
  if (!arg)
    return false;
  auto f = dyn_cast<func::FuncOp>(arg.getOwner()->getParentOp());
  auto name =
      f ? f.getArgAttrOfType<StringAttr>(arg.getArgNumber(), "w4a4.name")
        : StringAttr();
  return name && name.getValue().contains("past");
}

Value skipPastConcat(Value v, Value &past) {
  if (OnnxOp cat = def(v, "Concat"); cat && cat.getNumOperands() == 2 &&
                                     attrInt(cat, "axis", 0) % 4 == 2 &&
                                     isPastInput(cat.getOperand(0))) {
    past = cat.getOperand(0);
    return cat.getOperand(1);
  }
  return v;
}

std::pair<Value, int64_t> skipRepeatKV(Value v, Value &past) {
  std::pair<Value, int64_t> r = skipRepeatKVOnly(skipPastConcat(v, past));
  r.first = skipPastConcat(r.first, past);
  return r;
}

std::pair<Value, int64_t> skipRepeatKVOnly(Value v) {
  auto heads = [](Value x) {
    auto t = rankedFloat(x);
    return t && t.getRank() == 4 && !t.isDynamicDim(1) ? t.getDimSize(1)
                                                       : int64_t(0);
  };
  if (OnnxOp g = def(v, "Gather"); g && attrInt(g, "axis", 0) == 1) {
    auto idx = constInts(g.getOperand(1));
    int64_t kv = heads(g.getOperand(0));
    if (idx && kv > 0 && !idx->empty() && idx->size() % kv == 0) {
      int64_t rep = idx->size() / kv;
      bool ok = true;
      for (size_t i = 0; i < idx->size(); ++i)
        ok &= (*idx)[i] == static_cast<int64_t>(i) / rep;
      if (ok)
        return {g.getOperand(0), rep};
    }
  }
  OnnxOp rs = def(v, "Reshape");
  OnnxOp ex = rs ? def(rs.getOperand(0), "Expand") : OnnxOp();
  if (!ex && rs)
    ex = def(rs.getOperand(0), "Tile");
  OnnxOp un = ex ? def(ex.getOperand(0), "Unsqueeze") : OnnxOp();
  if (!un)
    return {v, 1};
  std::optional<SmallVector<int64_t>> axes = attrInts(un, "axes");
  if (!axes && un.getNumOperands() == 2)
    axes = constInts(un.getOperand(1));
  int64_t kv = heads(un.getOperand(0)), h = heads(v);
  if (!axes || *axes != SmallVector<int64_t>{2} || kv <= 0 || h % kv)
    return {v, 1};
  return {un.getOperand(0), h / kv};
}

/// notifyMatchFailure, also printed when W4A4_RAISE_DEBUG is set (the
/// reason an attention block was not raised).
LogicalResult debugFailure(PatternRewriter &rewriter, Operation *op,
                           const llvm::Twine &why) {
  if (std::getenv("W4A4_RAISE_DEBUG"))
    llvm::errs() << "raise: " << op->getLoc() << ": " << why << "\n";
  return rewriter.notifyMatchFailure(op, why);
}

/// Strips multiplications by scalar constants (a softmax scale applied to q
/// or k) and returns the product.
Value stripScale(Value v, double &scale) {
  while (OnnxOp mul = def(v, "Mul")) {
    Value x, c;
    if (!eitherOperand(mul, c, x, [](Value y) { return bool(constScalar(y)); }))
      break;
    scale *= *constScalar(c);
    v = x;
  }
  return v;
}

bool dependsOn(Value v, Value target, int depth = 0) {
  if (!v)
    return false;
  if (v == target)
    return true;
  Operation *op = v.getDefiningOp();
  if (!op || depth > 24 || !isa<OnnxOp>(op))
    return false;
  for (Value operand : op->getOperands())
    if (dependsOn(operand, target, depth + 1))
      return true;
  return false;
}

/// Whether the model keeps its KV cache: dropPresentOutputs set its
/// present.* outputs aside (`w4a4.present_names`) to be returned again by
/// the raised attention ops.
bool keepsKVCache(func::FuncOp f) {
  return f && f->hasAttr("w4a4.present_names");
}

/// The first function input whose ONNX name contains `part`.
BlockArgument namedArg(func::FuncOp f, StringRef part) {
  for (unsigned i = 0; i < f.getNumArguments(); ++i)
    if (auto name = f.getArgAttrOfType<StringAttr>(i, "w4a4.name"))
      if (name.getValue().contains(part))
        return f.getArgument(i);
  return {};
}

/// The positions operand of a RoPE in a model that keeps its KV cache:
/// the position_ids input when `source` (what computes the rotation) reads
/// it; else, when the positions follow the past (`fromPast`, or `source`
/// reads a past input), cache_positions of the token ids after `past`;
/// else none (positions 0..n-1, as the model computes them).
Value ropePositions(PatternRewriter &rewriter, Location loc, func::FuncOp f,
                    Value source, Value past, bool fromPast = false) {
  if (!keepsKVCache(f))
    return {};
  if (BlockArgument pos = namedArg(f, "position_ids");
      pos && dependsOn(source, pos)) {
    auto t = dyn_cast<RankedTensorType>(pos.getType());
    if (t && t.getRank() == 2 && isa<IntegerType>(t.getElementType()))
      return pos;
  }
  if (!past)
    return {};
  if (!fromPast)
    for (BlockArgument arg : f.getArguments())
      fromPast |= isPastInput(arg) && dependsOn(source, arg);
  if (!fromPast)
    return {};
  Value ids;
  f.walk([&](EmbeddingOp e) {
    if (!ids)
      ids = e.getIds();
  });
  auto it = ids ? dyn_cast<RankedTensorType>(ids.getType()) : nullptr;
  if (!it || it.getRank() != 2)
    return {};
  return CachePositionsOp::create(
             rewriter, loc,
             RankedTensorType::get(it.getShape(), rewriter.getI64Type()), ids,
             past)
      .getResult();
}

Value createRope(PatternRewriter &rewriter, Location loc, Value flat,
                 int64_t headDim, double theta, bool interleaved,
                 Value positions = {}) {
  return RoPEOp::create(rewriter, loc, flat.getType(), flat, positions,
                        rewriter.getI64IntegerAttr(headDim),
                        rewriter.getF64FloatAttr(theta),
                        rewriter.getI64IntegerAttr(0),
                        interleaved ? rewriter.getUnitAttr() : UnitAttr())
      .getResult();
}

/// attention(q, k, v), reading and writing the KV cache when `pastK` and
/// `pastV` (past inputs [batch, kv_heads, past, head_dim]) are given.
AttentionOp createAttention(PatternRewriter &rewriter, Location loc, Value q,
                            Value k, Value v, int64_t heads, int64_t kvHeads,
                            int64_t headDim, double scale, Value pastK = {},
                            Value pastV = {}) {
  bool standard =
      scale == 0 ||
      std::abs(scale * std::sqrt(static_cast<double>(headDim)) - 1.0) < 1e-6;
  SmallVector<Type> presents;
  auto qt = cast<RankedTensorType>(q.getType());
  if (pastK && pastV &&
      cast<RankedTensorType>(pastK.getType()).getElementType() ==
          qt.getElementType() &&
      pastV.getType() == pastK.getType()) {
    presents.assign(2, RankedTensorType::get({qt.getDimSize(0), kvHeads,
                                              ShapedType::kDynamic, headDim},
                                             qt.getElementType()));
  } else {
    pastK = pastV = Value();
  }
  return AttentionOp::create(
      rewriter, loc, q.getType(), presents, q, k, v, Value(), Value(), pastK,
      pastV, rewriter.getI64IntegerAttr(heads),
      rewriter.getI64IntegerAttr(kvHeads), rewriter.getI64IntegerAttr(headDim),
      standard ? FloatAttr() : rewriter.getF64FloatAttr(scale));
}

/// A past input of the KV cache that a raised attention may read: a
/// function input named like `past` [batch, kv_heads, past, head_dim] in a
/// model that keeps its cache.
bool isKeptPast(Value v, int64_t kvHeads, int64_t headDim) {
  auto arg = dyn_cast_or_null<BlockArgument>(v);
  auto f = arg ? dyn_cast<func::FuncOp>(arg.getOwner()->getParentOp())
               : func::FuncOp();
  auto t = arg ? dyn_cast<RankedTensorType>(arg.getType()) : nullptr;
  return keepsKVCache(f) && t && t.getRank() == 4 &&
         isa<FloatType>(t.getElementType()) &&
         (t.isDynamicDim(1) || t.getDimSize(1) == kvHeads) &&
         (t.isDynamicDim(3) || t.getDimSize(3) == headDim);
}

/// A weight or constant of rank >= 2 in the subgraph of `v` whose last dim
/// is d or d/2: a RoPE table; its rows bound the positions.
int64_t tableRowsBound(Value v, int64_t d, int depth = 0) {
  Operation *op = v ? v.getDefiningOp() : nullptr;
  if (!op || depth > 16)
    return 0;
  if (isa<WeightOp, arith::ConstantOp>(op)) {
    auto t = dyn_cast<RankedTensorType>(v.getType());
    // A table has a row per position: more than the positions the RoPE
    // was evaluated at (an inverse-frequency [1, d/2] row is not one).
    if (t && t.getRank() >= 2 &&
        (t.getShape().back() == d || t.getShape().back() == d / 2) &&
        t.getDimSize(t.getRank() - 2) > 12)
      return t.getDimSize(t.getRank() - 2);
    return 0;
  }
  if (!isa<OnnxOp>(op))
    return 0;
  int64_t best = 0;
  for (Value operand : op->getOperands())
    if (int64_t r = tableRowsBound(operand, d, depth + 1))
      best = best ? std::min(best, r) : r;
  return best;
}

struct RopeMatch {
  Value x4;
  double theta = 0;
  bool interleaved = false;
  int64_t rows = 0;  // table rows, 0 when computed
  bool bshd = false; // x4 is [batch, seq, heads, head_dim] (before the
                     // transpose to heads-first)
};

/// Reshape(flat [b, t, h * d]) to [b, t, h, d] -> flat.
Value matchHeadsLast(Value v4) {
  OnnxOp rs = def(v4, "Reshape");
  RankedTensorType t4 = rankedFloat(v4);
  if (!rs || !t4 || t4.getRank() != 4)
    return {};
  Value flat = rs.getOperand(0);
  RankedTensorType t = rankedFloat(flat);
  return t && t.getRank() == 3 && !ShapedType::isDynamic(t.getShape().back()) &&
                 !t4.isDynamicDim(2) && !t4.isDynamicDim(3) &&
                 t4.getDimSize(2) * t4.getDimSize(3) == t.getShape().back()
             ? flat
             : Value();
}

/// The [b, t, h * d] value a RoPE's per-head input was split from.
Value ropeFlat(const RopeMatch &m) {
  return m.bshd ? matchHeadsLast(m.x4) : matchSplitHeads(m.x4);
}

/// RoPE's theta from the angle f1 of frequency 1 (f1 = theta^(-2/d)): the
/// nearest integer when `verifies` accepts it, else the estimate itself
/// when it does.
std::optional<double> fitTheta(double f1, int64_t d,
                               llvm::function_ref<bool(double)> verifies) {
  double estimate = std::pow(f1, -static_cast<double>(d) / 2.0);
  for (double theta : {std::round(estimate), estimate})
    if (theta > 1 && verifies(theta))
      return theta;
  return std::nullopt;
}

/// The per-head input of a RoPE: the nearest split-heads value
/// (Transpose(Reshape(flat))) that `y` is computed from.
Value ropeInput(Value y) {
  SmallVector<std::pair<Value, int>> work{{y, 0}};
  llvm::DenseSet<Value> seen;
  while (!work.empty()) {
    auto [v, depth] = work.front();
    work.erase(work.begin());
    if (!v || !seen.insert(v).second || depth > 16)
      continue;
    RankedTensorType t = rankedFloat(v);
    if (t && t.getRank() == 4 && !t.isDynamicDim(3) &&
        (matchSplitHeads(v) || matchHeadsLast(v)))
      return v;
    if (OnnxOp op = v.getDefiningOp<OnnxOp>())
      for (Value operand : op.getOperands())
        work.push_back({operand, depth + 1});
  }
  return {};
}

/// y = RoPE(x4), recognised by what it computes: y is evaluated for
/// positions 0..n-1 with x4 bound to each unit vector of the head
/// dimension, which gives the matrix M_p with y[p] = M_p x[p]; M_p must be
/// the rotation by p * theta^(-2k/d) of rotate-half or interleaved pairs
/// (and M_0 the identity: positions start at 0). Any spelling (tables or
/// cos/sin computed from position ids, rotate-half by slices or split,
/// complex-multiplication form, stack/flatten) computes the same M_p.
std::optional<RopeMatch> matchRope(Value y, func::FuncOp func,
                                   std::string &why) {
  Value x4 = ropeInput(y);
  RankedTensorType yt = rankedFloat(y);
  if (!x4 || !yt || yt != rankedFloat(x4) || y == x4) {
    why = "no per-head input of a RoPE";
    return std::nullopt;
  }
  int64_t d = rankedFloat(x4).getDimSize(3);
  if (d % 2 || d < 4)
    return std::nullopt;
  bool bshd = !matchSplitHeads(x4);
  constexpr int64_t n = 12;
  // One evaluation for all d probes: batch entry j carries unit vector j.
  SubgraphEvaluator eval(func, n, /*batch=*/d);
  auto xs = eval.shapeOf(x4);
  if (!xs || xs->size() != 4 || (*xs)[0] != d || (*xs)[bshd ? 1 : 2] < 3) {
    why = "RoPE input shape: " + eval.why();
    return std::nullopt;
  }
  ETensor probe;
  probe.shape = *xs;
  if (!probe.sizeOk()) {
    why = "RoPE input too large to probe";
    return std::nullopt;
  }
  int64_t per = probe.numel() / d; // elements of one batch entry
  probe.v.assign(probe.numel(), 0.0);
  for (int64_t j = 0; j < d; ++j)
    for (int64_t k = j; k < per; k += d)
      probe.v[j * per + k] = 1.0;
  eval.bind(x4, probe);
  auto r = eval.eval(y);
  if (!r || r->shape != *xs) {
    why = "RoPE does not evaluate: " + eval.why();
    return std::nullopt;
  }
  std::vector<int64_t> shape = *xs;
  int64_t rows = shape[bshd ? 1 : 2];
  // cols[j][p * d + i] = M_p[i][j]; every head the same as head 0. Rows are
  // positions (axis 2 heads-first, axis 1 heads-last).
  std::vector<std::vector<double>> cols(d, std::vector<double>(rows * d));
  for (int pass = 0; pass < 2; ++pass)
    for (int64_t j = 0; j < d; ++j)
      for (int64_t k = 0; k < per; ++k) {
        int64_t i = k % d, a = (k / d) % shape[2],
                b = (k / d / shape[2]) % shape[1];
        int64_t p = bshd ? b : a, head = bshd ? a : b;
        double x = r->v[j * per + k];
        if (pass == 0 && head == 0)
          cols[j][p * d + i] = x;
        else if (pass == 1 && x != cols[j][p * d + i]) {
          why = "RoPE differs between heads";
          return std::nullopt;
        }
      }
  int64_t h = d / 2;
  auto m = [&](int64_t p, int64_t i, int64_t j) { return cols[j][p * d + i]; };
  // Layout from position 1: which entry pairs with dim 0.
  bool inter = std::abs(m(1, 1, 0)) > 1e-6, half = std::abs(m(1, h, 0)) > 1e-6;
  if (inter == half) {
    why = "the rotation is neither rotate-half nor interleaved";
    return std::nullopt;
  }
  auto partner = [&](int64_t i) {
    return inter ? (i ^ 1) : (i < h ? i + h : i - h);
  };
  auto freq = [&](int64_t i) { return inter ? i / 2 : i % h; };
  std::vector<double> f(h);
  for (int64_t i = 0; i < d; ++i) {
    bool first = inter ? i % 2 == 0 : i < h;
    if (first) // y_i = cos * x_i - sin * x_partner
      f[freq(i)] = std::atan2(-m(1, i, partner(i)), m(1, i, i));
  }
  if (!(f[1] > 0)) {
    why = "RoPE frequencies are not positive";
    return std::nullopt;
  }
  auto theta = fitTheta(f[1], d, [&](double theta) {
    bool ok = true;
    for (int64_t p = 0; ok && p < rows; ++p)
      for (int64_t i = 0; ok && i < d; ++i)
        for (int64_t j = 0; ok && j < d; ++j) {
          double ang = p * std::pow(theta, -2.0 * freq(i) / d);
          bool first = inter ? i % 2 == 0 : i < h;
          double want = j == i ? std::cos(ang)
                        : j == partner(i)
                            ? (first ? -std::sin(ang) : std::sin(ang))
                            : 0.0;
          ok = std::abs(m(p, i, j) - want) < 2e-5;
        }
    return ok;
  });
  if (theta)
    return RopeMatch{x4, *theta, inter, tableRowsBound(y, d), bshd};
  why = "the rotation matches no RoPE theta with positions from 0";
  return std::nullopt;
}

/// The mask of the scores, by evaluation: additive terms and Where
/// selections must block exactly the positions after the query's.
LogicalResult checkCausal(ArrayRef<Value> additive,
                          ArrayRef<std::tuple<Value, Value, bool>> wheres,
                          func::FuncOp func, std::string &why) {
  if (additive.empty() && wheres.empty()) {
    why = "no mask: w4a4 attention is causal";
    return failure();
  }
  for (int64_t seq : {5, 9}) {
    SubgraphEvaluator eval(func, seq);
    // The mask is [.., n, n]: n = seq plus any register prefix.
    int64_t n = -1;
    std::vector<int> blocked, touched;
    auto visit = [&](const ETensor &t, auto fn) -> bool {
      if (t.shape.size() < 2 || t.shape[t.shape.size() - 2] != t.shape.back())
        return false;
      if (n < 0) {
        n = t.shape.back();
        blocked.assign(n * n, 0);
        touched.assign(n * n, 0);
      }
      if (t.shape.back() != n)
        return false;
      for (size_t i = 0; i < t.v.size(); ++i)
        fn(i % (n * n), t.v[i]);
      return true;
    };
    for (Value m : additive) {
      auto t = eval.eval(m);
      if (!t || !visit(*t, [&](size_t k, double x) {
            if (x <= -1e4)
              blocked[k] |= 1;
            else if (x != 0)
              touched[k] = 1;
          })) {
        why = "additive mask: " + (t ? "not [seq, seq]" : eval.why());
        return failure();
      }
    }
    for (auto [cond, fill, fillWhenTrue] : wheres) {
      auto c = eval.eval(cond);
      auto f = eval.eval(fill);
      if (!c || !f || f->v.size() != 1 || !(f->v[0] <= -1e4) ||
          !visit(*c, [&, w = fillWhenTrue](size_t k, double x) {
            if ((x != 0) == w)
              blocked[k] |= 1;
          })) {
        why = "mask condition: " +
              (c ? std::string("not [seq, seq]") : eval.why());
        return failure();
      }
    }
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j)
        if (bool(blocked[i * n + j]) != (j > i) || touched[i * n + j]) {
          why = "the mask is not causal (query " + std::to_string(i) +
                ", key " + std::to_string(j) + ")";
          return failure();
        }
  }
  return success();
}

/// The attention block, recognised from its Softmax: scores = mask(scale *
/// q k^T) with q, k rotated by RoPE, probabilities times v, heads merged
/// back to [batch, seq, heads * head_dim].
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
    auto func = op->getParentOfType<func::FuncOp>();
    // Walk the scores back to QK^T, collecting scale and mask terms.
    double scale = 1.0;
    SmallVector<Value> additive;
    SmallVector<std::tuple<Value, Value, bool>> wheres;
    Value s = sm.getOperand(0);
    OnnxOp qk;
    SubgraphEvaluator probe(func, 5);
    for (int steps = 0; steps < 16 && !qk; ++steps) {
      OnnxOp d = s.getDefiningOp<OnnxOp>();
      if (!d)
        break;
      StringRef t = d.getOpType();
      if (t == "MatMul") {
        qk = d;
      } else if (t == "Mul" || t == "Add") {
        Value x, c;
        bool mul = t == "Mul";
        if (!eitherOperand(d, c, x, [&](Value v) {
              return mul ? bool(constScalar(v)) : bool(probe.evalFresh(v));
            }))
          return debugFailure(rewriter, op,
                              "scores: unknown term (" + probe.why() + ")");
        if (mul)
          scale *= *constScalar(c);
        else
          additive.push_back(c);
        s = x;
      } else if (t == "Where" && d.getNumOperands() == 3) {
        bool fillTrue = bool(constScalar(d.getOperand(1)));
        wheres.emplace_back(d.getOperand(0), d.getOperand(fillTrue ? 1 : 2),
                            fillTrue);
        s = d.getOperand(fillTrue ? 2 : 1);
      } else {
        return debugFailure(rewriter, op, "scores: unexpected op");
      }
    }
    if (!qk)
      return debugFailure(rewriter, op, "structure 3");
    std::string why;
    if (failed(checkCausal(additive, wheres, func, why)))
      return debugFailure(rewriter, op, why);
    Value kSide = qk.getOperand(1);
    OnnxOp kt = def(kSide, "Transpose");
    // k^T is [0, 1, 3, 2] of heads-first k, or [0, 2, 3, 1] of heads-last k.
    bool kHeadsLast =
        kt && attrInts(kt, "perm") == SmallVector<int64_t>{0, 2, 3, 1};
    if (!kt || (!kHeadsLast &&
                attrInts(kt, "perm") != SmallVector<int64_t>{0, 1, 3, 2}))
      return debugFailure(rewriter, op, "k is not transposed by [0, 1, 3, 2]");
    Value qv = stripScale(qk.getOperand(0), scale);
    Value kv = stripScale(kt.getOperand(0), scale);
    Value pastK, pastV;
    auto [kBase, kRep] = skipRepeatKV(kv, pastK);
    kBase = stripScale(kBase, scale);
    auto [vBase, vRep] = skipRepeatKV(pv.getOperand(1), pastV);
    // A heads-last RoPE is followed by the transpose to heads-first.
    if (OnnxOp t = def(qv, "Transpose");
        t && attrInts(t, "perm") == SmallVector<int64_t>{0, 2, 1, 3} &&
        matchHeadsLast(ropeInput(t.getOperand(0))))
      qv = stripScale(t.getOperand(0), scale);
    std::optional<RopeMatch> qRope = matchRope(qv, func, why);
    std::optional<RopeMatch> kRope =
        qRope ? matchRope(kBase, func, why) : std::nullopt;
    if (!qRope || !kRope)
      return debugFailure(rewriter, op, "no RoPE on q and k: " + why);
    if (kHeadsLast != kRope->bshd)
      return debugFailure(rewriter, op, "k layout and its RoPE differ");
    Value qFlat = ropeFlat(*qRope), kFlat = ropeFlat(*kRope),
          vFlat = matchSplitHeads(vBase);
    if (!qFlat || !kFlat || !vFlat)
      return debugFailure(rewriter, op, "structure 5");
    int64_t headDim = rankedFloat(qRope->x4).getDimSize(3);
    int64_t qWidth = rankedFloat(qFlat).getShape().back();
    int64_t kvWidth = rankedFloat(kFlat).getShape().back();
    if (qWidth % headDim || kvWidth % headDim ||
        rankedFloat(vFlat).getShape().back() != kvWidth ||
        qRope->theta != kRope->theta ||
        qRope->interleaved != kRope->interleaved ||
        outType.getShape().back() != qWidth)
      return debugFailure(
          rewriter, op,
          "head dims or RoPE of q and k differ (theta " +
              std::to_string(qRope->theta) + " / " +
              std::to_string(kRope->theta) + ", widths " +
              std::to_string(qWidth) + " / " + std::to_string(kvWidth) +
              " / v " + std::to_string(rankedFloat(vFlat).getShape().back()) +
              ", out " + std::to_string(outType.getShape().back()) +
              ", interleaved " + std::to_string(qRope->interleaved) + "/" +
              std::to_string(kRope->interleaved) + ")");
    int64_t heads = qWidth / headDim, kvHeads = kvWidth / headDim;
    if (heads % kvHeads || kRep != vRep || kvHeads * kRep != heads)
      return debugFailure(rewriter, op, "GQA head counts do not match");
    Location loc = op.getLoc();
    if (!isKeptPast(pastK, kvHeads, headDim) ||
        !isKeptPast(pastV, kvHeads, headDim))
      pastK = pastV = Value();
    Value positions = ropePositions(rewriter, loc, func, qv, pastK);
    auto rope = [&](Value flat) {
      return createRope(rewriter, loc, flat, headDim, qRope->theta,
                        qRope->interleaved, positions);
    };
    Value q = rope(qFlat), k = rope(kFlat);
    // Constant tables bound the positions the exported model supports.
    if (int64_t rows = std::max(qRope->rows, kRope->rows))
      if (auto module = op->getParentOfType<ModuleOp>()) {
        auto old = module->getAttrOfType<IntegerAttr>("w4a4.max_positions");
        if (!old || old.getInt() > rows)
          module->setAttr("w4a4.max_positions",
                          rewriter.getI64IntegerAttr(rows));
      }
    AttentionOp attn = createAttention(rewriter, loc, q, k, vFlat, heads,
                                       kvHeads, headDim, scale, pastK, pastV);
    rewriter.replaceOp(op, attn.getResult());
    return success();
  }
};

//===----------------------------------------------------------------------===//
// Fused decoder ops: onnxruntime contrib ops and opset 23
//===----------------------------------------------------------------------===//

double attrFloat(OnnxOp op, StringRef name, double dflt) {
  if (DictionaryAttr d = op.getOnnxAttrsAttr()) {
    if (auto a = d.getAs<FloatAttr>(name))
      return a.getValueAsDouble();
    if (auto a = d.getAs<IntegerAttr>(name))
      return static_cast<double>(a.getInt());
  }
  return dflt;
}

/// theta of cos/sin caches [positions, d/2] (cache[p][i] = cos|sin(p *
/// theta^(-2i/d))), verified on every row; the rows bound the positions.
std::optional<double> cacheTheta(Value cosV, Value sinV, int64_t d,
                                 int64_t &rows, std::string &why) {
  if (!cosV || !sinV) {
    why = "no cos/sin caches";
    return std::nullopt;
  }
  auto cosW = weightDef(cosV), sinW = weightDef(sinV);
  DenseElementsAttr cc, sc;
  std::optional<std::vector<double>> c, s;
  ShapedType t;
  if (cosW && sinW) {
    c = constFloats(cosW.getValue());
    s = constFloats(sinW.getValue());
    t = cosW.getType();
  } else if (matchPattern(cosV, m_Constant(&cc)) &&
             matchPattern(sinV, m_Constant(&sc))) {
    c = constFloats(cc);
    s = constFloats(sc);
    t = cast<ShapedType>(cc.getType());
  }
  if (!c || !s || t.getRank() != 2 || t.getDimSize(1) * 2 != d ||
      t.getDimSize(0) < 2) {
    why = "cos/sin caches are not constant [positions, head_dim / 2] tables";
    return std::nullopt;
  }
  rows = t.getDimSize(0);
  int64_t h = d / 2;
  double f1 = std::atan2((*s)[h + 1], (*c)[h + 1]);
  if (!(f1 > 0)) {
    why = "cos/sin caches have no positive frequency";
    return std::nullopt;
  }
  auto theta = fitTheta(f1, d, [&](double theta) {
    bool ok = true;
    for (int64_t p = 0; ok && p < rows; ++p)
      for (int64_t i = 0; ok && i < h; ++i) {
        double ang = p * std::pow(theta, -2.0 * i / d);
        ok = std::abs(std::cos(ang) - (*c)[p * h + i]) < 2e-5 &&
             std::abs(std::sin(ang) - (*s)[p * h + i]) < 2e-5;
      }
    return ok;
  });
  if (!theta)
    why = "cos/sin caches match no RoPE theta";
  return theta;
}

/// Position ids that evaluate to 0..n-1 for every sequence.
bool arePositions(Value pos, func::FuncOp func, std::string &why) {
  if (!pos) {
    why = "no position_ids";
    return false;
  }
  SubgraphEvaluator eval(func, 7);
  auto t = eval.eval(pos);
  if (!t || t->shape.empty() || t->shape.back() != 7) {
    why = "position_ids do not evaluate to 0..n-1" +
          (t ? std::string() : ": " + eval.why());
    return false;
  }
  for (int64_t i = 0; i < t->numel(); ++i)
    if (t->v[i] != static_cast<double>(i % 7)) {
      why = "position_ids are not 0..n-1";
      return false;
    }
  return true;
}

void boundPositions(Operation *op, PatternRewriter &rewriter, int64_t rows) {
  if (auto module = op->getParentOfType<ModuleOp>()) {
    auto old = module->getAttrOfType<IntegerAttr>("w4a4.max_positions");
    if (rows > 0 && (!old || old.getInt() > rows))
      module->setAttr("w4a4.max_positions", rewriter.getI64IntegerAttr(rows));
  }
}

/// com.microsoft.RotaryEmbedding(x, position_ids, cos_cache, sin_cache) and
/// opset-23 RotaryEmbedding(x, cos_cache, sin_cache, position_ids) on
/// [batch, seq, heads * head_dim] -> rope.
struct RaiseRotaryEmbedding : OpRewritePattern<OnnxOp> {
  RaiseRotaryEmbedding(MLIRContext *ctx) : OpRewritePattern(ctx) {
    setDebugName("rotary-embedding");
  }
  LogicalResult matchAndRewrite(OnnxOp op,
                                PatternRewriter &rewriter) const override {
    bool ms = op.getOpType() == "com.microsoft.RotaryEmbedding";
    if (!ms && op.getOpType() != "RotaryEmbedding")
      return failure();
    Value x = onnxInput(op, 0);
    Value pos = onnxInput(op, ms ? 1 : 3);
    Value cosV = onnxInput(op, ms ? 2 : 1), sinV = onnxInput(op, ms ? 3 : 2);
    RankedTensorType xt = x ? rankedFloat(x) : RankedTensorType();
    if (!xt || xt.getRank() != 3 || xt.isDynamicDim(2) || !cosV || !sinV ||
        op.getResult(0).getType() != xt)
      return debugFailure(rewriter, op, "rotary: not a 3-D input with caches");
    auto cacheType = dyn_cast<RankedTensorType>(cosV.getType());
    if (!cacheType || cacheType.getRank() != 2 || cacheType.isDynamicDim(1))
      return debugFailure(rewriter, op, "rotary: caches are not 2-D");
    int64_t d = 2 * cacheType.getDimSize(1);
    int64_t rot = attrInt(op, "rotary_embedding_dim", 0);
    if ((rot != 0 && rot != d) || attrFloat(op, "scale", 1.0) != 1.0 ||
        xt.getDimSize(2) % d)
      return debugFailure(rewriter, op,
                          "rotary: partial rotary dims or a scale");
    std::string why;
    int64_t rows = 0;
    auto theta = cacheTheta(cosV, sinV, d, rows, why);
    if (!theta || !arePositions(pos, op->getParentOfType<func::FuncOp>(), why))
      return debugFailure(rewriter, op, "rotary: " + why);
    boundPositions(op, rewriter, rows);
    auto func = op->getParentOfType<func::FuncOp>();
    Value positions =
        ropePositions(rewriter, op.getLoc(), func, pos, namedArg(func, "past"));
    rewriter.replaceOp(op, createRope(rewriter, op.getLoc(), x, d, *theta,
                                      attrInt(op, "interleaved", 0) != 0,
                                      positions));
    return success();
  }
};

/// The fused attention ops on [batch, seq, width] q, k, v with an empty or
/// absent past, causal, no padding, their KV outputs unused:
/// com.microsoft.GroupQueryAttention (seqlens_k / total_sequence_length
/// must evaluate to n-1 / n; do_rotary: RoPE from its caches),
/// com.microsoft.MultiHeadAttention (unidirectional), and opset-23
/// Attention (is_causal, q_num_heads / kv_num_heads) -> (rope +) attention.
struct RaiseFusedAttention : OpRewritePattern<OnnxOp> {
  RaiseFusedAttention(MLIRContext *ctx) : OpRewritePattern(ctx) {
    setDebugName("fused-attention");
  }
  LogicalResult matchAndRewrite(OnnxOp op,
                                PatternRewriter &rewriter) const override {
    StringRef type = op.getOpType();
    bool gqa = type == "com.microsoft.GroupQueryAttention";
    bool mha = type == "com.microsoft.MultiHeadAttention";
    bool std23 = type == "Attention";
    if (!gqa && !mha && !std23)
      return failure();
    auto func = op->getParentOfType<func::FuncOp>();
    Value q = onnxInput(op, 0), k = onnxInput(op, 1), v = onnxInput(op, 2);
    RankedTensorType qt = q ? rankedFloat(q) : RankedTensorType();
    if (!qt || !k || !v || qt.getRank() != 3 || qt.isDynamicDim(2))
      return debugFailure(rewriter, op,
                          type + ": needs separate 3-D q, k and v");
    for (unsigned i = 1; i < op.getNumResults(); ++i)
      if (!op.getResult(i).use_empty())
        return debugFailure(rewriter, op,
                            type + ": KV outputs are used by the graph");
    int64_t heads, kvHeads;
    double scale = attrFloat(op, "scale", 0.0);
    int64_t pastAt;
    std::string why;
    if (gqa) {
      heads = attrInt(op, "num_heads", 0);
      kvHeads = attrInt(op, "kv_num_heads", 0);
      pastAt = 3;
      if (attrInt(op, "local_window_size", -1) != -1 ||
          attrFloat(op, "softcap", 0.0) != 0.0)
        return debugFailure(rewriter, op, "GQA: local window or softcap");
      // seqlens_k = n - 1 and total_sequence_length = n: no padding.
      SubgraphEvaluator eval(func, 7);
      auto sl = eval.eval(onnxInput(op, 5));
      auto total = eval.eval(onnxInput(op, 6));
      if (!sl || !total || total->v.size() != 1 || total->v[0] != 7 ||
          llvm::any_of(sl->v, [](double x) { return x != 6; }))
        return debugFailure(rewriter, op,
                            "GQA: seqlens_k / total_sequence_length are not "
                            "those of unpadded sequences: " +
                                eval.why());
    } else if (mha) {
      heads = kvHeads = attrInt(op, "num_heads", 0);
      pastAt = 6;
      if (attrInt(op, "unidirectional", 0) != 1)
        return debugFailure(rewriter, op, "MHA: not unidirectional (causal)");
      for (int64_t i = 3; i <= 5; ++i)
        if (onnxInput(op, i))
          return debugFailure(rewriter, op, "MHA: bias or masks");
    } else {
      heads = attrInt(op, "q_num_heads", 0);
      kvHeads = attrInt(op, "kv_num_heads", 0);
      pastAt = 4;
      if (attrInt(op, "is_causal", 0) != 1 || onnxInput(op, 3) ||
          attrFloat(op, "softcap", 0.0) != 0.0)
        return debugFailure(rewriter, op,
                            "Attention: not causal, a mask or a softcap");
    }
    for (int64_t i = pastAt; i < pastAt + 2; ++i)
      if (Value past = onnxInput(op, i); past && !isPastInput(past))
        return debugFailure(rewriter, op,
                            type + ": a past that is not an "
                                   "input (assumed empty)");
    if (heads <= 0 || kvHeads <= 0 || heads % kvHeads ||
        qt.getDimSize(2) % heads)
      return debugFailure(rewriter, op, type + ": head counts");
    int64_t headDim = qt.getDimSize(2) / heads;
    RankedTensorType kt = rankedFloat(k), vt = rankedFloat(v);
    if (!kt || !vt || kt.getRank() != 3 || vt != kt ||
        kt.getDimSize(2) != kvHeads * headDim)
      return debugFailure(rewriter, op, type + ": k/v widths");
    Location loc = op.getLoc();
    Value pastK = onnxInput(op, pastAt), pastV = onnxInput(op, pastAt + 1);
    if (!isKeptPast(pastK, kvHeads, headDim) ||
        !isKeptPast(pastV, kvHeads, headDim))
      pastK = pastV = Value();
    if (gqa && attrInt(op, "do_rotary", 0)) {
      int64_t rows = 0;
      auto theta =
          cacheTheta(onnxInput(op, 7), onnxInput(op, 8), headDim, rows, why);
      if (!theta)
        return debugFailure(rewriter, op, "GQA rotary: " + why);
      boundPositions(op, rewriter, rows);
      bool inter = attrInt(op, "rotary_interleaved", 0) != 0;
      // GroupQueryAttention's rotary positions follow the past (seqlens_k).
      Value positions = ropePositions(rewriter, loc, func, Value(), pastK,
                                      /*fromPast=*/true);
      q = createRope(rewriter, loc, q, headDim, *theta, inter, positions);
      k = createRope(rewriter, loc, k, headDim, *theta, inter, positions);
    }
    AttentionOp attn = createAttention(rewriter, loc, q, k, v, heads, kvHeads,
                                       headDim, scale, pastK, pastV);
    rewriter.replaceAllUsesWith(op.getResult(0), attn.getResult());
    rewriter.eraseOp(op); // its KV outputs are unused (checked above)
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

/// Concat(P, h, axis = 1) with P a prefix that evaluates to the same
/// [k, hidden] rows for every batch entry (zeros from ConstantOfShape, or
/// learned vectors written any other way) -> registers prepend.
struct RaiseRegistersPrependByValue : OpRewritePattern<OnnxOp> {
  // After registers-prepend, which keeps the parameter's name.
  RaiseRegistersPrependByValue(MLIRContext *ctx)
      : OpRewritePattern(ctx, /*benefit=*/0) {
    setDebugName("registers-prepend-by-value");
  }
  LogicalResult matchAndRewrite(OnnxOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getOpType() != "Concat" || attrInt(op, "axis", 0) != 1 ||
        op.getNumOperands() != 2)
      return failure();
    RankedTensorType p = rankedFloat(op.getOperand(0));
    RankedTensorType h = rankedFloat(op.getOperand(1));
    RankedTensorType out = rankedFloat(op.getResult(0));
    if (!p || !h || !out || h.getRank() != 3 || p.getRank() != 3 ||
        p.isDynamicDim(1) || h.isDynamicDim(2) || !h.getElementType().isF32())
      return failure();
    int64_t k = p.getDimSize(1), hidden = h.getDimSize(2);
    SubgraphEvaluator eval(op->getParentOfType<func::FuncOp>(), 4);
    auto t = eval.eval(op.getOperand(0));
    if (!t || t->shape != std::vector<int64_t>{1, k, hidden})
      return rewriter.notifyMatchFailure(op, "prefix does not evaluate");
    std::vector<float> rows(t->v.begin(), t->v.end());
    bool zero = llvm::all_of(rows, [](float x) { return x == 0.0f; });
    std::string name = zero ? "registers.zero_prefix" : "registers.prefix";
    Value regs;
    {
      OpBuilder::InsertionGuard guard(rewriter);
      auto func = op->getParentOfType<func::FuncOp>();
      rewriter.setInsertionPointToStart(&func.front());
      regs = makeF32Weight(rewriter, op.getLoc(), name, {k, hidden}, rows)
                 .getResult();
    }
    rewriter.replaceOpWithNewOp<RegistersOp>(op, out, RegisterMode::prepend,
                                             op.getOperand(1), regs);
    return success();
  }
};

/// registers add(registers prepend(h, 0), R) -> registers prepend(h, R):
/// a zero prefix with the first layer's vectors added is that prefix.
struct FoldZeroPrefixAdd : OpRewritePattern<RegistersOp> {
  FoldZeroPrefixAdd(MLIRContext *ctx) : OpRewritePattern(ctx) {
    setDebugName("registers-zero-prefix-add");
  }
  LogicalResult matchAndRewrite(RegistersOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getMode() != RegisterMode::add)
      return failure();
    auto pre = op.getInput().getDefiningOp<RegistersOp>();
    if (!pre || pre.getMode() != RegisterMode::prepend ||
        !pre.getResult().hasOneUse())
      return failure();
    WeightOp z = weightDef(pre.getRegisters());
    auto values = z ? constFloats(z.getValue()) : std::nullopt;
    if (!values || llvm::any_of(*values, [](double x) { return x != 0; }) ||
        pre.getRegisters().getType() != op.getRegisters().getType())
      return failure();
    rewriter.replaceOpWithNewOp<RegistersOp>(op, op.getType(),
                                             RegisterMode::prepend,
                                             pre.getInput(), op.getRegisters());
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

/// The model-level op a leftover generic op most likely belonged to: the
/// first recognisable op downstream of it.
std::string expectedOp(Operation *op) {
  SmallVector<std::pair<Operation *, int>> work{{op, 0}};
  llvm::DenseSet<Operation *> seen;
  while (!work.empty()) {
    auto [o, depth] = work.pop_back_val();
    if (!seen.insert(o).second || depth > 10)
      continue;
    if (auto g = dyn_cast<OnnxOp>(o)) {
      StringRef t = g.getOpType();
      if (t == "Softmax" || t.ends_with("Attention"))
        return "an attention block (w4a4.attention with w4a4.rope)";
      if (t == "ReduceMean" || t.ends_with("Normalization"))
        return "an RMSNorm (w4a4.rms_norm)";
      if (t == "Sigmoid")
        return "a SwiGLU MLP (w4a4.swiglu)";
      if (t.contains("Rotary"))
        return "a RoPE (w4a4.rope)";
    } else if (isa<AttentionOp, RoPEOp>(o)) {
      return "an attention block (w4a4.attention with w4a4.rope)";
    } else if (isa<RMSNormOp>(o)) {
      return "an RMSNorm (w4a4.rms_norm)";
    } else if (isa<LinearOp>(o)) {
      return "a linear (w4a4.linear)";
    } else if (isa<RegistersOp>(o)) {
      return "Depth Registers (w4a4.registers)";
    }
    for (Operation *u : o->getUsers())
      work.push_back({u, depth + 1});
  }
  return "";
}

/// Before raising: KV-cache outputs (present.*) leave the function and
/// what only fed them is erased, so the attention blocks that produced them
/// can be raised. When the model also has past inputs, their names are
/// kept (`w4a4.present_names`): the raised attention ops read the past and
/// return the present, and cleanUpInterface returns them again.
void dropPresentOutputs(ModuleOp module) {
  for (auto func : module.getOps<func::FuncOp>()) {
    SmallVector<Attribute> names;
    llvm::BitVector dropResults(func.getNumResults());
    for (unsigned i = 0; i < func.getNumResults(); ++i)
      if (auto name = func.getResultAttrOfType<StringAttr>(i, "w4a4.name"))
        if (name.getValue().starts_with("present") &&
            func.getNumResults() > 1) {
          dropResults.set(i);
          names.push_back(name);
        }
    bool hasPast = static_cast<bool>(namedArg(func, "past"));
    if (!names.empty() && hasPast)
      func->setAttr("w4a4.present_names",
                    ArrayAttr::get(module.getContext(), names));
    SmallVector<Attribute> assumed;
    if (!hasPast)
      for (Attribute n : names)
        assumed.push_back(
            StringAttr::get(module.getContext(),
                            cast<StringAttr>(n).getValue() + ": not returned"));
    if (dropResults.any()) {
      auto ret = cast<func::ReturnOp>(func.front().getTerminator());
      SmallVector<Value> keep;
      for (unsigned i = 0; i < ret.getNumOperands(); ++i)
        if (!dropResults.test(i))
          keep.push_back(ret.getOperand(i));
      OpBuilder b(ret);
      func::ReturnOp::create(b, ret.getLoc(), keep);
      ret.erase();
      (void)func.eraseResults(dropResults);
      // Erase what only fed them, last op first.
      SmallVector<Operation *> ops;
      for (Operation &op : func.front())
        ops.push_back(&op);
      for (Operation *op : llvm::reverse(ops))
        if (isOpTriviallyDead(op))
          op->erase();
    }
    if (!assumed.empty())
      module->setAttr("w4a4.assumed_inputs",
                      ArrayAttr::get(module.getContext(), assumed));
  }
}

/// The present output an export pairs with past input `past`:
/// past_key_values.0.key -> present.0.key, past_key_0 -> present_key_0.
std::string presentNameFor(StringRef past) {
  std::string n = past.str();
  for (StringRef from : {"past_key_values", "past"})
    if (size_t at = n.find(from.str()); at != std::string::npos)
      return n.replace(at, from.size(), "present");
  return n;
}

/// After raising, in a model that keeps its KV cache: the attention ops'
/// present keys and values become function results again, in the order and
/// under the names of the export's present.* outputs (paired with the past
/// inputs by name, else by order).
LogicalResult returnPresents(func::FuncOp func) {
  auto names = func->getAttrOfType<ArrayAttr>("w4a4.present_names");
  if (!names)
    return success();
  func->removeAttr("w4a4.present_names");
  SmallVector<std::pair<unsigned, Value>> pasts; // (past arg, present)
  func.walk([&](AttentionOp a) {
    if (a.getPastKey()) {
      pasts.push_back({cast<BlockArgument>(a.getPastKey()).getArgNumber(),
                       a.getPresentKey()});
      pasts.push_back({cast<BlockArgument>(a.getPastValue()).getArgNumber(),
                       a.getPresentValue()});
    }
  });
  ModuleOp module = func->getParentOfType<ModuleOp>();
  if (pasts.empty()) {
    // No attention reads the past: the model runs without one.
    SmallVector<Attribute> assumed;
    if (auto old = module->getAttrOfType<ArrayAttr>("w4a4.assumed_inputs"))
      assumed.assign(old.begin(), old.end());
    for (Attribute n : names)
      assumed.push_back(
          StringAttr::get(func.getContext(),
                          cast<StringAttr>(n).getValue() + ": not returned"));
    module->setAttr("w4a4.assumed_inputs",
                    ArrayAttr::get(func.getContext(), assumed));
    return success();
  }
  llvm::sort(pasts, [](auto &a, auto &b) { return a.first < b.first; });
  auto pastName = [&](unsigned arg) {
    auto n = func.getArgAttrOfType<StringAttr>(arg, "w4a4.name");
    return n ? n.getValue() : StringRef();
  };
  SmallVector<Value> presents;
  bool byName = true;
  for (Attribute n : names) {
    StringRef want = cast<StringAttr>(n).getValue();
    auto it = llvm::find_if(pasts, [&](auto &p) {
      return presentNameFor(pastName(p.first)) == want;
    });
    if (it == pasts.end()) {
      byName = false;
      break;
    }
    presents.push_back(it->second);
  }
  if (!byName) {
    if (pasts.size() != names.size())
      return func.emitError()
             << "the export returns " << names.size()
             << " present KV outputs but " << pasts.size()
             << " raised attention inputs read a past (the past inputs and "
                "present outputs do not pair up)";
    presents.clear();
    for (auto &p : pasts)
      presents.push_back(p.second);
  }
  auto ret = cast<func::ReturnOp>(func.front().getTerminator());
  SmallVector<Value> values(ret.getOperands());
  unsigned first = values.size();
  values.append(presents.begin(), presents.end());
  OpBuilder b(ret);
  func::ReturnOp::create(b, ret.getLoc(), values);
  ret.erase();
  for (Value p : presents)
    (void)func.insertResult(func.getNumResults(), p.getType(), {});
  for (unsigned i = 0; i < names.size(); ++i)
    func.setResultAttr(first + i, "w4a4.name", names[i]);
  return success();
}

/// After raising: stage 1's symbolic dims leave the function arguments, and
/// the inputs real exports have besides input_ids (attention_mask,
/// position_ids, an empty KV past) are dropped when nothing reads them any
/// more; what the raised model assumes of them is recorded in
/// `w4a4.assumed_inputs`.
LogicalResult cleanUpInterface(ModuleOp module) {
  for (auto func : module.getOps<func::FuncOp>()) {
    if (failed(returnPresents(func)))
      return failure();
    // Logits computed for the register prefix too: the raised model returns
    // the token positions' logits (the prefix is stripped before the final
    // norm, which is row-wise).
    RegistersOp prepend;
    bool stripped = false;
    func.walk([&](RegistersOp r) {
      if (r.getMode() == RegisterMode::prepend)
        prepend = r;
      stripped |= r.getMode() == RegisterMode::strip;
    });
    auto ret = cast<func::ReturnOp>(func.front().getTerminator());
    if (prepend && !stripped && ret.getNumOperands() >= 1) {
      auto head = ret.getOperand(0).getDefiningOp<LinearOp>();
      auto norm =
          head ? head.getInput().getDefiningOp<RMSNormOp>() : RMSNormOp();
      if (norm && norm->hasOneUse()) {
        OpBuilder b(norm);
        Value h = norm.getInput();
        auto strip =
            RegistersOp::create(b, norm.getLoc(), h.getType(),
                                RegisterMode::strip, h, prepend.getRegisters());
        norm->setOperand(0, strip.getResult());
        module->setAttr("w4a4.stripped_register_logits",
                        b.getI64IntegerAttr(
                            prepend.getRegisters().getType().getDimSize(0)));
      }
    }
    SmallVector<Attribute> assumed;
    if (auto old = module->getAttrOfType<ArrayAttr>("w4a4.assumed_inputs"))
      assumed.assign(old.begin(), old.end());
    for (unsigned i = 0; i < func.getNumResults(); ++i)
      if (auto n = func.getResultAttrOfType<StringAttr>(i, "w4a4.name");
          n && !n.getValue().starts_with("present"))
        func.removeResultAttr(
            i, StringAttr::get(module.getContext(), "w4a4.name"));
    llvm::BitVector erase(func.getNumArguments());
    for (unsigned i = 0; i < func.getNumArguments(); ++i) {
      func.removeArgAttr(i, "w4a4.dims");
      auto name = func.getArgAttrOfType<StringAttr>(i, "w4a4.name");
      if (!name || !func.getArgument(i).use_empty())
        continue;
      StringRef n = name.getValue();
      std::string what;
      if (n.contains("attention_mask"))
        what = n.str() + ": all ones (no padding)";
      else if (n.contains("position_ids"))
        what = n.str() + ": 0 .. n-1";
      else if (n.contains("past"))
        what = n.str() + ": empty (no KV past)";
      if (what.empty())
        continue;
      erase.set(i);
      assumed.push_back(StringAttr::get(module.getContext(), what));
    }
    if (erase.any()) {
      (void)func.eraseArguments(erase);
      module->setAttr("w4a4.assumed_inputs",
                      ArrayAttr::get(module.getContext(), assumed));
    }
  }
  return success();
}

struct W4A4RaiseOnnxPass
    : mlir::w4a4::impl::W4A4RaiseOnnxBase<W4A4RaiseOnnxPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    dropPresentOutputs(module);
    for (int phase = 1; phase <= 3; ++phase) {
      RewritePatternSet patterns(&getContext());
      populateRaiseOnnxPatterns(patterns, phase);
      if (failed(applyPatternsGreedily(module, std::move(patterns)))) {
        module.emitError("w4a4-raise-onnx: phase ")
            << phase << " did not converge";
        return signalPassFailure();
      }
    }
    if (failed(cleanUpInterface(module)))
      return signalPassFailure();
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
      std::string feeds, expected = expectedOp(left.getOperation());
      for (Operation *user : left->getUsers()) {
        if (auto u = dyn_cast<OnnxOp>(user))
          feeds = ", feeds node '" + u.getNodeName().str() + "' (op " +
                  u.getOpType().str() + ")";
        else
          feeds = ", feeds " + user->getName().getStringRef().str();
        break;
      }
      left.emitError()
          << "node '" << left.getNodeName() << "' (op " << left.getOpType()
          << ", opset " << (opset ? opset.getInt() : 0) << feeds
          << ") could not be raised (" << count
          << " generic ops left): the graph is not a SwiGLU decoder that "
             "w4a4-raise-onnx understands"
          << (expected.empty() ? std::string()
                               : "; expected it to be part of " + expected);
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
                 RaiseSlicedLinear, RaiseFlattenedLinear, RaiseLinearBias,
                 RaiseRMSNorm, RaiseFusedNorm, RaiseRMSNormGain, RaiseSwiGLU>(
        ctx);
  else if (phase == 2)
    patterns.add<RaiseAttention, RaiseRotaryEmbedding, RaiseFusedAttention,
                 RaiseRegistersPrepend, RaiseRegistersAdd,
                 RaiseRegistersPrependByValue, FoldZeroPrefixAdd>(ctx);
  else
    patterns.add<RaiseResidualAdd, RaiseRegistersStrip>(ctx);
}
