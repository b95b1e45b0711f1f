//===- W4A4Dialect.h - w4a4 dialect -----------------------------*- C++ -*-===//

#ifndef W4A4_DIALECTS_W4A4_W4A4DIALECT_H
#define W4A4_DIALECTS_W4A4_W4A4DIALECT_H

#include "mlir/IR/Dialect.h"

#include "dialects/W4A4/W4A4Dialect.h.inc"

#endif // W4A4_DIALECTS_W4A4_W4A4DIALECT_H
