//===- Calibration.cpp - per-site activation statistics -------------------===//

#include "passes/Calibration.h"
#include "dialects/W4A4/W4A4Utils.h"
#include "interpreter/Executor.h"
#include "passes/Sites.h"
#include "support/AtomicFile.h"

#include "mlir/IR/DialectResourceBlobManager.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Support/xxhash.h"

#include <cblas.h>
#include <cmath>
#include <cstring>

using namespace mlir;
using namespace mlir::w4a4;

namespace {
// Version 2: the header records the provenance (weights and data
// fingerprints) after the magic.
constexpr char kMagic[8] = {'W', '4', 'A', '4', 'C', 'A', 'L', '2'};
} // namespace

llvm::MapVector<Value, SmallVector<LinearOp>>
mlir::w4a4::collectSites(ModuleOp module) {
  llvm::MapVector<Value, SmallVector<LinearOp>> sites;
  module.walk([&](LinearOp lin) {
    Site s = classifySite(lin);
    if (s == Site::QKV || s == Site::W1W3 || s == Site::OProj || s == Site::W2)
      sites[lin.getInput()].push_back(lin);
  });
  return sites;
}

FailureOr<llvm::DenseMap<Value, SiteStats>> mlir::w4a4::calibrateSites(
    ModuleOp module, StringRef pass, const CalibrationWindows &cw,
    const llvm::MapVector<Value, SmallVector<LinearOp>> &sites, bool hessian,
    uint64_t *dataFingerprint) {
  // The model's BOS unless the pass was given one.
  int64_t bos = cw.bos;
  if (bos < 0) {
    auto attr = module->getAttrOfType<IntegerAttr>("w4a4.bos_id");
    bos = attr ? attr.getInt() : 1;
  }
  bool blocked = false;
  module.walk([&](Operation *op) {
    if (isa<RegistersOp>(op)) {
      op->emitError(pass) << ": run w4a4-fold-registers first (register "
                             "positions must not enter the statistics)";
      blocked = true;
    } else if (isa<QLinearOp>(op)) {
      op->emitError(pass) << ": calibrate before quantizing";
      blocked = true;
    }
  });
  if (blocked)
    return failure();
  if (cw.idsFile.empty()) {
    module.emitError(pass) << ": no calibration ids (option calib=FILE: "
                              "whitespace-separated token ids)";
    return failure();
  }
  auto buffer = llvm::MemoryBuffer::getFile(cw.idsFile);
  if (!buffer) {
    module.emitError(pass) << ": cannot read calib file '" << cw.idsFile
                           << "': " << buffer.getError().message();
    return failure();
  }
  std::vector<int64_t> ids;
  StringRef rest = (*buffer)->getBuffer();
  while (!(rest = rest.ltrim()).empty()) {
    size_t end = rest.find_first_of(" \t\r\n\v\f");
    StringRef t = rest.take_front(end);
    rest = rest.drop_front(t.size());
    int64_t v;
    if (t.getAsInteger(10, v) || v < 0) {
      module.emitError(pass) << ": calib file '" << cw.idsFile << "' holds '"
                             << t << "', not a token id";
      return failure();
    }
    ids.push_back(v);
  }
  int64_t n = cw.ctx - 1;
  if (n <= 0 || cw.windows <= 0) {
    module.emitError(pass) << ": need ctx >= 2 and windows >= 1, got ctx "
                           << cw.ctx << ", windows " << cw.windows;
    return failure();
  }
  if (std::string e =
          checkPositions(module, cw.ctx, "ctx=" + std::to_string(cw.ctx));
      !e.empty()) {
    module.emitError(pass) << ": " << e;
    return failure();
  }
  if (static_cast<int64_t>(ids.size()) < n) {
    module.emitError(pass) << ": calib file '" << cw.idsFile << "' has "
                           << ids.size() << " ids, fewer than one window (" << n
                           << ")";
    return failure();
  }
  auto executor = Executor::create(module);
  if (!executor) {
    module.emitError(pass) << ": " << toString(executor.takeError());
    return failure();
  }
  llvm::DenseMap<Value, SiteStats> stats;
  std::vector<double> rowsF64;
  std::vector<int64_t> fingerprinted = {cw.ctx, cw.windows, hessian ? 1 : 0};
  for (int64_t w = 0;
       w < cw.windows && (w + 1) * n <= static_cast<int64_t>(ids.size()); ++w) {
    std::vector<int64_t> window = {bos};
    window.insert(window.end(), ids.begin() + w * n, ids.begin() + (w + 1) * n);
    fingerprinted.insert(fingerprinted.end(), window.begin(), window.end());
    auto r = (*executor)->run(
        window, 1, window.size(), [&](Value v, const HostTensor &t) {
          if (!sites.count(v))
            return;
          int64_t width = t.shape.back(), rows = t.numel() / width;
          SiteStats &s = stats[v];
          if (s.absmax.empty()) {
            s.width = width;
            s.absmax.assign(width, 0.0);
            if (hessian)
              s.hessian.assign(width * width, 0.0);
          }
          s.rows += rows;
          for (int64_t r = 0; r < rows; ++r)
            for (int64_t c = 0; c < width; ++c)
              s.absmax[c] = std::max(s.absmax[c], static_cast<double>(std::fabs(
                                                      t.f32[r * width + c])));
          if (!hessian)
            return;
          rowsF64.assign(t.f32, t.f32 + rows * width);
          // Upper triangle of H += X^T X.
          cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, width, rows, 1.0,
                      rowsF64.data(), width, 1.0, s.hessian.data(), width);
        });
    if (!r) {
      module.emitError(pass)
          << ": calibration run failed: " << toString(r.takeError());
      return failure();
    }
  }
  if (dataFingerprint)
    *dataFingerprint = llvm::xxh3_64bits(ArrayRef<uint8_t>(
        reinterpret_cast<const uint8_t *>(fingerprinted.data()),
        fingerprinted.size() * sizeof(int64_t)));
  for (auto &[v, s] : stats)
    for (int64_t i = 0; i < s.width && hessian; ++i)
      for (int64_t j = 0; j < i; ++j)
        s.hessian[i * s.width + j] = s.hessian[j * s.width + i];
  for (auto &entry : sites)
    if (!stats.count(entry.first)) {
      LinearOp(entry.second.front()).emitError(pass)
          << ": the calibration run never reached this site";
      return failure();
    }
  return stats;
}

uint64_t mlir::w4a4::weightsFingerprint(ModuleOp module) {
  uint64_t h = 0x77346134; // "w4a4"
  auto mix = [&](ArrayRef<uint8_t> bytes) {
    uint64_t parts[2] = {h, llvm::xxh3_64bits(bytes)};
    h = llvm::xxh3_64bits(ArrayRef<uint8_t>(
        reinterpret_cast<const uint8_t *>(parts), sizeof parts));
  };
  auto mixString = [&](StringRef s) {
    mix(ArrayRef<uint8_t>(reinterpret_cast<const uint8_t *>(s.data()),
                          s.size()));
  };
  module.walk([&](WeightOp w) {
    mixString(w.getName());
    std::string type;
    llvm::raw_string_ostream os(type);
    w.getType().print(os);
    mixString(type);
    Attribute v = w.getValue();
    if (auto res = dyn_cast<DenseResourceElementsAttr>(v)) {
      if (AsmResourceBlob *blob = res.getRawHandle().getBlob())
        mixString(StringRef(blob->getData().data(), blob->getData().size()));
    } else if (auto dense = dyn_cast<DenseElementsAttr>(v)) {
      mixString(
          StringRef(dense.getRawData().data(), dense.getRawData().size()));
    }
  });
  return h;
}

std::string mlir::w4a4::fingerprintString(uint64_t fingerprint) {
  return llvm::utohexstr(fingerprint, /*LowerCase=*/true, /*Width=*/16);
}

LogicalResult mlir::w4a4::writeStatsFile(StringRef path,
                                         ArrayRef<SiteStats> stats,
                                         const StatsProvenance &provenance,
                                         std::string &error) {
  auto out = ::w4a4::AtomicOutput::open(path);
  if (!out) {
    error = llvm::toString(out.takeError());
    return failure();
  }
  llvm::raw_ostream &os = (*out)->os();
  auto u64 = [&](uint64_t v) {
    os.write(reinterpret_cast<const char *>(&v), sizeof v);
  };
  auto f64s = [&](const std::vector<double> &v) {
    os.write(reinterpret_cast<const char *>(v.data()), v.size() * 8);
  };
  os.write(kMagic, sizeof kMagic);
  u64(provenance.weights);
  u64(provenance.data);
  u64(stats.size());
  for (const SiteStats &s : stats) {
    u64(s.width);
    u64(s.rows);
    u64(s.hessian.empty() ? 0 : 1);
    f64s(s.absmax);
    f64s(s.hessian);
  }
  if (llvm::Error e = (*out)->commit()) {
    error = llvm::toString(std::move(e));
    return failure();
  }
  return success();
}

FailureOr<std::vector<SiteStats>>
mlir::w4a4::readStatsFile(StringRef path, StatsProvenance &provenance,
                          std::string &error) {
  if (llvm::Error e = ::w4a4::checkRegularInput(path, "statistics file")) {
    error = llvm::toString(std::move(e));
    return failure();
  }
  auto buffer = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                            /*RequiresNullTerminator=*/false);
  if (!buffer) {
    error = "cannot read statistics file '" + path.str() +
            "': " + buffer.getError().message();
    return failure();
  }
  StringRef data = (*buffer)->getBuffer();
  size_t pos = 0;
  auto take = [&](void *dst, size_t bytes) {
    if (data.size() - pos < bytes)
      return false;
    std::memcpy(dst, data.data() + pos, bytes);
    pos += bytes;
    return true;
  };
  char magic[8];
  uint64_t count;
  if (!take(magic, 8) || std::memcmp(magic, kMagic, 7) != 0) {
    error = "'" + path.str() + "' is not a w4a4 statistics file";
    return failure();
  }
  if (magic[7] != kMagic[7]) {
    error = "statistics file '" + path.str() +
            "' is of an older format (no provenance): run w4a4-calibrate "
            "again";
    return failure();
  }
  // Every size is checked against the bytes left before it is allocated
  // (a tiny file must not ask for gigabytes).
  auto left = [&] { return static_cast<uint64_t>(data.size() - pos); };
  if (!take(&provenance.weights, 8) || !take(&provenance.data, 8) ||
      !take(&count, 8) || count > left() / 24) {
    error = "statistics file '" + path.str() + "' is truncated or corrupt";
    return failure();
  }
  std::vector<SiteStats> stats(count);
  for (SiteStats &s : stats) {
    uint64_t width, rows, hasHessian;
    if (!take(&width, 8) || !take(&rows, 8) || !take(&hasHessian, 8) ||
        width == 0 || width > (1u << 16) || hasHessian > 1 ||
        width * (1 + hasHessian * width) > left() / 8) {
      error = "statistics file '" + path.str() + "' is truncated or corrupt";
      return failure();
    }
    s.width = width;
    s.rows = rows;
    s.absmax.resize(width);
    if (hasHessian)
      s.hessian.resize(width * width);
    if (!take(s.absmax.data(), width * 8) ||
        !take(s.hessian.data(), s.hessian.size() * 8)) {
      error = "statistics file '" + path.str() + "' is truncated or corrupt";
      return failure();
    }
  }
  if (pos != data.size()) {
    error = "statistics file '" + path.str() + "' has trailing bytes";
    return failure();
  }
  return stats;
}

void mlir::w4a4::dropCalibration(ModuleOp module) {
  module->removeAttr(kCalibrationAttr);
  module.walk([](LinearOp op) { op->removeAttr(kCalibSiteAttr); });
}
