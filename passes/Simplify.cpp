//===- Simplify.cpp - exact folds and canonicalizations of w4a4 ops -------===//

#include "dialects/W4A4/W4A4Ops.h"
#include "passes/Passes.h"

#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::w4a4 {
#define GEN_PASS_DEF_W4A4SIMPLIFY
#include "passes/Passes.h.inc"
} // namespace mlir::w4a4

using namespace mlir;
using namespace mlir::w4a4;

namespace {

struct W4A4SimplifyPass : mlir::w4a4::impl::W4A4SimplifyBase<W4A4SimplifyPass> {
  using Base::Base;

  void runOnOperation() override {
    MLIRContext *context = &getContext();
    RewritePatternSet patterns(context);
    for (RegisteredOperationName name : context->getRegisteredOperations())
      if (name.getDialectNamespace() == W4A4Dialect::getDialectNamespace())
        name.getCanonicalizationPatterns(patterns, context);

    GreedyRewriteConfig config;
    config.setMaxIterations(maxIterations);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns),
                                     config))) {
      getOperation()->emitError("w4a4-simplify did not converge within "
                                "max-iterations=")
          << static_cast<int64_t>(maxIterations);
      return signalPassFailure();
    }
  }
};

} // namespace
