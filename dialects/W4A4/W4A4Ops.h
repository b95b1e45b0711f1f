//===- W4A4Ops.h - w4a4 operations ------------------------------*- C++ -*-===//

#ifndef W4A4_DIALECTS_W4A4_W4A4OPS_H
#define W4A4_DIALECTS_W4A4_W4A4OPS_H

#include "dialects/W4A4/W4A4Dialect.h"
#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "dialects/W4A4/W4A4Enums.h.inc"

#define GET_OP_CLASSES
#include "dialects/W4A4/W4A4Ops.h.inc"

#endif // W4A4_DIALECTS_W4A4_W4A4OPS_H
