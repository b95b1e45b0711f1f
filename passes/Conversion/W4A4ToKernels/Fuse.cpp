//===- Fuse.cpp - kernel-level fusions of w4a4k IR ------------------------===//
//
// --w4a4k-fuse: producers fused with the quantization that reads them, and
// residual adds fused into the integer GEMM's epilogue. Every fused kernel
// runs the unfused kernels' row operations in their order, so the values
// are bit-identical; what goes away is the fp32 tensor between them (a
// write and a read of rows x width floats) and a pass over memory.
//
//===----------------------------------------------------------------------===//

#include "dialects/W4A4/W4A4Ops.h"
#include "dialects/W4A4Kernel/W4A4KernelDialect.h"
#include "passes/Conversion/Passes.h"
#include "passes/Conversion/W4A4ToKernels/W4A4ToKernels.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::w4a4 {
#define GEN_PASS_DEF_W4A4KFUSE
#include "passes/Conversion/Passes.h.inc"
} // namespace mlir::w4a4

using namespace mlir;

namespace {

/// The op defining `v` when `v` has no other reader.
template <typename OpTy> OpTy soleProducer(Value v) {
  auto op = v.getDefiningOp<OpTy>();
  return op && v.hasOneUse() ? op : OpTy();
}

/// quantize(rms_norm(x)) -> rms_norm_quantize(x).
struct FuseNormQuantize : OpRewritePattern<w4a4k::QuantizeOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(w4a4k::QuantizeOp q,
                                PatternRewriter &rewriter) const override {
    auto norm = soleProducer<w4a4k::RMSNormOp>(q.getInput());
    if (!norm)
      return failure();
    rewriter.replaceOpWithNewOp<w4a4k::RMSNormQuantizeOp>(
        q, q.getType(), norm.getInput(), norm.getGain(), norm.getEpsilonAttr(),
        q.getClipRatioAttr());
    rewriter.eraseOp(norm);
    return success();
  }
};

/// quantize([hadamard](swiglu(gate, up))) -> swiglu_quantize(gate, up).
struct FuseSwiGLUQuantize : OpRewritePattern<w4a4k::QuantizeOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(w4a4k::QuantizeOp q,
                                PatternRewriter &rewriter) const override {
    Value in = q.getInput();
    auto had = soleProducer<w4a4k::HadamardOp>(in);
    if (had)
      in = had.getInput();
    auto swiglu = soleProducer<w4a4k::SwiGLUOp>(in);
    if (!swiglu)
      return failure();
    int64_t size = had ? had.getSize() : 0, stride = had ? had.getStride() : 1;
    rewriter.replaceOpWithNewOp<w4a4k::SwiGLUQuantizeOp>(
        q, q.getType(), swiglu.getGate(), swiglu.getUp(),
        had ? had.getSigns() : Value(), rewriter.getI64IntegerAttr(size),
        rewriter.getI64IntegerAttr(stride),
        rewriter.getBoolAttr(had && had.getInverse()), q.getClipRatioAttr());
    if (had)
      rewriter.eraseOp(had);
    rewriter.eraseOp(swiglu);
    return success();
  }
};

/// add(qgemm(...), r) -> qgemm(..., residual(r)), at the add (where r is
/// defined).
struct FuseResidual : OpRewritePattern<w4a4k::AddOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(w4a4k::AddOp add,
                                PatternRewriter &rewriter) const override {
    Value gemmValue = add.getLhs(), residual = add.getRhs();
    auto gemm = soleProducer<w4a4k::QGemmOp>(gemmValue);
    if (!gemm || gemm.getResidual()) {
      std::swap(gemmValue, residual);
      gemm = soleProducer<w4a4k::QGemmOp>(gemmValue);
    }
    if (!gemm || gemm.getResidual() || gemm.getType() != add.getType() ||
        residual.getType() != add.getType())
      return failure();
    auto fused = w4a4k::QGemmOp::create(
        rewriter, add.getLoc(), add.getType(), gemm.getInput(), gemm.getCodes(),
        gemm.getScales(), gemm.getBias(), residual, gemm.getWeightBitsAttr(),
        gemm.getOutFeaturesAttr(), gemm.getGroupSizeAttr(),
        gemm.getLayoutAttr());
    rewriter.replaceOp(add, fused.getResult());
    rewriter.eraseOp(gemm);
    return success();
  }
};

struct FusePass : public mlir::w4a4::impl::W4A4KFuseBase<FusePass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    mlir::w4a4::populateW4A4KFusionPatterns(patterns);
    GreedyRewriteConfig config;
    config.enableFolding(false);
    if (failed(
            applyPatternsGreedily(getOperation(), std::move(patterns), config)))
      return signalPassFailure();
  }
};

} // namespace

void mlir::w4a4::populateW4A4KFusionPatterns(RewritePatternSet &patterns) {
  patterns.add<FuseNormQuantize, FuseSwiGLUQuantize, FuseResidual>(
      patterns.getContext());
}
