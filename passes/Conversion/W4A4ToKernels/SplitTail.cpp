//===- SplitTail.cpp - the row-wise tail of w4a4k IR ----------------------===//
//
// --w4a4k-split-tail: the ops between the last value every position needs
// (the residual stream after the last block) and the returned logits work
// row by row; this pass puts a w4a4k.tail_rows in front of them and marks
// them `w4a4k.tail`, so that the code runs them on the rows the caller
// scores only (the last positions of each sequence).
//
//===----------------------------------------------------------------------===//

#include "dialects/W4A4/W4A4Ops.h"
#include "dialects/W4A4Kernel/W4A4KernelDialect.h"
#include "passes/Conversion/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/SetVector.h"

namespace mlir::w4a4 {
#define GEN_PASS_DEF_W4A4KSPLITTAIL
#include "passes/Conversion/Passes.h.inc"
} // namespace mlir::w4a4

using namespace mlir;

namespace {

/// Ops whose every output row depends on the same input row only.
bool rowLocal(Operation *op) {
  return isa<w4a4k::RMSNormOp, w4a4k::QuantizeOp, w4a4k::QGemmOp, w4a4k::GemmOp,
             w4a4k::FakeQuantOp, w4a4k::HadamardOp, w4a4k::AddOp,
             w4a4k::SwiGLUOp, w4a4k::RMSNormQuantizeOp,
             w4a4k::SwiGLUQuantizeOp>(op);
}

struct SplitTailPass
    : public mlir::w4a4::impl::W4A4KSplitTailBase<SplitTailPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto func = module.lookupSymbol<func::FuncOp>("forward");
    if (!func || func.getBody().empty())
      return;
    Block &body = func.getBody().front();
    Operation *ret = body.getTerminator();
    if (ret->getNumOperands() != 1)
      return;
    Operation *start = ret->getOperand(0).getDefiningOp();
    if (!start || !rowLocal(start))
      return;
    // Grow the tail backwards: a row-local producer joins when all its
    // readers are in the tail already. Every prefix of the growth is closed
    // (its values are read only inside it or returned); the tail is the
    // longest prefix that starts from exactly one activation (weights
    // aside): the final norm and LM head, and the last MLP block when its
    // ops are row-local too.
    llvm::SetVector<Operation *> tail;
    tail.insert(start);
    for (size_t i = 0; i < tail.size(); ++i)
      for (Value v : tail[i]->getOperands()) {
        Operation *def = v.getDefiningOp();
        if (!def || tail.contains(def) || !rowLocal(def))
          continue;
        if (llvm::all_of(def->getUsers(),
                         [&](Operation *u) { return tail.contains(u); }))
          tail.insert(def);
      }
    auto frontierOf = [&](ArrayRef<Operation *> ops) {
      llvm::SetVector<Operation *> in(ops.begin(), ops.end());
      llvm::SetVector<Value> frontier;
      for (Operation *op : ops)
        for (Value v : op->getOperands()) {
          Operation *def = v.getDefiningOp();
          if (def && (in.contains(def) || isa<w4a4::WeightOp>(def)))
            continue;
          frontier.insert(v);
        }
      return frontier;
    };
    size_t best = 0;
    llvm::SetVector<Value> frontier;
    for (size_t n = 1; n <= tail.size(); ++n) {
      llvm::SetVector<Value> f = frontierOf(tail.getArrayRef().take_front(n));
      if (f.size() == 1 && f[0].getDefiningOp()) {
        best = n;
        frontier = f;
      }
    }
    if (!best)
      return;
    tail = llvm::SetVector<Operation *>(tail.begin(), tail.begin() + best);
    Value x = frontier[0];
    auto type = dyn_cast<RankedTensorType>(x.getType());
    if (!type || type.getRank() != 3 || !type.getElementType().isF32())
      return;
    OpBuilder b(&getContext());
    b.setInsertionPointAfter(x.getDefiningOp());
    auto rows = w4a4k::TailRowsOp::create(b, x.getLoc(), type, x);
    x.replaceUsesWithIf(rows.getResult(), [&](OpOperand &use) {
      return tail.contains(use.getOwner());
    });
    for (Operation *op : tail)
      op->setAttr("w4a4k.tail", b.getUnitAttr());
  }
};

} // namespace
