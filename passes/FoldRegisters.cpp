//===- FoldRegisters.cpp - Depth Registers to a constant KV prefix --------===//

#include "dialects/W4A4/W4A4Ops.h"
#include "dialects/W4A4/W4A4Utils.h"
#include "interpreter/Executor.h"
#include "passes/Passes.h"
#include "passes/Report.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

namespace mlir::w4a4 {
#define GEN_PASS_DEF_W4A4FOLDREGISTERS
#include "passes/Passes.h.inc"
} // namespace mlir::w4a4

using namespace mlir;
using namespace mlir::w4a4;

namespace {

struct FoldRegistersPass
    : mlir::w4a4::impl::W4A4FoldRegistersBase<FoldRegistersPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<RegistersOp> registers;
    module.walk([&](RegistersOp op) { registers.push_back(op); });
    if (registers.empty())
      return;
    int64_t k = -1;
    for (RegistersOp r : registers) {
      if (r.getMode() != RegisterMode::prepend)
        continue;
      if (k >= 0) {
        r.emitError("w4a4-fold-registers: more than one register prefix");
        return signalPassFailure();
      }
      k = r.getRegisters().getType().getDimSize(0);
    }
    if (k < 0) {
      registers.front().emitError("w4a4-fold-registers: registers are added or "
                                  "stripped but never prepended");
      return signalPassFailure();
    }
    for (RegistersOp r : registers)
      if (r.getInput().getType() != r.getType()) {
        r.emitError("w4a4-fold-registers: needs a dynamic sequence axis, got ")
            << r.getType();
        return signalPassFailure();
      }
    SmallVector<AttentionOp> attentions;
    module.walk([&](AttentionOp a) { attentions.push_back(a); });
    for (AttentionOp a : attentions)
      if (a.getKeyPrefix()) {
        a.emitError(
            "w4a4-fold-registers: attention already has a constant prefix");
        return signalPassFailure();
      }

    // Run the register prefix alone: an empty token sequence.
    auto executor = Executor::create(module);
    if (!executor) {
      module.emitError("w4a4-fold-registers: ")
          << toString(executor.takeError());
      return signalPassFailure();
    }
    llvm::DenseMap<Value, HostTensor> kv;
    llvm::DenseSet<Value> wanted;
    for (AttentionOp a : attentions) {
      wanted.insert(a.getKey());
      wanted.insert(a.getValue());
    }
    auto result = (*executor)->run({}, 1, 0, [&](Value v, const HostTensor &t) {
      if (wanted.contains(v)) {
        HostTensor copy = HostTensor::zerosF32(t.shape);
        std::copy(t.f32, t.f32 + t.numel(), copy.mutableF32());
        kv[v] = std::move(copy);
      }
    });
    if (!result) {
      module.emitError("w4a4-fold-registers: running the prefix failed: ")
          << toString(result.takeError());
      return signalPassFailure();
    }

    // Constant prefixes on every attention.
    int index = 0;
    for (AttentionOp a : attentions) {
      OpBuilder b(a);
      std::string base = "layers." + std::to_string(index++) + ".attention";
      auto prefix = [&](Value v, StringRef what) {
        const HostTensor &t = kv[v];
        int64_t width = t.shape.back();
        return createF32Weight(b, a.getLoc(), base + "." + what.str(),
                               {k, width}, ArrayRef<float>(t.f32, k * width))
            .getResult();
      };
      Value kp = prefix(a.getKey(), "key_prefix"),
            vp = prefix(a.getValue(), "value_prefix");
      auto folded = AttentionOp::create(
          b, a.getLoc(), a.getResult().getType(),
          TypeRange(a.getPresents().getTypes()), a.getQuery(), a.getKey(),
          a.getValue(), kp, vp, a.getPastKey(), a.getPastValue(),
          a.getNumHeadsAttr(), a.getNumKvHeadsAttr(), a.getHeadDimAttr(),
          a.getScaleAttr());
      a.replaceAllUsesWith(folded.getResults());
      a.erase();
    }
    // Token positions now start after the prefix.
    module.walk([&](RoPEOp r) {
      r.setPositionOffsetAttr(Builder(r).getI64IntegerAttr(
          static_cast<int64_t>(r.getPositionOffset()) + k));
    });
    for (RegistersOp r : registers) {
      r.replaceAllUsesWith(r.getInput());
      r.erase();
    }
    module.walk([&](WeightOp w) {
      if (w->use_empty())
        w.erase();
    });
    reportFact("registers", k);
    reportFact("attentions_with_prefix", static_cast<int64_t>(index));
  }
};

} // namespace
