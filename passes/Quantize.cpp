//===- Quantize.cpp - weight and activation quantization passes -----------===//

#include "dialects/W4A4/W4A4Ops.h"
#include "dialects/W4A4/W4A4Utils.h"
#include "passes/Passes.h"
#include "passes/Sites.h"
#include "w4a4/runtime/IntGemm.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

#include <cmath>

namespace mlir::w4a4 {
#define GEN_PASS_DEF_W4A4QUANTIZEWEIGHTS
#define GEN_PASS_DEF_W4A4QUANTIZEACTIVATIONS
#include "passes/Passes.h.inc"
} // namespace mlir::w4a4

using namespace mlir;
using namespace mlir::w4a4;

namespace {

bool isBlockSite(Site s) {
  return s == Site::QKV || s == Site::OProj || s == Site::W1W3 || s == Site::W2;
}

/// RTN of w [out, in] per row or group (DESIGN.md), in fp32 arithmetic:
/// s = clip * max|w| / qmax, q = clamp(rne(w / s)). Returns codes [out, in]
/// and scales [out, groups].
void rtn(const std::vector<double> &w, int64_t out, int64_t in, int bits,
         int64_t group, float clip, std::vector<int> &codes,
         std::vector<float> &scales) {
  int64_t glen = group ? group : in, groups = in / glen;
  float qmax = static_cast<float>((1 << (bits - 1)) - 1);
  codes.assign(out * in, 0);
  scales.assign(out * groups, 0.0f);
  for (int64_t o = 0; o < out; ++o)
    for (int64_t g = 0; g < groups; ++g) {
      float mx = 0;
      for (int64_t i = g * glen; i < (g + 1) * glen; ++i)
        mx = std::max(mx, std::fabs(static_cast<float>(w[o * in + i])));
      float s = clip * mx / qmax;
      scales[o * groups + g] = s;
      if (s == 0)
        continue;
      for (int64_t i = g * glen; i < (g + 1) * glen; ++i) {
        float q = std::nearbyint(static_cast<float>(w[o * in + i]) / s);
        codes[o * in + i] =
            static_cast<int>(std::min(std::max(q, -qmax - 1), qmax));
      }
    }
}

struct QuantizeWeightsPass
    : mlir::w4a4::impl::W4A4QuantizeWeightsBase<QuantizeWeightsPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (bits < 2 || bits > 8) {
      module.emitError("w4a4-quantize-weights: bits must be in [2, 8], got ")
          << static_cast<int64_t>(bits);
      return signalPassFailure();
    }
    if (!(clip > 0.0 && clip <= 1.0) || group < 0) {
      module.emitError("w4a4-quantize-weights: need clip in (0, 1] and group "
                       ">= 0, got clip ")
          << static_cast<double>(clip) << ", group "
          << static_cast<int64_t>(group);
      return signalPassFailure();
    }
    SmallVector<LinearOp> linears;
    module.walk([&](LinearOp op) {
      if (isBlockSite(classifySite(op)))
        linears.push_back(op);
    });
    for (LinearOp op : linears)
      if (failed(quantize(op)))
        return signalPassFailure();
  }

  LogicalResult quantize(LinearOp op) {
    auto weight = op.getWeight().getDefiningOp<WeightOp>();
    std::optional<std::vector<double>> values =
        weight ? readFloats(weight.getValue()) : std::nullopt;
    if (!values)
      return op.emitError("w4a4-quantize-weights: the weight is not a readable "
                          "w4a4.weight constant");
    int64_t out = weight.getType().getDimSize(0),
            in = weight.getType().getDimSize(1);
    if (group > 0 && in % group != 0)
      return op.emitError("w4a4-quantize-weights: group ")
             << static_cast<int64_t>(group)
             << " does not divide the input width " << in << " of '"
             << weight.getName() << "'";
    std::vector<int> codes;
    std::vector<float> scales;
    rtn(*values, out, in, bits, group, static_cast<float>(clip), codes, scales);
    int64_t perByte = QLinearOp::getCodesPerByte(bits);
    int64_t rowBytes = (in + perByte - 1) / perByte;
    std::vector<int8_t> packed =
        ::w4a4::rt::packCodes(codes.data(), out, in, bits);
    OpBuilder b(weight);
    b.setInsertionPointAfter(weight);
    int64_t groups = group ? in / group : 1;
    WeightOp codesOp =
        createI8Weight(b, weight.getLoc(), (weight.getName() + ".codes").str(),
                       {out, rowBytes}, packed);
    WeightOp scalesOp = createF32Weight(b, weight.getLoc(),
                                        (weight.getName() + ".scales").str(),
                                        {out, groups}, scales);
    b.setInsertionPoint(op);
    auto q =
        QLinearOp::create(b, op.getLoc(), op.getType(), op.getInput(), codesOp,
                          scalesOp, op.getBias(), Value(), Value(),
                          b.getI64IntegerAttr(bits), b.getI64IntegerAttr(0),
                          b.getI64IntegerAttr(group), b.getF64FloatAttr(1.0));
    op.replaceAllUsesWith(q.getResult());
    op.erase();
    if (weight->use_empty())
      weight.erase();
    return success();
  }
};

struct QuantizeActivationsPass
    : mlir::w4a4::impl::W4A4QuantizeActivationsBase<QuantizeActivationsPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (bits < 2 || bits > 8) {
      module.emitError(
          "w4a4-quantize-activations: bits must be in [2, 8], got ")
          << static_cast<int64_t>(bits);
      return signalPassFailure();
    }
    if (!(clip > 0.0 && clip <= 1.0)) {
      module.emitError(
          "w4a4-quantize-activations: clip must be in (0, 1], got ")
          << static_cast<double>(clip);
      return signalPassFailure();
    }
    llvm::SmallDenseSet<Site> keep;
    for (const std::string &name : keepFp) {
      std::optional<Site> site = parseSite(name);
      if (!site) {
        module.emitError("w4a4-quantize-activations: unknown site '")
            << name << "' in keep-fp (sites: qkv, o_proj, w1w3, w2)";
        return signalPassFailure();
      }
      keep.insert(*site);
    }
    bool registers = false;
    module.walk([&](RegistersOp) { registers = true; });
    if (registers) {
      module.emitError(
          "w4a4-quantize-activations: the model has Depth Registers; "
          "run w4a4-fold-registers first so that register positions "
          "never pass through activation quantization");
      return signalPassFailure();
    }
    Builder b(module.getContext());
    module.walk([&](QLinearOp op) {
      if (keep.contains(classifySite(op)))
        return;
      op.setActBitsAttr(b.getI64IntegerAttr(bits));
      op.setActClipRatioAttr(b.getF64FloatAttr(clip));
    });
  }
};

} // namespace
