//===- FoldNorms.cpp - fold RMSNorm gains into the readers ----------------===//

#include "dialects/W4A4/W4A4Ops.h"
#include "dialects/W4A4/W4A4Utils.h"
#include "passes/Calibration.h"
#include "passes/Passes.h"
#include "passes/Report.h"

#include "mlir/IR/Builders.h"

namespace mlir::w4a4 {
#define GEN_PASS_DEF_W4A4FOLDNORMS
#include "passes/Passes.h.inc"
} // namespace mlir::w4a4

using namespace mlir;
using namespace mlir::w4a4;

namespace {

struct FoldNormsPass : mlir::w4a4::impl::W4A4FoldNormsBase<FoldNormsPass> {
  using Base::Base;

  void runOnOperation() override {
    SmallVector<RMSNormOp> norms;
    getOperation().walk([&](RMSNormOp n) {
      if (n.getGain())
        norms.push_back(n);
    });
    if (!norms.empty())
      dropCalibration(getOperation());
    reportFact("gains_folded", static_cast<int64_t>(norms.size()));
    for (RMSNormOp n : norms)
      if (failed(fold(n)))
        return signalPassFailure();
    getOperation().walk([&](WeightOp w) {
      if (w->use_empty())
        w.erase();
    });
  }

  LogicalResult fold(RMSNormOp norm) {
    auto gainOp = norm.getGain().getDefiningOp<WeightOp>();
    std::optional<std::vector<double>> gain =
        gainOp ? readFloats(gainOp.getValue()) : std::nullopt;
    if (!gain)
      return norm.emitError(
          "w4a4-fold-norms: the gain is not a readable w4a4.weight");
    SmallVector<LinearOp> readers;
    for (Operation *user : norm->getUsers()) {
      auto lin = dyn_cast<LinearOp>(user);
      if (!lin || lin.getInput() != norm.getResult())
        return user->emitError("w4a4-fold-norms: the gain of the norm at ")
               << norm.getLoc() << " is read by '" << user->getName()
               << "', not only by linears";
      readers.push_back(lin);
    }
    for (LinearOp lin : readers) {
      auto w = lin.getWeight().getDefiningOp<WeightOp>();
      std::optional<std::vector<double>> values =
          w ? readFloats(w.getValue()) : std::nullopt;
      if (!values)
        return lin.emitError(
            "w4a4-fold-norms: the weight is not a readable w4a4.weight");
      int64_t out = w.getType().getDimSize(0), in = w.getType().getDimSize(1);
      if (static_cast<int64_t>(gain->size()) != in ||
          static_cast<int64_t>(values->size()) != out * in)
        return lin.emitError("w4a4-fold-norms: the norm's gain has ")
               << gain->size() << " elements but the weight " << w.getType()
               << " reads " << in << " inputs";
      std::vector<float> folded(out * in);
      for (int64_t o = 0; o < out; ++o)
        for (int64_t i = 0; i < in; ++i)
          folded[o * in + i] =
              static_cast<float>((*values)[o * in + i] * (*gain)[i]);
      OpBuilder b(lin);
      // A weight shared with other users (tied embeddings) keeps its value;
      // the folded copy gets its own name.
      std::string name = w.getName().str();
      if (!w->hasOneUse())
        name += ".folded";
      WeightOp nw = createF32Weight(b, w.getLoc(), name, {out, in}, folded);
      lin.getWeightMutable().assign(nw.getResult());
    }
    OpBuilder b(norm);
    auto bare =
        RMSNormOp::create(b, norm.getLoc(), norm.getType(), norm.getInput(),
                          Value(), norm.getEpsilonAttr());
    norm.replaceAllUsesWith(bare.getResult());
    norm.erase();
    return success();
  }
};

} // namespace
