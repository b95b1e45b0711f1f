//===- Quantize.cpp - weight and activation quantization passes -----------===//

#include "dialects/W4A4/W4A4Ops.h"
#include "dialects/W4A4/W4A4Utils.h"
#include "passes/Calibration.h"
#include "passes/Passes.h"
#include "passes/Report.h"
#include "passes/Sites.h"
#include "w4a4/runtime/IntGemm.h"
#include "w4a4/runtime/WeightQuant.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

#include <cmath>
#include <map>

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
    if (method != "rtn" && method != "gptq") {
      module.emitError("w4a4-quantize-weights: method must be rtn or gptq, "
                       "got '")
          << std::string(method) << "'";
      return signalPassFailure();
    }
    if (!(damp > 0.0 && damp < 1.0)) {
      module.emitError("w4a4-quantize-weights: damp must be in (0, 1), got ")
          << static_cast<double>(damp);
      return signalPassFailure();
    }
    if (actOrder && (method != "gptq" || group != 0)) {
      module.emitError("w4a4-quantize-weights: act-order needs method=gptq "
                       "and per-row scales (group=0)");
      return signalPassFailure();
    }
    SmallVector<LinearOp> linears;
    module.walk([&](LinearOp op) {
      if (isBlockSite(classifySite(op)))
        linears.push_back(op);
    });
    if (method == "gptq" || clipSearch) {
      auto dict = module->getAttrOfType<DictionaryAttr>(kCalibrationAttr);
      auto file = dict ? dict.getAs<StringAttr>("file") : StringAttr();
      auto withHessian = dict ? dict.getAs<BoolAttr>("hessian") : BoolAttr();
      if (!file || !withHessian || !withHessian.getValue()) {
        module.emitError("w4a4-quantize-weights: ")
            << (method == "gptq" ? "method=gptq" : "clip-search")
            << " needs calibration Hessians: run "
               "w4a4-calibrate (hessian=true) after the last transform";
        return signalPassFailure();
      }
      std::string error;
      StatsProvenance provenance;
      auto loaded = readStatsFile(file.getValue(), provenance, error);
      if (failed(loaded)) {
        module.emitError("w4a4-quantize-weights: ") << error;
        return signalPassFailure();
      }
      // The file must be the one this module's calibration wrote, for
      // these weights.
      auto recorded = dict.getAs<StringAttr>("data_fingerprint");
      if (!recorded ||
          recorded.getValue() != fingerprintString(provenance.data)) {
        module.emitError("w4a4-quantize-weights: statistics file '")
            << file.getValue()
            << "' is not the one this module's w4a4-calibrate wrote (other "
               "calibration ids or options): run w4a4-calibrate again";
        return signalPassFailure();
      }
      if (provenance.weights != weightsFingerprint(module)) {
        module.emitError("w4a4-quantize-weights: statistics file '")
            << file.getValue()
            << "' was computed on other weights than this module's (another "
               "model, or the weights changed after w4a4-calibrate): run "
               "w4a4-calibrate again";
        return signalPassFailure();
      }
      stats = std::move(*loaded);
    }
    for (LinearOp op : linears)
      if (failed(quantize(op)))
        return signalPassFailure();
    reportFact("method", std::string(method));
    reportFact("bits", static_cast<int64_t>(bits));
    reportFact("group", static_cast<int64_t>(group));
    reportFact("linears", static_cast<int64_t>(linears.size()));
    reportFact("weight_bytes_fp32", bytesBefore);
    reportFact("weight_bytes_quantized", bytesAfter);
    if (!errorBySite.empty()) {
      // sum e^T H e / sum w^T H w per site kind: the calibration's view of
      // how much of each site's output the weight quantization loses.
      llvm::json::Object rel;
      for (auto &[name, e] : errorBySite)
        rel[name] = e.first / std::max(e.second, 1e-300);
      reportFact("relative_output_error", std::move(rel));
    }
  }

  std::vector<SiteStats> stats;
  int64_t bytesBefore = 0, bytesAfter = 0;
  std::map<std::string, std::pair<double, double>> errorBySite;

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
    ::w4a4::rt::WeightQuantOptions wq;
    wq.bits = bits;
    wq.group = group;
    wq.clip = clip;
    wq.clipSearch = clipSearch;
    wq.damp = damp;
    wq.actOrder = actOrder;
    const SiteStats *site = nullptr;
    if (!stats.empty()) {
      auto index = op->getAttrOfType<IntegerAttr>(kCalibSiteAttr);
      if (!index || index.getInt() < 0 ||
          index.getInt() >= static_cast<int64_t>(stats.size()))
        return op.emitError("w4a4-quantize-weights: this linear has no "
                            "calibrated site (w4a4.calib_site); run "
                            "w4a4-calibrate after the last transform");
      site = &stats[index.getInt()];
      if (site->width != in || site->hessian.empty())
        return op.emitError("w4a4-quantize-weights: the calibration "
                            "statistics of site ")
               << index.getInt() << " have width " << site->width
               << ", the weight '" << weight.getName() << "' reads " << in;
    }
    ::w4a4::rt::QuantizedWeights qw;
    if (method == "gptq") {
      std::string error;
      if (!::w4a4::rt::quantizeGptq(*values, out, in, site->hessian, wq, qw,
                                    error))
        return op.emitError("w4a4-quantize-weights: GPTQ of '")
               << weight.getName() << "': " << error;
    } else {
      qw = ::w4a4::rt::quantizeRtn(*values, out, in, wq,
                                   site ? site->hessian.data() : nullptr);
    }
    if (site && reportEnabled()) {
      // For the report only: e^T H e, and w^T H w as the error of all-zero
      // codes.
      ::w4a4::rt::QuantizedWeights zero;
      zero.codes.assign(out * in, 0);
      zero.scales.assign(qw.scales.size(), 0.0f);
      auto &acc = errorBySite[siteName(classifySite(op)).str()];
      acc.first +=
          ::w4a4::rt::outputError(*values, out, in, qw, group, site->hessian);
      acc.second +=
          ::w4a4::rt::outputError(*values, out, in, zero, group, site->hessian);
    }
    std::vector<int> &codes = qw.codes;
    std::vector<float> &scales = qw.scales;
    int64_t perByte = QLinearOp::getCodesPerByte(bits);
    int64_t rowBytes = (in + perByte - 1) / perByte;
    std::vector<int8_t> packed =
        ::w4a4::rt::packCodes(codes.data(), out, in, bits);
    OpBuilder b(weight);
    b.setInsertionPointAfter(weight);
    int64_t groups = group ? in / group : 1;
    bytesBefore += out * in * 4;
    bytesAfter += out * rowBytes + out * groups * 4;
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
          << static_cast<int64_t>(bits)
          << " (to keep activations in floating point, use "
             "keep-fp=qkv,o_proj,w1w3,w2)";
      return signalPassFailure();
    }
    if (!(clip > 0.0 && clip <= 1.0)) {
      module.emitError(
          "w4a4-quantize-activations: clip must be in (0, 1], got ")
          << static_cast<double>(clip);
      return signalPassFailure();
    }
    auto site = [&](StringRef name, StringRef option) -> std::optional<Site> {
      std::optional<Site> s = parseSite(name);
      if (!s || *s == Site::LMHead || *s == Site::Other) {
        module.emitError("w4a4-quantize-activations: unknown site '")
            << name << "' in " << option << " (sites: qkv, o_proj, w1w3, w2)";
        return std::nullopt;
      }
      return s;
    };
    // Bits per site: `bits` at every site, or only at `sites`; keep-fp
    // removes sites; site-bits (e.g. w2=8) overrides.
    llvm::SmallDenseMap<Site, int64_t> siteBits;
    for (Site s : {Site::QKV, Site::OProj, Site::W1W3, Site::W2})
      siteBits[s] = sites.empty() ? int64_t(bits) : 0;
    for (const std::string &name : sites) {
      std::optional<Site> s = site(name, "sites");
      if (!s)
        return signalPassFailure();
      siteBits[*s] = bits;
    }
    for (const std::string &name : keepFp) {
      std::optional<Site> s = site(name, "keep-fp");
      if (!s)
        return signalPassFailure();
      siteBits[*s] = 0;
    }
    for (const std::string &entry : siteBitsOption) {
      auto [name, value] = StringRef(entry).split('=');
      int64_t b = 0;
      std::optional<Site> s = site(name, "site-bits");
      if (!s)
        return signalPassFailure();
      if (value.getAsInteger(10, b) || b < 2 || b > 8) {
        module.emitError("w4a4-quantize-activations: site-bits entry '")
            << entry << "' needs SITE=BITS with bits in [2, 8]";
        return signalPassFailure();
      }
      siteBits[*s] = b;
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
    int64_t quantized = 0, kept = 0;
    module.walk([&](QLinearOp op) {
      Site s = classifySite(op);
      int64_t n = siteBits.count(s) ? siteBits[s] : 0;
      if (!n) {
        ++kept;
        return;
      }
      ++quantized;
      op.setActBitsAttr(b.getI64IntegerAttr(n));
      op.setActClipRatioAttr(b.getF64FloatAttr(clip));
    });
    llvm::json::Object perSite;
    for (Site s : {Site::QKV, Site::OProj, Site::W1W3, Site::W2})
      perSite[siteName(s)] = siteBits[s];
    reportFact("site_bits", std::move(perSite));
    reportFact("bits", static_cast<int64_t>(bits));
    reportFact("clip", static_cast<double>(clip));
    reportFact("qlinears_quantized", quantized);
    reportFact("qlinears_kept_fp", kept);
  }
};

} // namespace
