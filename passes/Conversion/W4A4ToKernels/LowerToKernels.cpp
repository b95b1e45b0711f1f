//===- LowerToKernels.cpp - w4a4 model-level ops to w4a4k kernel calls ----===//
//
// --w4a4-lower-to-kernels{target=cpu}: every model-level op becomes the
// kernel calls the target runs, with the decisions made here explicit in the
// IR:
//  - a w4a4.qlinear with quantized activations becomes one w4a4k.quantize
//    of its input, shared by every qlinear that reads the same value with
//    the same bits and clip ratio (q/k/v, w1/w3), and a w4a4k.qgemm whose
//    `layout` is the target's weight layout;
//  - a low-rank correction becomes two fp32 GEMMs and an add;
//  - a Hadamard's signs (given or drawn from a seed) become a weight;
//  - weight-only quantization, KV-cache inputs and random orthogonal
//    rotations have no CPU kernel yet and are refused with an error naming
//    the op.
//
//===----------------------------------------------------------------------===//

#include "dialects/W4A4/W4A4Ops.h"
#include "dialects/W4A4Kernel/W4A4KernelDialect.h"
#include "passes/Conversion/Passes.h"
#include "passes/Conversion/W4A4ToKernels/W4A4ToKernels.h"
#include "w4a4/runtime/Hadamard.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::w4a4 {
#define GEN_PASS_DEF_W4A4LOWERTOKERNELS
#include "passes/Conversion/Passes.h.inc"
} // namespace mlir::w4a4

using namespace mlir;
using namespace mlir::w4a4;

namespace {

struct LowerEmbedding : OpRewritePattern<EmbeddingOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(EmbeddingOp op,
                                PatternRewriter &rewriter) const override {
    rewriter.replaceOpWithNewOp<w4a4k::EmbeddingOp>(op, op.getType(),
                                                    op.getTable(), op.getIds());
    return success();
  }
};

struct LowerRMSNorm : OpRewritePattern<RMSNormOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(RMSNormOp op,
                                PatternRewriter &rewriter) const override {
    rewriter.replaceOpWithNewOp<w4a4k::RMSNormOp>(
        op, op.getType(), op.getInput(), op.getGain(), op.getEpsilonAttr());
    return success();
  }
};

struct LowerLinear : OpRewritePattern<LinearOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(LinearOp op,
                                PatternRewriter &rewriter) const override {
    rewriter.replaceOpWithNewOp<w4a4k::GemmOp>(op, op.getType(), op.getInput(),
                                               op.getWeight(), op.getBias());
    return success();
  }
};

/// The w4a4k.quantize of `input` at `bits` / `clip`: an existing one, or a
/// new one right after the input is defined (so that it dominates every
/// reader of the input).
Value sharedQuantize(PatternRewriter &rewriter, Value input, int64_t bits,
                     FloatAttr clip) {
  auto type = cast<RankedTensorType>(input.getType());
  auto qtype = w4a4k::QRowsType::get(rewriter.getContext(), bits,
                                     type.getShape().back());
  for (Operation *user : input.getUsers())
    if (auto q = dyn_cast<w4a4k::QuantizeOp>(user))
      if (q.getType() == qtype && q.getClipRatioAttr() == clip)
        return q;
  OpBuilder::InsertionGuard guard(rewriter);
  if (Operation *def = input.getDefiningOp())
    rewriter.setInsertionPointAfter(def);
  else
    rewriter.setInsertionPointToStart(cast<BlockArgument>(input).getOwner());
  return w4a4k::QuantizeOp::create(rewriter, input.getLoc(), qtype, input,
                                   clip);
}

struct LowerQLinear : OpRewritePattern<QLinearOp> {
  LowerQLinear(MLIRContext *ctx, StringRef layout)
      : OpRewritePattern(ctx), layout(layout.str()) {}
  LogicalResult matchAndRewrite(QLinearOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getActBits() == 0)
      return failure(); // reported by the pass
    Location loc = op.getLoc();
    auto type = cast<RankedTensorType>(op.getType());
    Value xq = sharedQuantize(rewriter, op.getInput(), op.getActBits(),
                              op.getActClipRatioAttr());
    Value y = w4a4k::QGemmOp::create(
        rewriter, loc, type, xq, op.getWeightCodes(), op.getWeightScales(),
        op.getBias(), /*residual=*/Value(), op.getWeightBitsAttr(),
        rewriter.getI64IntegerAttr(type.getShape().back()),
        op.getGroupSizeAttr(), rewriter.getStringAttr(layout));
    if (Value left = op.getLowRankLeft()) {
      Value right = op.getLowRankRight();
      auto xt = cast<RankedTensorType>(op.getInput().getType());
      SmallVector<int64_t> shape(xt.getShape());
      shape.back() = cast<RankedTensorType>(right.getType()).getShape()[0];
      auto tt = RankedTensorType::get(shape, rewriter.getF32Type());
      Value t = w4a4k::GemmOp::create(rewriter, loc, tt, op.getInput(), right,
                                      Value());
      Value lr = w4a4k::GemmOp::create(rewriter, loc, type, t, left, Value());
      y = w4a4k::AddOp::create(rewriter, loc, type, y, lr);
    }
    rewriter.replaceOp(op, y);
    return success();
  }
  std::string layout;
};

struct LowerRoPE : OpRewritePattern<RoPEOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(RoPEOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getPositions())
      return failure(); // KV-cache export: reported by the pass
    rewriter.replaceOpWithNewOp<w4a4k::RoPEOp>(
        op, op.getType(), op.getInput(), Value(), op.getHeadDimAttr(),
        op.getThetaAttr(), op.getPositionOffsetAttr(),
        rewriter.getBoolAttr(op.getInterleaved()));
    return success();
  }
};

struct LowerAttention : OpRewritePattern<AttentionOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(AttentionOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getPastKey())
      return failure(); // reported by the pass
    double scale = op.getScale()
                       ? op.getScale()->convertToDouble()
                       : 1.0 / std::sqrt(static_cast<double>(op.getHeadDim()));
    rewriter.replaceOpWithNewOp<w4a4k::AttentionOp>(
        op, op->getResult(0).getType(), op.getQuery(), op.getKey(),
        op.getValue(), op.getKeyPrefix(), op.getValuePrefix(),
        op.getNumHeadsAttr(), op.getNumKvHeadsAttr(), op.getHeadDimAttr(),
        rewriter.getF64FloatAttr(scale), IntegerAttr());
    return success();
  }
};

/// Elementwise ops whose operands carry over unchanged (swiglu, add).
template <typename From, typename To>
struct LowerElementwise : OpRewritePattern<From> {
  using OpRewritePattern<From>::OpRewritePattern;
  LogicalResult matchAndRewrite(From op,
                                PatternRewriter &rewriter) const override {
    rewriter.replaceOpWithNewOp<To>(op, op.getType(), op->getOperands());
    return success();
  }
};

struct LowerHadamard : OpRewritePattern<HadamardOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(HadamardOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getKind() == HadamardKind::random_orthogonal)
      return failure(); // reported by the pass
    auto type = cast<RankedTensorType>(op.getType());
    int64_t width = type.getShape().back();
    std::vector<float> signs;
    if (std::optional<ArrayRef<int8_t>> s = op.getSigns())
      for (int8_t v : *s)
        signs.push_back(v);
    else if (std::optional<uint64_t> seed = op.getSeed())
      signs = ::w4a4::rt::seededSigns(*seed, width);
    Value signValue;
    if (!signs.empty()) {
      auto st = RankedTensorType::get({width}, rewriter.getF32Type());
      auto func = op->getParentOfType<func::FuncOp>();
      OpBuilder::InsertionGuard guard(rewriter);
      rewriter.setInsertionPointToStart(&func.getBody().front());
      // Named in order of creation: hadamard.0.signs, hadamard.1.signs...
      int64_t index = 0;
      func.walk([&](WeightOp w) {
        if (w.getName().starts_with("hadamard."))
          ++index;
      });
      std::string name = "hadamard." + std::to_string(index) + ".signs";
      signValue = WeightOp::create(
          rewriter, op.getLoc(), st, rewriter.getStringAttr(name),
          DenseElementsAttr::get(st, ArrayRef<float>(signs)));
    }
    rewriter.replaceOpWithNewOp<w4a4k::HadamardOp>(
        op, type, op.getInput(), signValue, op.getSizeAttr(),
        op.getStrideAttr(), rewriter.getBoolAttr(op.getInverse()));
    return success();
  }
};

struct LowerQuantize : OpRewritePattern<QuantizeOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(QuantizeOp op,
                                PatternRewriter &rewriter) const override {
    rewriter.replaceOpWithNewOp<w4a4k::FakeQuantOp>(
        op, op.getType(), op.getInput(), op.getBitsAttr(),
        op.getClipRatioAttr(),
        rewriter.getI64IntegerAttr(op.getGroupSize().value_or(0)));
    return success();
  }
};

struct LowerRegisters : OpRewritePattern<RegistersOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(RegistersOp op,
                                PatternRewriter &rewriter) const override {
    rewriter.replaceOpWithNewOp<w4a4k::RegistersOp>(
        op, op.getType(), op.getInput(), op.getRegisters(),
        rewriter.getStringAttr(stringifyRegisterMode(op.getMode())));
    return success();
  }
};

/// Why `op` has no kernel on the target (after the patterns ran).
std::string whyNoKernel(Operation *op) {
  if (auto q = dyn_cast<QLinearOp>(op); q && q.getActBits() == 0)
    return "weight-only quantization (act_bits = 0) has no CPU kernel yet; "
           "quantize the activations too";
  if (isa<RoPEOp, AttentionOp, CachePositionsOp>(op))
    return "KV-cache inputs (an export with past_key_values): run "
           "--w4a4-internalize-kv-cache first (w4a4-compile does), which "
           "gives the artifact its own cache";
  if (auto h = dyn_cast<HadamardOp>(op))
    return "random_orthogonal rotations have no kernel yet";
  return "the target has no kernel for this op";
}

struct LowerToKernelsPass
    : public mlir::w4a4::impl::W4A4LowerToKernelsBase<LowerToKernelsPass> {
  using W4A4LowerToKernelsBase::W4A4LowerToKernelsBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (target != "cpu") {
      module.emitError() << "unknown target '" << target
                         << "' for --w4a4-lower-to-kernels (available: cpu)";
      return signalPassFailure();
    }
    RewritePatternSet patterns(&getContext());
    populateW4A4ToKernelsPatterns(patterns, target);
    GreedyRewriteConfig config;
    config.enableFolding(false);
    if (failed(applyPatternsGreedily(module, std::move(patterns), config)))
      return signalPassFailure();
    bool failedOp = false;
    module.walk([&](Operation *op) {
      if (op->getDialect() &&
          op->getDialect()->getNamespace() ==
              W4A4Dialect::getDialectNamespace() &&
          !isa<WeightOp>(op)) {
        op->emitError() << "cannot lower to target '" << target
                        << "': " << whyNoKernel(op);
        failedOp = true;
      }
    });
    if (failedOp)
      return signalPassFailure();
    // Every attention keeps a layer of the artifact's KV cache (decoding
    // appends to it); numbered in program order.
    int64_t layers = 0;
    module.walk([&](w4a4k::AttentionOp a) {
      a.setCacheLayerAttr(
          IntegerAttr::get(IntegerType::get(&getContext(), 64), layers++));
    });
    module->setAttr("w4a4k.target", StringAttr::get(&getContext(), target));
    module->setAttr(
        "w4a4k.cache_layers",
        IntegerAttr::get(IntegerType::get(&getContext(), 64), layers));
  }
};

} // namespace

void mlir::w4a4::populateW4A4ToKernelsPatterns(RewritePatternSet &patterns,
                                               StringRef target) {
  MLIRContext *ctx = patterns.getContext();
  patterns.add<LowerEmbedding, LowerRMSNorm, LowerLinear, LowerRoPE,
               LowerAttention, LowerElementwise<SwiGLUOp, w4a4k::SwiGLUOp>,
               LowerElementwise<AddOp, w4a4k::AddOp>, LowerHadamard,
               LowerQuantize, LowerRegisters>(ctx);
  patterns.add<LowerQLinear>(ctx, target == "cpu" ? "cpu_vnni_panels" : "");
}
