//===- InternalizeKV.cpp - an export's KV-cache I/O to the artifact's -----===//
//
// --w4a4-internalize-kv-cache: `@forward(ids, position_ids, pasts...) ->
// (logits, presents...)` (a decoder-with-past export) becomes `@forward(ids)
// -> logits` whose attentions keep the compiled artifact's own KV cache and
// whose RoPE positions continue from it.
//
//===----------------------------------------------------------------------===//

#include "dialects/W4A4/W4A4Ops.h"
#include "passes/Conversion/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/BitVector.h"

namespace mlir::w4a4 {
#define GEN_PASS_DEF_W4A4INTERNALIZEKVCACHE
#include "passes/Conversion/Passes.h.inc"
} // namespace mlir::w4a4

using namespace mlir;
using namespace mlir::w4a4;

namespace {

struct InternalizeKVPass
    : public mlir::w4a4::impl::W4A4InternalizeKVCacheBase<InternalizeKVPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto func = module.lookupSymbol<func::FuncOp>("forward");
    if (!func || func.getBody().empty())
      return;
    SmallVector<AttentionOp> attentions;
    func.walk([&](AttentionOp a) {
      if (a.getPastKey())
        attentions.push_back(a);
    });
    if (attentions.empty())
      return;
    Block &body = func.getBody().front();
    Operation *ret = body.getTerminator();
    auto isArg = [&](Value v) {
      auto arg = dyn_cast<BlockArgument>(v);
      return arg && arg.getOwner() == &body;
    };
    // The pasts are arguments and the presents only returned.
    for (AttentionOp a : attentions) {
      for (Value past : {a.getPastKey(), a.getPastValue()})
        if (!isArg(past) || llvm::any_of(past.getUsers(), [&](Operation *u) {
              return u != a.getOperation() && !isa<CachePositionsOp>(u);
            })) {
          a.emitError("--w4a4-internalize-kv-cache: the past must be an "
                      "argument of @forward that only this attention (and "
                      "w4a4.cache_positions) reads");
          return signalPassFailure();
        }
      for (Value present : a.getPresents())
        if (llvm::any_of(present.getUsers(),
                         [&](Operation *u) { return u != ret; })) {
          a.emitError("--w4a4-internalize-kv-cache: the present keys / "
                      "values must only be returned");
          return signalPassFailure();
        }
    }
    // RoPE positions: position_ids (an argument) or cache_positions.
    SmallVector<RoPEOp> ropes;
    bool bad = false;
    func.walk([&](RoPEOp r) {
      Value p = r.getPositions();
      if (!p)
        return;
      if (!isArg(p) && !p.getDefiningOp<CachePositionsOp>()) {
        r.emitError("--w4a4-internalize-kv-cache: RoPE positions must be "
                    "position_ids or w4a4.cache_positions");
        bad = true;
      }
      ropes.push_back(r);
    });
    if (bad)
      return signalPassFailure();
    OpBuilder b(&getContext());
    for (RoPEOp r : ropes)
      r.getPositionsMutable().clear();
    // Each attention without its past keeps the artifact's cache.
    llvm::BitVector dropResults(func.getNumResults());
    for (AttentionOp a : attentions) {
      for (OpOperand &use : ret->getOpOperands())
        if (llvm::is_contained(a.getPresents(), use.get()))
          dropResults.set(use.getOperandNumber());
      b.setInsertionPoint(a);
      auto plain = AttentionOp::create(
          b, a.getLoc(), TypeRange{a.getResult().getType()}, a.getQuery(),
          a.getKey(), a.getValue(), a.getKeyPrefix(), a.getValuePrefix(),
          Value(), Value(), a.getNumHeadsAttr(), a.getNumKvHeadsAttr(),
          a.getHeadDimAttr(), a.getScaleAttr());
      a.getResult().replaceAllUsesWith(plain.getResult());
    }
    // The return loses the presents; then the attentions and the position
    // computations go.
    SmallVector<Value> kept;
    for (OpOperand &use : ret->getOpOperands())
      if (!dropResults.test(use.getOperandNumber()))
        kept.push_back(use.get());
    ret->setOperands(kept);
    for (AttentionOp a : attentions)
      a.erase();
    SmallVector<CachePositionsOp> positions;
    func.walk([&](CachePositionsOp c) { positions.push_back(c); });
    for (CachePositionsOp c : positions)
      if (c->use_empty())
        c.erase();
    // Arguments nothing reads any more (pasts, position_ids) go; one that
    // something else still reads is an error.
    llvm::BitVector dropArgs(func.getNumArguments());
    for (BlockArgument arg : body.getArguments()) {
      if (arg.getArgNumber() == 0)
        continue;
      if (!arg.use_empty()) {
        Operation *user = *arg.getUsers().begin();
        user->emitError("--w4a4-internalize-kv-cache: reads @forward's "
                        "argument ")
            << arg.getArgNumber()
            << " (position_ids or a past), which the compiled artifact "
               "does not take";
        return signalPassFailure();
      }
      dropArgs.set(arg.getArgNumber());
    }
    if (failed(func.eraseArguments(dropArgs)) ||
        failed(func.eraseResults(dropResults))) {
      func.emitError("--w4a4-internalize-kv-cache: cannot change @forward's "
                     "signature");
      return signalPassFailure();
    }
    // Record the assumption next to the importer's.
    SmallVector<Attribute> assumed;
    if (auto old = module->getAttrOfType<ArrayAttr>("w4a4.assumed_inputs"))
      assumed.append(old.begin(), old.end());
    assumed.push_back(b.getStringAttr(
        "position_ids: the KV cache's length + 0..seq-1 (the compiled "
        "artifact keeps the cache)"));
    module->setAttr("w4a4.assumed_inputs", b.getArrayAttr(assumed));
  }
};

} // namespace
