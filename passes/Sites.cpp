//===- Sites.cpp - activation sites of the transformer block --------------===//

#include "passes/Sites.h"

#include "dialects/W4A4/W4A4Ops.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"

using namespace mlir;
using namespace mlir::w4a4;

Site mlir::w4a4::classifySite(Operation *op) {
  Value input = op->getOperand(0);
  // Online Hadamards (w4a4-rotate full) sit between a generator and its input.
  while (auto h = input.getDefiningOp<HadamardOp>())
    input = h.getInput();
  Operation *def = input.getDefiningOp();
  if (isa_and_nonnull<AttentionOp>(def))
    return Site::OProj;
  if (isa_and_nonnull<SwiGLUOp>(def))
    return Site::W2;
  // KV quantization (w4a4-quantize-kv) sits between v_proj and attention.
  SmallVector<Operation *> users(op->getResult(0).getUsers());
  while (!users.empty()) {
    Operation *user = users.pop_back_val();
    if (isa<func::ReturnOp>(user))
      return Site::LMHead;
    if (isa<SwiGLUOp>(user))
      return Site::W1W3;
    if (isa<RoPEOp, AttentionOp>(user))
      return Site::QKV;
    if (isa<QuantizeOp>(user))
      users.append(user->getResult(0).getUsers().begin(),
                   user->getResult(0).getUsers().end());
  }
  return Site::Other;
}

StringRef mlir::w4a4::siteName(Site site) {
  switch (site) {
  case Site::QKV:
    return "qkv";
  case Site::OProj:
    return "o_proj";
  case Site::W1W3:
    return "w1w3";
  case Site::W2:
    return "w2";
  case Site::LMHead:
    return "lm_head";
  case Site::Other:
    return "other";
  }
  return "other";
}

std::optional<Site> mlir::w4a4::parseSite(StringRef name) {
  for (Site s : {Site::QKV, Site::OProj, Site::W1W3, Site::W2})
    if (siteName(s) == name)
      return s;
  return std::nullopt;
}
