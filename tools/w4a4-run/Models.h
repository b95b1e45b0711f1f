//===- Models.h - what w4a4-run runs: IR or a compiled artifact -*- C++ -*-===//
//
// w4a4-run drives a model through this interface: w4a4 IR through the
// executor (the interpreter), or a directory written by w4a4-compile through
// its C API (libmodel.so, dlopen'ed). Perplexity and generation are written
// once against it.
//
//===----------------------------------------------------------------------===//

#ifndef W4A4_TOOLS_W4A4_RUN_MODELS_H
#define W4A4_TOOLS_W4A4_RUN_MODELS_H

#include "interpreter/Executor.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Error.h"

#include <memory>
#include <string>
#include <vector>

namespace w4a4::run {

class Model {
public:
  virtual ~Model() = default;
  virtual int64_t vocab() const = 0;
  /// Logits of positions [begin, end) of `ids` (batch 1), row-major
  /// [end - begin, vocab].
  virtual llvm::Expected<std::vector<float>>
  logits(const std::vector<int64_t> &ids, int64_t begin, int64_t end) = 0;
  /// Generation: forgets earlier tokens, feeds `ids` and returns the logits
  /// of the last one.
  virtual llvm::Expected<std::vector<float>>
  start(const std::vector<int64_t> &ids) = 0;
  /// Feeds one more token; returns its logits.
  virtual llvm::Expected<std::vector<float>> next(int64_t id) = 0;
  /// An error message when `tokens` tokens need more positions than the
  /// model has; empty when they fit.
  virtual std::string checkPositions(int64_t tokens,
                                     const std::string &what) const = 0;
  /// The model's BOS id, or -1.
  virtual int64_t bos() const = 0;
  /// A tokenizer the model names (an artifact's), or "".
  virtual std::string tokenizer() const { return ""; }
  /// How generation reuses earlier tokens, for --help and errors.
  virtual std::string kind() const = 0;
};

/// IR (the module must outlive the model).
std::unique_ptr<Model> irModel(mlir::ModuleOp module,
                               std::unique_ptr<mlir::w4a4::Executor> executor);

/// Whether `path` is a w4a4-compile directory (it holds manifest.json).
bool isArtifact(const std::string &path);

/// Opens the artifact in directory `dir`.
llvm::Expected<std::unique_ptr<Model>> openArtifact(const std::string &dir,
                                                    int threads);

} // namespace w4a4::run

#endif
