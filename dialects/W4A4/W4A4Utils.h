//===- W4A4Utils.h - helpers for building and reading weights ---*- C++ -*-===//

#ifndef W4A4_DIALECTS_W4A4_W4A4UTILS_H
#define W4A4_DIALECTS_W4A4_W4A4UTILS_H

#include "dialects/W4A4/W4A4Ops.h"
#include "mlir/IR/Builders.h"

#include <optional>
#include <vector>

namespace mlir::w4a4 {

/// The values of a floating-point constant (dense literal or dense_resource
/// blob of f16, bf16, f32 or f64) as doubles; nullopt for other attributes
/// or elided blobs.
std::optional<std::vector<double>> readFloats(Attribute attr);

/// Whether a dense literal holds as many bytes as its type says (one
/// element for a splat). Malformed bytecode can make MLIR's reader build
/// one with no data at all (`dense<"0x"> : tensor<32x16xf32>`), which
/// iterating would read from a null pointer.
bool denseDataMatchesType(DenseElementsAttr attr);

/// A w4a4.weight named `name`: a dense literal for at most 16 elements, else a
/// dense_resource blob whose key is the name made of identifier characters.
WeightOp createF32Weight(OpBuilder &builder, Location loc, StringRef name,
                         ArrayRef<int64_t> shape, ArrayRef<float> values);
WeightOp createI8Weight(OpBuilder &builder, Location loc, StringRef name,
                        ArrayRef<int64_t> shape, ArrayRef<int8_t> values);

/// Replaces the f32 weight defining `v` by one of the same name and shape
/// holding fn(values) (values read as doubles, written back as f32). Emits
/// "<pass>: ..." and fails when `v` is not a readable w4a4.weight.
LogicalResult
transformWeight(Value v, StringRef pass,
                llvm::function_ref<void(std::vector<double> &)> fn);

/// The RoPE positions a call on `tokens` tokens uses: the tokens, plus a
/// register prefix still prepended, plus the largest RoPE position_offset
/// (a folded register prefix). nullopt on overflow.
std::optional<int64_t> positionsFor(ModuleOp module, int64_t tokens);

/// An error message when `tokens` tokens need more positions than the
/// module's `w4a4.max_positions` (the rows of the exported RoPE tables);
/// empty when they fit or the module has no bound. `what` names the
/// request ("--ctx 600").
std::string checkPositions(ModuleOp module, int64_t tokens,
                           llvm::StringRef what);

} // namespace mlir::w4a4

#endif // W4A4_DIALECTS_W4A4_W4A4UTILS_H
