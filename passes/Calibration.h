//===- Calibration.h - per-site activation statistics -----------*- C++ -*-===//
//
// Runs the floating-point IR on calibration windows through the executor and
// gathers, for every activation site (the input of the block linears), the
// per-channel max|x| and optionally the Hessian X^T X (float64) that GPTQ
// needs. w4a4-smoothquant uses the maxima directly; w4a4-calibrate writes
// both to a side file that the module names (attribute `w4a4.calibration`),
// and w4a4-quantize-weights method=gptq reads the Hessians from it.
//
//===----------------------------------------------------------------------===//

#ifndef W4A4_PASSES_CALIBRATION_H
#define W4A4_PASSES_CALIBRATION_H

#include "dialects/W4A4/W4A4Ops.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/MapVector.h"

#include <string>
#include <vector>

namespace mlir::w4a4 {

/// Statistics of one site over `rows` calibration positions (BOS and token
/// positions; register positions never reach a site after fold-registers).
struct SiteStats {
  int64_t width = 0;
  int64_t rows = 0;
  std::vector<double> absmax;  // [width]
  std::vector<double> hessian; // [width * width] (sum of x^T x), or empty
};

/// The windows to run: the first `windows` runs of `ctx - 1` ids from a file
/// of whitespace-separated token ids, each after `bos`.
struct CalibrationWindows {
  std::string idsFile;
  int64_t windows = 32;
  int64_t ctx = 256;
  int64_t bos = 1;
};

/// The sites of the block linears (qkv, o_proj, w1w3, w2) in program order:
/// each site input with the linears reading it.
llvm::MapVector<Value, SmallVector<LinearOp>> collectSites(ModuleOp module);

/// Runs the module on the windows and returns the statistics of each site of
/// `sites`. Errors are emitted on `module`, prefixed with `pass`. Refuses
/// modules with unfolded Depth Registers or quantized linears.
/// `dataFingerprint`, when given, receives a hash of what the statistics
/// were computed from besides the weights: the windows' token ids (BOS
/// included), ctx, the window count and the Hessian flag.
FailureOr<llvm::DenseMap<Value, SiteStats>>
calibrateSites(ModuleOp module, StringRef pass, const CalibrationWindows &cw,
               const llvm::MapVector<Value, SmallVector<LinearOp>> &sites,
               bool hessian, uint64_t *dataFingerprint = nullptr);

/// A hash of every weight of the module (names, types and values): the
/// statistics file records the fingerprint of the weights it was computed
/// on, and is refused for other weights.
uint64_t weightsFingerprint(ModuleOp module);

/// What a statistics file was computed from.
struct StatsProvenance {
  uint64_t weights = 0; // weightsFingerprint of the calibrated module
  uint64_t data = 0;    // calibrateSites' dataFingerprint
};

/// Name of the module attribute naming the statistics file, and of the
/// attribute giving each linear its site's index in that file.
constexpr llvm::StringLiteral kCalibrationAttr = "w4a4.calibration";
constexpr llvm::StringLiteral kCalibSiteAttr = "w4a4.calib_site";

/// Writes `stats` (in site order) and their provenance to `path`
/// (atomically).
LogicalResult writeStatsFile(StringRef path, ArrayRef<SiteStats> stats,
                             const StatsProvenance &provenance,
                             std::string &error);
/// Reads a file written by writeStatsFile: a regular file whose every size
/// is checked against its length before anything is allocated.
FailureOr<std::vector<SiteStats>>
readStatsFile(StringRef path, StatsProvenance &provenance, std::string &error);

/// The hex spelling of a fingerprint in the `w4a4.calibration` attribute.
std::string fingerprintString(uint64_t fingerprint);

/// Forgets the module's calibration (the statistics no longer describe the
/// function): every pass that changes site inputs or weights calls this.
void dropCalibration(ModuleOp module);

} // namespace mlir::w4a4

#endif // W4A4_PASSES_CALIBRATION_H
