//===- W4A4Dialect.cpp - w4a4 dialect registration ------------------------===//

#include "dialects/W4A4/W4A4Dialect.h"
#include "dialects/W4A4/W4A4Ops.h"

using namespace mlir;
using namespace mlir::w4a4;

#include "dialects/W4A4/W4A4Dialect.cpp.inc"
#include "dialects/W4A4/W4A4Enums.cpp.inc"

void W4A4Dialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "dialects/W4A4/W4A4Ops.cpp.inc"
      >();
}
