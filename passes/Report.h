//===- Report.h - what each pass did, for w4a4-opt --w4a4-report -*- C++
//-*-===//
//
// Passes state facts about their work (`reportFact("linears", 42)`); the
// ReportInstrumentation collects them per pass run together with the wall
// time and the change in op counts, and writes one JSON document. Facts are
// dropped when no instrumentation listens.
//
//===----------------------------------------------------------------------===//

#ifndef W4A4_PASSES_REPORT_H
#define W4A4_PASSES_REPORT_H

#include "mlir/Pass/PassInstrumentation.h"
#include "llvm/Support/JSON.h"

#include <chrono>
#include <map>
#include <memory>
#include <string>

namespace mlir::w4a4 {

/// Records one fact about the running pass (no-op without a listener).
void reportFact(llvm::StringRef key, llvm::json::Value value);
/// Whether a report listens: facts that cost work to compute are computed
/// only then.
bool reportEnabled();

/// The report: one entry per module-level pass run. Outlives the pass
/// managers that fill it.
struct ReportLog {
  llvm::json::Array passes;

  /// {"passes": [...]}.
  llvm::json::Value toJSON() const;
  /// Writes toJSON() to `path`; false with `error` on I/O failure.
  bool write(llvm::StringRef path, std::string &error) const;
};

/// Collects, for every pass run on a module: its name and options, wall
/// seconds, the ops it added or removed (by op name), and its facts.
class ReportInstrumentation : public PassInstrumentation {
public:
  explicit ReportInstrumentation(std::shared_ptr<ReportLog> log);
  ~ReportInstrumentation() override;
  void runBeforePass(Pass *pass, Operation *op) override;
  void runAfterPass(Pass *pass, Operation *op) override;
  void runAfterPassFailed(Pass *pass, Operation *op) override;

private:
  void finish(Pass *pass, Operation *op, bool failed);

  std::shared_ptr<ReportLog> log;
  std::map<std::string, int64_t> countsBefore;
  std::chrono::steady_clock::time_point start;
};

} // namespace mlir::w4a4

#endif // W4A4_PASSES_REPORT_H
