//===- Rotate.cpp - QuaRot residual rotation and online Hadamards ---------===//

#include "dialects/W4A4/W4A4Ops.h"
#include "dialects/W4A4/W4A4Utils.h"
#include "passes/Calibration.h"
#include "passes/Passes.h"
#include "passes/Report.h"
#include "passes/Sites.h"
#include "w4a4/runtime/Hadamard.h"

#include "mlir/IR/Builders.h"

#include <cmath>

namespace mlir::w4a4 {
#define GEN_PASS_DEF_W4A4ROTATE
#include "passes/Passes.h.inc"
} // namespace mlir::w4a4

using namespace mlir;
using namespace mlir::w4a4;
namespace rt = ::w4a4::rt;

namespace {

/// An orthogonal transform of width d: diag(signs)
/// blockdiag(H_size)/sqrt(size).
struct Rotation {
  int64_t width = 0, size = 0, stride = 1;
  HadamardKind kind = HadamardKind::walsh;
  std::vector<double> signs; // empty: all +1
  std::vector<int8_t> h;     // H_size, row-major

  /// The largest supported block: the whole width, else the largest power of
  /// two dividing it (block-diagonal).
  static Rotation forWidth(int64_t width) {
    Rotation r;
    r.width = width;
    if (rt::factorHadamardOrder(width)) {
      r.size = width;
    } else {
      r.size = 1;
      while (width % (r.size * 2) == 0)
        r.size *= 2;
    }
    r.kind = rt::isPowerOfTwo(r.size) ? HadamardKind::walsh
                                      : HadamardKind::kronecker;
    r.h = rt::buildHadamardMatrix(r.size);
    return r;
  }

  /// H_size on blocks of `size` (block-diagonal over the width).
  static Rotation blocks(int64_t width, int64_t size, int64_t stride = 1) {
    Rotation r;
    r.width = width;
    r.size = size;
    r.stride = stride;
    r.kind =
        rt::isPowerOfTwo(size) ? HadamardKind::walsh : HadamardKind::kronecker;
    r.h = rt::buildHadamardMatrix(size);
    return r;
  }

  /// rows (row-major [n, width]) <- rows Q, in float64.
  void applyRight(std::vector<double> &rows) const {
    int64_t n = rows.size() / width;
    double norm = 1.0 / std::sqrt(static_cast<double>(size));
    std::vector<double> t(size);
    for (int64_t r = 0; r < n; ++r)
      for (int64_t b = 0; b < width / size; ++b) {
        // Vector b: elements base0 + i * stride of the row.
        int64_t base0 = (b / stride) * size * stride + b % stride;
        double *x = &rows[r * width];
        for (int64_t i = 0; i < size; ++i) {
          int64_t at = base0 + i * stride;
          t[i] = signs.empty() ? x[at] : x[at] * signs[at];
        }
        for (int64_t j = 0; j < size; ++j) {
          double acc = 0;
          for (int64_t i = 0; i < size; ++i)
            acc += t[i] * h[i * size + j];
          x[base0 + j * stride] = acc * norm;
        }
      }
  }
};

std::vector<double> transpose(const std::vector<double> &m, int64_t rows,
                              int64_t cols) {
  std::vector<double> t(m.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      t[c * rows + r] = m[r * cols + c];
  return t;
}

struct RotatePass : mlir::w4a4::impl::W4A4RotateBase<RotatePass> {
  using Base::Base;

  /// Replaces the value of weight `w` (in place, same name).
  LogicalResult
  rewriteWeight(Value w, llvm::function_ref<void(std::vector<double> &)> fn) {
    return transformWeight(w, "w4a4-rotate", fn);
  }

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (mode != "none" && mode != "readers" && mode != "full") {
      module.emitError("w4a4-rotate: mode must be none, readers or full, got '")
          << std::string(mode) << "'";
      return signalPassFailure();
    }
    if (mode == "none")
      return;
    dropCalibration(module);
    bool gains = false;
    module.walk([&](RMSNormOp n) { gains |= static_cast<bool>(n.getGain()); });
    if (gains) {
      module.emitError(
          "w4a4-rotate: RMSNorm gains are present; run w4a4-fold-norms first "
          "(the rotation commutes only with a gain-less RMSNorm)");
      return signalPassFailure();
    }
    EmbeddingOp embedding;
    module.walk([&](EmbeddingOp e) { embedding = e; });
    if (!embedding) {
      module.emitError("w4a4-rotate: no embedding");
      return signalPassFailure();
    }
    int64_t d = embedding.getTable().getType().getDimSize(1);
    Rotation q = Rotation::forWidth(d);
    if (q.size < 2) {
      module.emitError("w4a4-rotate: no residual rotation for hidden width ")
          << d
          << ": no Hadamard matrix of that order and the width is odd (no "
             "block-diagonal fallback; random orthogonal rotations are not "
             "supported)";
      return signalPassFailure();
    }
    std::vector<float> s = rt::seededSigns(seed, d);
    q.signs.assign(s.begin(), s.end());
    reportFact("mode", std::string(mode));
    reportFact("residual",
               llvm::json::Object{{"kind", stringifyHadamardKind(q.kind).str()},
                                  {"size", q.size},
                                  {"seed", static_cast<int64_t>(seed)}});
    Builder attrs(module.getContext());
    module->setAttr(
        "w4a4.residual_rotation",
        attrs.getDictionaryAttr({
            attrs.getNamedAttr(
                "kind", attrs.getStringAttr(stringifyHadamardKind(q.kind))),
            attrs.getNamedAttr("size", attrs.getI64IntegerAttr(q.size)),
            attrs.getNamedAttr("seed", attrs.getI64IntegerAttr(seed)),
        }));

    // Which side each weight is rotated on: right (x Q readers, embedding,
    // registers, lm_head) or left (Q^T W writers).
    llvm::MapVector<Operation *, bool> right; // weight -> right side?
    auto mark = [&](Value v, bool isRight, Operation *user) -> LogicalResult {
      auto w = v.getDefiningOp<WeightOp>();
      if (!w)
        return user->emitError("w4a4-rotate: expects a w4a4.weight operand");
      auto [it, inserted] = right.insert({w, isRight});
      if (!inserted && it->second != isRight)
        return user->emitError("w4a4-rotate: weight '")
               << w.getName()
               << "' is both read and written in the residual basis";
      return success();
    };
    SmallVector<LinearOp> o2, w2;
    WalkResult walk = module.walk([&](Operation *op) -> WalkResult {
      if (auto e = dyn_cast<EmbeddingOp>(op))
        return mark(e.getTable(), true, op);
      if (auto r = dyn_cast<RegistersOp>(op))
        return r.getMode() == RegisterMode::strip
                   ? success()
                   : mark(r.getRegisters(), true, op);
      if (isa<QLinearOp>(op))
        return op->emitError("w4a4-rotate: rotate before quantizing");
      auto lin = dyn_cast<LinearOp>(op);
      if (!lin)
        return success();
      Site site = classifySite(lin);
      switch (site) {
      case Site::QKV:
      case Site::W1W3:
      case Site::LMHead:
        return mark(lin.getWeight(), true, op);
      case Site::OProj:
      case Site::W2:
        (site == Site::OProj ? o2 : w2).push_back(lin);
        if (lin.getBias())
          if (failed(mark(lin.getBias(), true, op)))
            return failure();
        return mark(lin.getWeight(), false, op);
      case Site::Other:
        return op->emitError("w4a4-rotate: a linear that is not a known site");
      }
      return success();
    });
    if (walk.wasInterrupted())
      return signalPassFailure();

    for (auto [op, rightSide] : right) {
      bool isRight = rightSide; // (a structured binding cannot be captured
                                // before C++20)
      auto w = cast<WeightOp>(op);
      ArrayRef<int64_t> shape = w.getType().getShape();
      LogicalResult res = rewriteWeight(w, [&](std::vector<double> &v) {
        if (isRight) {
          q.applyRight(v); // rows of width d: W -> W Q
          return;
        }
        // Q^T W = (W^T Q)^T for W [d, in].
        int64_t rows = shape[0], cols = shape.size() > 1 ? shape[1] : 1;
        std::vector<double> t = transpose(v, rows, cols);
        q.applyRight(t);
        v = transpose(t, cols, rows);
      });
      if (failed(res))
        return signalPassFailure();
    }
    if (mode == "full") {
      for (LinearOp lin : w2)
        if (failed(addOnlineHadamard(
                lin, Rotation::forWidth(
                         lin.getInput().getType().getShape().back()))))
          return signalPassFailure();
      for (LinearOp lin : o2)
        if (failed(rotateOProj(lin)))
          return signalPassFailure();
    }
  }

  /// o_proj: the per-head Hadamard H_d folds into v_proj's output rows (and
  /// a constant value prefix), the cross-head part H_heads (x) I runs online
  /// (a strided w4a4.hadamard), and W_o -> W_o (I (x) H_d)(H_heads (x) I).
  /// Without a Hadamard of the head count (or head dim), one Hadamard of the
  /// whole width runs online instead (DESIGN.md).
  LogicalResult rotateOProj(LinearOp lin) {
    auto attn = lin.getInput().getDefiningOp<AttentionOp>();
    int64_t width = lin.getInput().getType().getShape().back();
    int64_t heads = attn.getNumHeads(), hd = attn.getHeadDim(),
            kvWidth = attn.getNumKvHeads() * hd;
    auto vproj = attn.getValue().getDefiningOp<LinearOp>();
    if (!rt::factorHadamardOrder(heads) || !rt::factorHadamardOrder(hd) ||
        !vproj)
      return addOnlineHadamard(lin, Rotation::forWidth(width));
    Rotation perHead = Rotation::blocks(kvWidth, hd);
    // W_v' = blockdiag(H_d)^T W_v: rotate the columns of W_v^T.
    auto wv = vproj.getWeight().getDefiningOp<WeightOp>();
    if (!wv || !wv->hasOneUse())
      return vproj.emitError(
          "w4a4-rotate: v_proj's weight must be its own w4a4.weight");
    int64_t in = wv.getType().getDimSize(1);
    if (failed(rewriteWeight(wv, [&](std::vector<double> &v) {
          std::vector<double> t = transpose(v, kvWidth, in);
          perHead.applyRight(t);
          v = transpose(t, in, kvWidth);
        })))
      return failure();
    if (Value vp = attn.getValuePrefix())
      if (failed(rewriteWeight(
              vp, [&](std::vector<double> &v) { perHead.applyRight(v); })))
        return failure();
    Rotation cross = Rotation::blocks(width, heads, hd);
    Rotation queryHeads = Rotation::blocks(width, hd);
    OpBuilder b(lin);
    auto had = HadamardOp::create(
        b, lin.getLoc(), lin.getInput().getType(), lin.getInput(),
        HadamardKindAttr::get(b.getContext(), cross.kind),
        b.getI64IntegerAttr(heads), DenseI8ArrayAttr(), IntegerAttr(),
        UnitAttr(), b.getI64IntegerAttr(hd));
    lin.getInputMutable().assign(had.getResult());
    return rewriteWeight(lin.getWeight(), [&](std::vector<double> &v) {
      queryHeads.applyRight(v);
      cross.applyRight(v);
    });
  }

  /// Online Hadamard at a generator input: h -> h H, W -> W H.
  LogicalResult addOnlineHadamard(LinearOp lin, const Rotation &h) {
    if (h.size < 2)
      return lin.emitError("w4a4-rotate: no online Hadamard for width ")
             << h.width
             << ": no Hadamard matrix of that order and the width is odd "
                "(no block-diagonal fallback; random orthogonal rotations "
                "are not supported)";
    OpBuilder b(lin);
    auto had = HadamardOp::create(
        b, lin.getLoc(), lin.getInput().getType(), lin.getInput(),
        HadamardKindAttr::get(b.getContext(), h.kind),
        b.getI64IntegerAttr(h.size), DenseI8ArrayAttr(), IntegerAttr(),
        UnitAttr(), b.getI64IntegerAttr(1));
    lin.getInputMutable().assign(had.getResult());
    return rewriteWeight(lin.getWeight(),
                         [&](std::vector<double> &v) { h.applyRight(v); });
  }
};

} // namespace
