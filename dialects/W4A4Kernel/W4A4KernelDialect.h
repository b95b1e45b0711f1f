//===- W4A4KernelDialect.h - kernel-level IR of w4a4 ------------*- C++ -*-===//

#ifndef W4A4_KERNEL_DIALECT_H
#define W4A4_KERNEL_DIALECT_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "dialects/W4A4Kernel/W4A4KernelDialect.h.inc"

#define GET_TYPEDEF_CLASSES
#include "dialects/W4A4Kernel/W4A4KernelTypes.h.inc"

#define GET_OP_CLASSES
#include "dialects/W4A4Kernel/W4A4KernelOps.h.inc"

#endif
