//===- Passes.td - w4a4 passes -----------------------------*- tablegen -*-===//

#ifndef W4A4_PASSES_TD
#define W4A4_PASSES_TD

include "mlir/Pass/PassBase.td"

def W4A4Simplify : Pass<"w4a4-simplify"> {
  let summary = "Fold and canonicalize w4a4 ops with exact rewrites only";
  let description = [{
    Runs the w4a4 dialect's folds and canonicalization patterns to a fixed
    point and erases what becomes dead (unused weights included). Every
    rewrite is exact in floating point, so logits do not change by a bit:

    - a Hadamard followed by its inverse (same kind, size, signs or seed)
      cancels, and so do two signless Walsh transforms (the Sylvester matrix
      is symmetric);
    - an `rms_norm` gain of all ones is dropped;
    - a `linear` bias of all +0.0 is dropped;
    - `add` with a splat of -0.0 folds to the other operand;
    - Depth Registers with k = 0 fold away.

    Before:
    ```mlir
    %1 = w4a4.hadamard walsh(64) %x {seed = 3 : i64} : tensor<?x?x64xf32>
    %2 = w4a4.hadamard walsh(64) %1 inverse {seed = 3 : i64} : tensor<?x?x64xf32>
    %3 = w4a4.rms_norm %2 gain(%ones : tensor<64xf32>) : tensor<?x?x64xf32>
    ```
    After:
    ```mlir
    %3 = w4a4.rms_norm %x : tensor<?x?x64xf32>
    ```
  }];
  let dependentDialects = ["::mlir::w4a4::W4A4Dialect"];
  let options = [
    Option<"maxIterations", "max-iterations", "int64_t", /*default=*/"10",
           "Maximum number of greedy rewrite sweeps">,
  ];
}

#endif // W4A4_PASSES_TD
