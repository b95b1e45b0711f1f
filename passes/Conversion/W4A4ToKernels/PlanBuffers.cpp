//===- PlanBuffers.cpp - static activation buffer plan of w4a4k IR --------===//
//
// --w4a4k-plan-buffers: every fp32 activation result of a kernel op gets a
// slot in one arena, by liveness: a value lives from its op to its last
// reader, and values whose lifetimes overlap get disjoint slots. All
// activations are rows of one token, so the arena is rows x arena_width
// floats with rows = batch * (seq + the largest register prefix), and a
// slot [offset, width] is the contiguous block of rows x width floats at
// offset x rows: each buffer's size is a function of batch and sequence,
// fixed at compile time up to those two numbers. The returned value (the
// logits) is written to the caller's buffer (`w4a4k.slot = "result"`).
// Quantized activations get one of `w4a4k.qrows_slots` reusable holders, by the
// same liveness. Register ops shift the sequence: each op's rows are batch *
// (seq + its `w4a4k.seq_extra`).
//
//===----------------------------------------------------------------------===//

#include "dialects/W4A4/W4A4Ops.h"
#include "dialects/W4A4Kernel/W4A4KernelDialect.h"
#include "passes/Conversion/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include <map>

namespace mlir::w4a4 {
#define GEN_PASS_DEF_W4A4KPLANBUFFERS
#include "passes/Conversion/Passes.h.inc"
} // namespace mlir::w4a4

using namespace mlir;

namespace {

/// First-fit interval colouring: slot ranges (or holder indices) in use
/// until a given op index.
struct Arena {
  struct Busy {
    int64_t begin, end, until;
  };
  std::vector<Busy> busy;
  int64_t width = 0;

  int64_t place(int64_t w, int64_t from, int64_t until) {
    std::vector<std::pair<int64_t, int64_t>> taken;
    for (const Busy &b : busy)
      if (b.until >= from)
        taken.push_back({b.begin, b.end});
    std::sort(taken.begin(), taken.end());
    int64_t offset = 0;
    for (auto [b, e] : taken) {
      if (offset + w <= b)
        break;
      offset = std::max(offset, e);
    }
    busy.push_back({offset, offset + w, until});
    width = std::max(width, offset + w);
    return offset;
  }
};

struct PlanBuffersPass
    : public mlir::w4a4::impl::W4A4KPlanBuffersBase<PlanBuffersPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto func = module.lookupSymbol<func::FuncOp>("forward");
    if (!func) {
      module.emitError("--w4a4k-plan-buffers: no @forward function");
      return signalPassFailure();
    }
    Block &body = func.getBody().front();
    llvm::DenseMap<Operation *, int64_t> index;
    int64_t n = 0;
    for (Operation &op : body)
      index[&op] = n++;
    auto lastUse = [&](Value v) {
      int64_t last = index[v.getDefiningOp()];
      for (Operation *user : v.getUsers())
        if (Operation *top = body.findAncestorOpInBlock(*user))
          last = std::max(last, index[top]);
      return last;
    };
    Value returned = body.getTerminator()->getNumOperands()
                         ? body.getTerminator()->getOperand(0)
                         : Value();
    Builder b(&getContext());
    Arena floats, holders;
    llvm::DenseMap<Value, int64_t> extra; // seq offset of each activation
    int64_t maxExtra = 0;
    bool perCallRegisters = false;
    bool failedPlan = false;
    for (Operation &opRef : body) {
      Operation *op = &opRef;
      if (!isa<w4a4k::W4A4KDialect>(op->getDialect()))
        continue;
      // The sequence offset: an activation operand's, shifted by registers.
      int64_t e = 0;
      for (Value v : op->getOperands())
        if (auto it = extra.find(v); it != extra.end()) {
          e = it->second;
          break;
        }
      if (auto r = dyn_cast<w4a4k::RegistersOp>(op)) {
        int64_t k =
            cast<RankedTensorType>(r.getRegisters().getType()).getShape()[0];
        if (ShapedType::isDynamic(k)) {
          op->emitError("--w4a4k-plan-buffers: registers need a static "
                        "count");
          failedPlan = true;
          k = 0;
        }
        perCallRegisters = true;
        e += r.getMode() == "prepend" ? k : r.getMode() == "strip" ? -k : 0;
      }
      maxExtra = std::max(maxExtra, e);
      if (e)
        op->setAttr("w4a4k.seq_extra", b.getI64IntegerAttr(e));
      for (Value result : op->getResults()) {
        extra[result] = e;
        if (auto q = dyn_cast<w4a4k::QRowsType>(result.getType())) {
          op->setAttr("w4a4k.qslot", b.getI64IntegerAttr(holders.place(
                                         1, index[op], lastUse(result))));
          continue;
        }
        auto t = cast<RankedTensorType>(result.getType());
        if (t.getRank() < 1 || ShapedType::isDynamic(t.getShape().back())) {
          op->emitError("--w4a4k-plan-buffers: the feature width must be "
                        "static");
          failedPlan = true;
          continue;
        }
        if (result == returned) {
          // Written to the caller's [batch, seq, vocab] buffer: it must have
          // the call's rows.
          if (e != 0) {
            op->emitError("--w4a4k-plan-buffers: the returned value has ")
                << e
                << " rows per sequence more than the call (registers "
                   "prepended and never stripped)";
            failedPlan = true;
          }
          op->setAttr("w4a4k.slot", b.getStringAttr("result"));
          continue;
        }
        int64_t w = t.getShape().back();
        int64_t offset = floats.place(w, index[op], lastUse(result));
        op->setAttr("w4a4k.slot", b.getDenseI64ArrayAttr({offset, w}));
      }
    }
    Operation *def = returned ? returned.getDefiningOp() : nullptr;
    if (!def || !isa<w4a4k::W4A4KDialect>(def->getDialect())) {
      func.emitError("--w4a4k-plan-buffers: @forward must return the result "
                     "of a kernel op (the logits)");
      failedPlan = true;
    }
    if (failedPlan)
      return signalPassFailure();
    func->setAttr("w4a4k.arena_width", b.getI64IntegerAttr(floats.width));
    func->setAttr("w4a4k.max_seq_extra", b.getI64IntegerAttr(maxExtra));
    func->setAttr("w4a4k.qrows_slots", b.getI64IntegerAttr(holders.width));
    // Registers applied on every call (prepend, add or strip) cannot be
    // decoded through a KV cache: each step would apply them again.
    if (perCallRegisters)
      func->setAttr("w4a4k.per_call_registers", b.getUnitAttr());
  }
};

} // namespace
