//===- Pipelines.cpp - named pass pipelines -------------------------------===//
//
// w4a4-quantize-pipeline: the standard W4A4 configurations in one line, so a
// user need not know the pass order (which is written here once).
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"
#include "support/AtomicFile.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassOptions.h"
#include "mlir/Pass/PassRegistry.h"

#include <sstream>

using namespace mlir;
using namespace mlir::w4a4;

namespace {

struct QuantizePipelineOptions
    : public PassPipelineOptions<QuantizePipelineOptions> {
  Option<std::string> rotate{
      *this, "rotate", llvm::cl::desc("QuaRot mode: none | readers | full"),
      llvm::cl::init("none")};
  Option<uint64_t> seed{*this, "seed",
                        llvm::cl::desc("Seed of the residual rotation's signs"),
                        llvm::cl::init(0)};
  Option<int64_t> wbits{*this, "wbits", llvm::cl::desc("Weight bits (RTN)"),
                        llvm::cl::init(4)};
  Option<int64_t> group{
      *this, "group",
      llvm::cl::desc("Weight group size (0: one scale per output row)"),
      llvm::cl::init(0)};
  Option<double> wclip{*this, "wclip", llvm::cl::desc("Weight clip ratio"),
                       llvm::cl::init(1.0)};
  Option<int64_t> abits{*this, "abits",
                        llvm::cl::desc("Activation bits, in [2, 8]"),
                        llvm::cl::init(4)};
  Option<double> aclip{*this, "aclip", llvm::cl::desc("Activation clip ratio"),
                       llvm::cl::init(1.0)};
  Option<int64_t> kvBits{
      *this, "kv-bits",
      llvm::cl::desc("KV bits per token per head (0: floating point)"),
      llvm::cl::init(0)};
  Option<int64_t> kvGroup{
      *this, "kv-group",
      llvm::cl::desc("KV channels per scale (0: one per head)"),
      llvm::cl::init(0)};
  ListOption<std::string> sites{
      *this, "sites",
      llvm::cl::desc("Activation sites to quantize (default: all)")};
  ListOption<std::string> siteBits{
      *this, "site-bits",
      llvm::cl::desc("Per-site activation bits, e.g. w2=8")};
  ListOption<std::string> keepFp{
      *this, "keep-fp",
      llvm::cl::desc("Sites whose input stays floating point")};
  Option<double> smooth{
      *this, "smooth",
      llvm::cl::desc("SmoothQuant alpha in [0, 1] (negative: off)"),
      llvm::cl::init(-1.0)};
  Option<std::string> weights{*this, "weights",
                              llvm::cl::desc("Weight quantizer: rtn | gptq"),
                              llvm::cl::init("rtn")};
  Option<double> damp{*this, "damp",
                      llvm::cl::desc("GPTQ dampening (fraction of mean diag)"),
                      llvm::cl::init(0.01)};
  Option<bool> actOrder{*this, "act-order",
                        llvm::cl::desc("GPTQ columns by decreasing H[j][j]"),
                        llvm::cl::init(false)};
  Option<bool> clipSearch{
      *this, "clip-search",
      llvm::cl::desc("Search weight clip ratios by output error"),
      llvm::cl::init(false)};
  Option<std::string> calib{
      *this, "calib",
      llvm::cl::desc("Calibration token ids (SmoothQuant, GPTQ, clip search)")};
  Option<std::string> calibStats{
      *this, "calib-stats",
      llvm::cl::desc("Where w4a4-calibrate writes its statistics (default: "
                     "<calib>.w4a4cal)")};
  Option<int64_t> calibWindows{*this, "calib-windows",
                               llvm::cl::desc("Calibration windows"),
                               llvm::cl::init(32)};
  Option<int64_t> calibCtx{
      *this, "calib-ctx",
      llvm::cl::desc("Calibration window length including BOS"),
      llvm::cl::init(256)};
  Option<int64_t> bos{
      *this, "bos",
      llvm::cl::desc("BOS id of the calibration windows (default: the "
                     "model's w4a4.bos_id, else 1)"),
      llvm::cl::init(-1)};
};

/// Reports a pipeline option error when the pipeline runs, before any pass
/// (so that nothing, e.g. a calibration side file, is written).
struct OptionErrorPass : PassWrapper<OptionErrorPass, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(OptionErrorPass)
  explicit OptionErrorPass(std::string message) : message(std::move(message)) {}
  StringRef getArgument() const override {
    return "w4a4-quantize-pipeline-options";
  }
  void runOnOperation() override {
    getOperation().emitError("w4a4-quantize-pipeline: ") << message;
    signalPassFailure();
  }
  std::string message;
};

/// Every option checked up front: ranges, NaN, contradictions, the
/// calibration files. Empty when all hold.
std::string num(double x) {
  std::ostringstream os;
  os << x;
  return os.str();
}

std::string checkOptions(const QuantizePipelineOptions &o) {
  auto inRange = [](double x, double lo, double hi) {
    return x >= lo && x <= hi; // false for NaN
  };
  if (o.rotate != "none" && o.rotate != "readers" && o.rotate != "full")
    return "rotate must be none, readers or full, got '" + o.rotate + "'";
  if (o.wbits < 2 || o.wbits > 8)
    return "wbits must be in [2, 8], got " + std::to_string(o.wbits);
  if (o.abits < 2 || o.abits > 8)
    return "abits must be in [2, 8], got " + std::to_string(o.abits) +
           (o.abits == 0 ? " (to keep activations in floating point, use "
                           "keep-fp=qkv,o_proj,w1w3,w2)"
                         : "");
  if (o.group < 0)
    return "group must be >= 0, got " + std::to_string(o.group);
  if (!inRange(o.wclip, 1e-6, 1.0) || !inRange(o.aclip, 1e-6, 1.0))
    return "wclip and aclip must be in (0, 1], got " + num(o.wclip) + " and " +
           num(o.aclip);
  if (!(o.smooth < 0) && !inRange(o.smooth, 0.0, 1.0))
    return "smooth must be in [0, 1] (or negative: off), got " + num(o.smooth);
  if (o.weights != "rtn" && o.weights != "gptq")
    return "weights must be rtn or gptq, got '" + std::string(o.weights) + "'";
  if (!(o.damp > 0.0 && o.damp < 1.0))
    return "damp must be in (0, 1), got " + num(o.damp);
  if (o.actOrder && o.weights != "gptq")
    return "act-order needs weights=gptq";
  if (o.kvBits != 0 && (o.kvBits < 2 || o.kvBits > 8))
    return "kv-bits must be 0 or in [2, 8], got " + std::to_string(o.kvBits);
  if (o.kvGroup < 0)
    return "kv-group must be >= 0, got " + std::to_string(o.kvGroup);
  if (o.calibWindows < 1 || o.calibCtx < 2)
    return "calib-windows must be >= 1 and calib-ctx >= 2, got " +
           std::to_string(o.calibWindows) + " and " +
           std::to_string(o.calibCtx);
  if (o.bos < -1)
    return "bos must be a token id >= 0, got " + std::to_string(o.bos);
  bool calibrates = o.smooth >= 0 || o.weights == "gptq" || o.clipSearch;
  if (!calibrates)
    return "";
  if (o.calib.empty())
    return "SmoothQuant, GPTQ and clip search need calib=FILE (token ids)";
  if (llvm::Error e = ::w4a4::checkRegularInput(o.calib, "calib"))
    return llvm::toString(std::move(e));
  std::string stats =
      o.calibStats.empty() ? o.calib + ".w4a4cal" : std::string(o.calibStats);
  if (::w4a4::sameFile(stats, o.calib))
    return "calib-stats '" + stats + "' is the calibration ids file";
  return "";
}

void buildQuantizePipeline(OpPassManager &pm,
                           const QuantizePipelineOptions &o) {
  if (std::string e = checkOptions(o); !e.empty()) {
    pm.addPass(std::make_unique<OptionErrorPass>(e));
    return;
  }
  // Registers first: the prefix becomes constant fp32 KV, computed on fp32
  // weights, and never reaches activation quantization.
  pm.addPass(createW4A4FoldRegisters());
  // As the reference evaluator: gains are folded before SmoothQuant when a
  // rotation follows, and again after it (its reader scales go into gains).
  bool rotate = o.rotate != "none";
  if (rotate)
    pm.addPass(createW4A4FoldNorms());
  if (o.smooth >= 0) {
    W4A4SmoothQuantOptions sq;
    sq.alpha = o.smooth;
    sq.calib = o.calib;
    sq.windows = o.calibWindows;
    sq.ctx = o.calibCtx;
    sq.bos = o.bos;
    pm.addPass(createW4A4SmoothQuant(sq));
    if (rotate)
      pm.addPass(createW4A4FoldNorms());
  }
  if (rotate) {
    W4A4RotateOptions rot;
    rot.mode = o.rotate;
    rot.seed = o.seed;
    pm.addPass(createW4A4Rotate(rot));
  }
  // GPTQ's Hessians come from the transformed fp model.
  if (o.weights == "gptq" || o.clipSearch) {
    W4A4CalibrateOptions cal;
    cal.calib = o.calib;
    cal.windows = o.calibWindows;
    cal.ctx = o.calibCtx;
    cal.bos = o.bos;
    cal.out =
        o.calibStats.empty() ? o.calib + ".w4a4cal" : std::string(o.calibStats);
    pm.addPass(createW4A4Calibrate(cal));
  }
  W4A4QuantizeWeightsOptions w;
  w.bits = o.wbits;
  w.group = o.group;
  w.clip = o.wclip;
  w.method = o.weights;
  w.damp = o.damp;
  w.actOrder = o.actOrder;
  w.clipSearch = o.clipSearch;
  pm.addPass(createW4A4QuantizeWeights(w));
  if (o.kvBits != 0) {
    W4A4QuantizeKVOptions kv;
    kv.bits = o.kvBits;
    kv.group = o.kvGroup;
    pm.addPass(createW4A4QuantizeKV(kv));
  }
  // abits is always applied: w4a4-quantize-activations rejects 0 (keep
  // activations in floating point with keep-fp=qkv,o_proj,w1w3,w2).
  W4A4QuantizeActivationsOptions a;
  a.bits = o.abits;
  a.clip = o.aclip;
  a.keepFp.assign(o.keepFp.begin(), o.keepFp.end());
  a.sites.assign(o.sites.begin(), o.sites.end());
  a.siteBitsOption.assign(o.siteBits.begin(), o.siteBits.end());
  pm.addPass(createW4A4QuantizeActivations(a));
}

} // namespace

void mlir::w4a4::registerW4A4Pipelines() {
  PassPipelineRegistration<QuantizePipelineOptions>(
      "w4a4-quantize-pipeline",
      "W4A4 in one line: fold registers, optional SmoothQuant and QuaRot "
      "(fold norms + rotate), RTN or GPTQ weights, per-token activations",
      buildQuantizePipeline);
}
