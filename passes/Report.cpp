//===- Report.cpp - what each pass did ------------------------------------===//

#include "passes/Report.h"
#include "support/AtomicFile.h"

#include "mlir/IR/Operation.h"
#include "mlir/Pass/Pass.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/raw_ostream.h"

#include <mutex>

using namespace mlir;
using namespace mlir::w4a4;

namespace {
std::mutex factsMutex;
int listeners = 0;
llvm::json::Object facts;

std::map<std::string, int64_t> opCounts(Operation *root) {
  std::map<std::string, int64_t> counts;
  root->walk([&](Operation *op) {
    if (op != root)
      ++counts[op->getName().getStringRef().str()];
  });
  return counts;
}
} // namespace

void mlir::w4a4::reportFact(llvm::StringRef key, llvm::json::Value value) {
  std::lock_guard<std::mutex> lock(factsMutex);
  if (listeners)
    facts[key] = std::move(value);
}

bool mlir::w4a4::reportEnabled() {
  std::lock_guard<std::mutex> lock(factsMutex);
  return listeners > 0;
}

ReportInstrumentation::ReportInstrumentation(std::shared_ptr<ReportLog> log)
    : log(std::move(log)) {
  std::lock_guard<std::mutex> lock(factsMutex);
  ++listeners;
}

ReportInstrumentation::~ReportInstrumentation() {
  std::lock_guard<std::mutex> lock(factsMutex);
  --listeners;
}

void ReportInstrumentation::runBeforePass(Pass *pass, Operation *op) {
  if (op->getParentOp()) // module-level passes only (nested ones run inside)
    return;
  {
    std::lock_guard<std::mutex> lock(factsMutex);
    facts = llvm::json::Object();
  }
  countsBefore = opCounts(op);
  start = std::chrono::steady_clock::now();
}

void ReportInstrumentation::runAfterPass(Pass *pass, Operation *op) {
  finish(pass, op, false);
}

void ReportInstrumentation::runAfterPassFailed(Pass *pass, Operation *op) {
  finish(pass, op, true);
}

void ReportInstrumentation::finish(Pass *pass, Operation *op, bool failed) {
  if (op->getParentOp())
    return;
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  std::map<std::string, int64_t> after = opCounts(op);
  llvm::json::Object changed;
  for (auto &[name, n] : after)
    if (countsBefore[name] != n)
      changed[name] = n - countsBefore[name];
  for (auto &[name, n] : countsBefore)
    if (n && !after.count(name))
      changed[name] = -n;
  std::string options;
  llvm::raw_string_ostream os(options);
  pass->printAsTextualPipeline(os);
  llvm::json::Object entry{{"pass", pass->getArgument().str()},
                           {"pipeline", os.str()},
                           {"seconds", seconds},
                           {"status", failed ? "failed" : "ok"},
                           {"ops_changed", std::move(changed)}};
  {
    std::lock_guard<std::mutex> lock(factsMutex);
    entry["facts"] = std::move(facts);
    facts = llvm::json::Object();
  }
  log->passes.push_back(std::move(entry));
}

llvm::json::Value ReportLog::toJSON() const {
  return llvm::json::Object{{"passes", llvm::json::Array(passes)}};
}

bool ReportLog::write(llvm::StringRef path, std::string &error) const {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << llvm::formatv("{0:2}", toJSON()) << "\n";
  if (llvm::Error e = ::w4a4::writeFileAtomically(path, text)) {
    error = llvm::toString(std::move(e));
    return false;
  }
  return true;
}
