//===- SmoothQuant.cpp - SmoothQuant scale migration ----------------------===//

#include "dialects/W4A4/W4A4Ops.h"
#include "dialects/W4A4/W4A4Utils.h"
#include "passes/Calibration.h"
#include "passes/Passes.h"
#include "passes/Report.h"
#include "passes/Sites.h"

#include "mlir/IR/Builders.h"

#include <cmath>

namespace mlir::w4a4 {
#define GEN_PASS_DEF_W4A4SMOOTHQUANT
#include "passes/Passes.h.inc"
} // namespace mlir::w4a4

using namespace mlir;
using namespace mlir::w4a4;

namespace {

struct SmoothQuantPass
    : mlir::w4a4::impl::W4A4SmoothQuantBase<SmoothQuantPass> {
  using Base::Base;

  /// Reads a weight as doubles; replaces it in place after `fn`.
  LogicalResult update(Value v,
                       llvm::function_ref<void(std::vector<double> &)> fn) {
    return transformWeight(v, "w4a4-smoothquant", fn);
  }

  std::optional<std::vector<double>> weightValues(Value v) {
    auto w = v.getDefiningOp<WeightOp>();
    return w ? readFloats(w.getValue()) : std::nullopt;
  }

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (!(alpha >= 0.0 && alpha <= 1.0)) {
      module.emitError("w4a4-smoothquant: alpha must be in [0, 1], got ")
          << static_cast<double>(alpha);
      return signalPassFailure();
    }
    auto sites = collectSites(module);
    CalibrationWindows cw{calib, windows, ctx, bos};
    auto stats = calibrateSites(module, "w4a4-smoothquant", cw, sites,
                                /*hessian=*/false);
    if (failed(stats))
      return signalPassFailure();
    dropCalibration(module);
    reportFact("alpha", static_cast<double>(alpha));
    reportFact("sites", static_cast<int64_t>(sites.size()));
    if (!stats->empty())
      reportFact("positions", stats->begin()->second.rows);
    for (auto &[input, linears] : sites)
      if (failed(smooth(input, linears, (*stats)[input].absmax)))
        return signalPassFailure();
    module.walk([&](WeightOp w) {
      if (w->use_empty())
        w.erase();
    });
  }

  std::vector<double> scalesFor(const std::vector<double> &xmax,
                                const std::vector<double> &wmax) {
    std::vector<double> s(xmax.size());
    for (size_t j = 0; j < s.size(); ++j)
      s[j] = std::pow(std::max(xmax[j], 1e-5), alpha) /
             std::pow(std::max(wmax[j], 1e-5), 1.0 - alpha);
    return s;
  }

  /// Column maxima of the stacked weights of `linears` ([out, in] each).
  std::optional<std::vector<double>> columnMax(ArrayRef<LinearOp> linears,
                                               int64_t in) {
    std::vector<double> m(in, 0.0);
    for (LinearOp l : linears) {
      auto v = weightValues(l.getWeight());
      if (!v)
        return std::nullopt;
      for (size_t k = 0; k < v->size(); ++k)
        m[k % in] = std::max(m[k % in], std::fabs((*v)[k]));
    }
    return m;
  }

  LogicalResult scaleColumns(LinearOp l, const std::vector<double> &s) {
    int64_t in = s.size();
    return update(l.getWeight(), [&](std::vector<double> &v) {
      for (size_t k = 0; k < v.size(); ++k)
        v[k] *= s[k % in];
    });
  }

  LogicalResult smooth(Value input, ArrayRef<LinearOp> linears,
                       const std::vector<double> &xmax) {
    int64_t in = xmax.size();
    LinearOp first = linears.front();
    Site site = classifySite(first);
    auto wmax = columnMax(linears, in);
    if (!wmax)
      return first.emitError("w4a4-smoothquant: weights not readable");
    if (site == Site::QKV || site == Site::W1W3) {
      std::vector<double> s = scalesFor(xmax, *wmax);
      auto norm = input.getDefiningOp<RMSNormOp>();
      if (!norm)
        return first.emitError(
            "w4a4-smoothquant: a reader not fed by an RMSNorm");
      for (LinearOp l : linears)
        if (failed(scaleColumns(l, s)))
          return failure();
      std::vector<double> gain(in, 1.0);
      if (Value g = norm.getGain()) {
        auto gv = weightValues(g);
        if (!gv)
          return norm.emitError("w4a4-smoothquant: gain not readable");
        gain = *gv;
      }
      std::vector<float> ng(in);
      for (int64_t j = 0; j < in; ++j)
        ng[j] = static_cast<float>(gain[j] / s[j]);
      OpBuilder b(norm);
      std::string name =
          norm.getGain()
              ? norm.getGain().getDefiningOp<WeightOp>().getName().str()
              : "smoothquant.gain";
      WeightOp gw = createF32Weight(b, norm.getLoc(), name, {in}, ng);
      norm.getGainMutable().assign(gw.getResult());
      return success();
    }
    if (site == Site::W2) {
      auto swiglu = input.getDefiningOp<SwiGLUOp>();
      auto w3 = swiglu ? swiglu.getUp().getDefiningOp<LinearOp>() : LinearOp();
      if (!w3)
        return first.emitError(
            "w4a4-smoothquant: w2's input is not swiglu(w1 x, w3 x)");
      std::vector<double> s = scalesFor(xmax, *wmax);
      for (LinearOp l : linears)
        if (failed(scaleColumns(l, s)))
          return failure();
      int64_t cols = w3.getWeight().getType().getDimSize(1);
      return update(w3.getWeight(), [&](std::vector<double> &v) {
        for (size_t k = 0; k < v.size(); ++k)
          v[k] /= s[k / cols];
      });
    }
    // o_proj: one scale per v_proj channel.
    auto attn = input.getDefiningOp<AttentionOp>();
    auto vproj = attn ? attn.getValue().getDefiningOp<LinearOp>() : LinearOp();
    if (!vproj)
      return first.emitError(
          "w4a4-smoothquant: o_proj's input is not attention(v_proj)");
    int64_t hd = attn.getHeadDim(), kv = attn.getNumKvHeads(),
            rep = attn.getNumHeads() / kv;
    std::vector<double> xv(kv * hd, 0.0), wv(kv * hd, 0.0);
    for (int64_t h = 0; h < kv * rep; ++h)
      for (int64_t d = 0; d < hd; ++d) {
        int64_t c = (h / rep) * hd + d;
        xv[c] = std::max(xv[c], xmax[h * hd + d]);
        wv[c] = std::max(wv[c], (*wmax)[h * hd + d]);
      }
    std::vector<double> s = scalesFor(xv, wv), sIn(in);
    for (int64_t h = 0; h < kv * rep; ++h)
      for (int64_t d = 0; d < hd; ++d)
        sIn[h * hd + d] = s[(h / rep) * hd + d];
    for (LinearOp l : linears)
      if (failed(scaleColumns(l, sIn)))
        return failure();
    int64_t cols = vproj.getWeight().getType().getDimSize(1);
    if (failed(update(vproj.getWeight(), [&](std::vector<double> &v) {
          for (size_t k = 0; k < v.size(); ++k)
            v[k] /= s[k / cols];
        })))
      return failure();
    if (Value vp = attn.getValuePrefix())
      return update(vp, [&](std::vector<double> &v) {
        for (size_t k = 0; k < v.size(); ++k)
          v[k] /= s[k % (kv * hd)];
      });
    return success();
  }
};

} // namespace
