//===- Calibrate.cpp - w4a4-calibrate -------------------------------------===//
//
// Runs the fp IR on calibration windows and writes per-site statistics
// (max|x| per channel, X^T X) to a side file named by the module attribute
// `w4a4.calibration`; each block linear gets its site's index.
//
//===----------------------------------------------------------------------===//

#include "passes/Calibration.h"
#include "passes/Passes.h"
#include "passes/Report.h"
#include "support/AtomicFile.h"

#include "mlir/IR/Builders.h"

namespace mlir::w4a4 {
#define GEN_PASS_DEF_W4A4CALIBRATE
#include "passes/Passes.h.inc"
} // namespace mlir::w4a4

using namespace mlir;
using namespace mlir::w4a4;

namespace {

struct CalibratePass : mlir::w4a4::impl::W4A4CalibrateBase<CalibratePass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (out.empty()) {
      module.emitError("w4a4-calibrate: option out=FILE (where the "
                       "statistics go) is required");
      return signalPassFailure();
    }
    // The statistics must not overwrite the calibration ids or the module's
    // own source file.
    if (::w4a4::sameFile(out, calib)) {
      module.emitError("w4a4-calibrate: out='")
          << out << "' is the calibration ids file";
      return signalPassFailure();
    }
    if (auto loc = dyn_cast<FileLineColLoc>(module.getLoc()))
      if (::w4a4::sameFile(out, loc.getFilename().getValue())) {
        module.emitError("w4a4-calibrate: out='")
            << out << "' is the input model";
        return signalPassFailure();
      }
    dropCalibration(module);
    auto sites = collectSites(module);
    if (sites.empty()) {
      module.emitError("w4a4-calibrate: no block linear (qkv, o_proj, w1w3, "
                       "w2) to calibrate");
      return signalPassFailure();
    }
    CalibrationWindows cw{calib, windows, ctx, bos};
    StatsProvenance provenance;
    auto stats = calibrateSites(module, "w4a4-calibrate", cw, sites, hessian,
                                &provenance.data);
    if (failed(stats))
      return signalPassFailure();
    std::vector<SiteStats> ordered;
    Builder b(module.getContext());
    int64_t rows = 0;
    for (auto &[input, linears] : sites) {
      for (LinearOp l : linears)
        l->setAttr(kCalibSiteAttr, b.getI64IntegerAttr(ordered.size()));
      ordered.push_back(std::move((*stats)[input]));
      rows = ordered.back().rows;
    }
    provenance.weights = weightsFingerprint(module);
    std::string error;
    if (failed(writeStatsFile(out, ordered, provenance, error))) {
      module.emitError("w4a4-calibrate: ") << error;
      return signalPassFailure();
    }
    module->setAttr(
        kCalibrationAttr,
        b.getDictionaryAttr({
            b.getNamedAttr("file", b.getStringAttr(out)),
            b.getNamedAttr("sites", b.getI64IntegerAttr(ordered.size())),
            b.getNamedAttr("positions", b.getI64IntegerAttr(rows)),
            b.getNamedAttr("hessian", b.getBoolAttr(hessian)),
            b.getNamedAttr(
                "weights_fingerprint",
                b.getStringAttr(fingerprintString(provenance.weights))),
            b.getNamedAttr("data_fingerprint",
                           b.getStringAttr(fingerprintString(provenance.data))),
        }));
    reportFact("file", std::string(out));
    reportFact("sites", static_cast<int64_t>(ordered.size()));
    reportFact("positions", rows);
    reportFact("hessian", static_cast<bool>(hessian));
  }
};

} // namespace
