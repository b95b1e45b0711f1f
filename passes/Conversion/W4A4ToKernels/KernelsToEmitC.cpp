//===- KernelsToEmitC.cpp - w4a4k kernel-level IR to EmitC ----------------===//
//
// --w4a4k-to-emitc: the planned kernel-level @forward (after
// --w4a4k-plan-buffers) becomes an EmitC module that MLIR's C++ emitter
// (mlir-translate --mlir-to-cpp, or w4a4-compile) prints as model.cpp: one
// static function of calls into the runtime (w4a4/runtime/Compiled.h) with
// every shape, attribute and buffer offset a literal, the tables of the
// weights it reads (in weights.bin order) and of the quantized weights the
// runtime packs when the artifact opens, and the library's w4a4_open.
//
//===----------------------------------------------------------------------===//

#include "dialects/W4A4/W4A4Ops.h"
#include "dialects/W4A4/W4A4Utils.h"
#include "dialects/W4A4Kernel/W4A4KernelDialect.h"
#include "passes/Conversion/Passes.h"
#include "passes/Conversion/W4A4ToKernels/W4A4ToKernels.h"
#include "w4a4/runtime/CheckedMath.h"

#include "mlir/Dialect/EmitC/IR/EmitC.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/DialectResourceBlobManager.h"

#include <cinttypes>
#include <cstdio>
#include <map>

namespace mlir::w4a4 {
#define GEN_PASS_DEF_W4A4KTOEMITC
#include "passes/Conversion/Passes.h.inc"
} // namespace mlir::w4a4

using namespace mlir;
using namespace mlir::w4a4;

FailureOr<KernelWeights> mlir::w4a4::collectKernelWeights(func::FuncOp func) {
  KernelWeights out;
  bool failedWeight = false;
  func.walk([&](WeightOp w) {
    auto type = cast<RankedTensorType>(w.getType());
    ::w4a4::rt::WeightEntry e;
    e.name = w.getName().str();
    e.shape.assign(type.getShape().begin(), type.getShape().end());
    int64_t bytesPer = 0;
    if (type.getElementType().isF32()) {
      e.type = ::w4a4::rt::WeightType::F32;
      bytesPer = 4;
    } else if (type.getElementType().isInteger(8)) {
      e.type = ::w4a4::rt::WeightType::I8;
      bytesPer = 1;
    } else {
      w.emitError("w4a4-compile: weights must be f32 or i8, not ")
          << type.getElementType();
      failedWeight = true;
      return;
    }
    std::optional<int64_t> bytes = ::w4a4::checkedProduct(e.shape, bytesPer);
    if (e.shape.size() > 4) {
      w.emitError("w4a4-compile: weights of rank above 4 are not supported");
      failedWeight = true;
      return;
    }
    if (!type.hasStaticShape() || !bytes) {
      w.emitError("w4a4-compile: a weight needs a static shape");
      failedWeight = true;
      return;
    }
    e.bytes = static_cast<uint64_t>(*bytes);
    const void *data = nullptr;
    if (auto res = dyn_cast<DenseResourceElementsAttr>(w.getValue())) {
      AsmResourceBlob *blob = res.getRawHandle().getBlob();
      if (!blob || static_cast<int64_t>(blob->getData().size()) != *bytes) {
        w.emitError("w4a4-compile: the weight's blob is missing (elided?) or "
                    "does not match its type");
        failedWeight = true;
        return;
      }
      data = blob->getData().data();
    } else if (auto dense = dyn_cast<DenseIntOrFPElementsAttr>(w.getValue());
               dense && denseDataMatchesType(dense)) {
      ArrayRef<char> raw = dense.getRawData();
      if (dense.isSplat()) {
        std::vector<char> full(e.bytes);
        for (uint64_t i = 0; i < e.bytes; i += bytesPer)
          std::memcpy(full.data() + i, raw.data(), bytesPer);
        out.owned.push_back(std::move(full));
        data = out.owned.back().data();
      } else {
        data = raw.data();
      }
    } else {
      w.emitError("w4a4-compile: unsupported weight value");
      failedWeight = true;
      return;
    }
    out.index[w] = static_cast<int>(out.entries.size());
    out.entries.push_back(std::move(e));
    out.data.push_back(data);
  });
  if (failedWeight)
    return failure();
  return out;
}

namespace {

/// `s` as the inside of a C string literal: bytes outside a safe set as
/// octal escapes (weight names come from the model file).
std::string cString(StringRef s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '.' || c == '_' || c == '-' || c == ':' ||
        c == '/') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\%03o", c);
      out += buf;
    }
  }
  return out;
}

class Emitter {
public:
  Emitter(OpBuilder &b, Location loc, Value ctx, const KernelWeights &weights)
      : b(b), loc(loc), ctx(ctx), weights(weights) {
    MLIRContext *mc = b.getContext();
    fptr = emitc::PointerType::get(b.getF32Type());
    cfptr = emitc::PointerType::get(emitc::OpaqueType::get(mc, "const float"));
    idsPtr =
        emitc::PointerType::get(emitc::OpaqueType::get(mc, "const int64_t"));
  }

  /// `w4a4::cc::name(ctx, args...)`; integer attributes of index type in
  /// `args` name operands (0 is ctx).
  Value call(StringRef name, Type result, ValueRange operands,
             ArrayRef<Attribute> args) {
    SmallVector<Value> all{ctx};
    all.append(operands.begin(), operands.end());
    SmallVector<Attribute> a{b.getIndexAttr(0)};
    a.append(args.begin(), args.end());
    auto op = emitc::CallOpaqueOp::create(
        b, loc, result ? TypeRange(result) : TypeRange(),
        ("w4a4::cc::" + name).str(), all, b.getArrayAttr(a), ArrayAttr());
    return result ? op.getResult(0) : Value();
  }
  Attribute i64(int64_t v) { return b.getI64IntegerAttr(v); }
  Attribute f64(double v) { return b.getF64FloatAttr(v); }
  Attribute flag(bool v) {
    return emitc::OpaqueAttr::get(b.getContext(), v ? "true" : "false");
  }
  Attribute null() { return emitc::OpaqueAttr::get(b.getContext(), "nullptr"); }
  Attribute arg(unsigned i) { return b.getIndexAttr(i); }

  int64_t extraOf(Operation *op) {
    if (auto e = op->getAttrOfType<IntegerAttr>("w4a4k.seq_extra"))
      return e.getInt();
    return 0;
  }
  Value rows(int64_t extra) {
    Value &v = rowsCache[extra];
    if (!v)
      v = call("rows", b.getI64Type(), {}, {i64(extra)});
    return v;
  }
  Value seq(int64_t extra) {
    Value &v = seqCache[extra];
    if (!v)
      v = call("seq", b.getI64Type(), {}, {i64(extra)});
    return v;
  }
  /// The rows of a tail op (w4a4k.tail): the positions the call scores.
  Value scored() {
    if (!scoredValue)
      scoredValue = call("scoredRows", b.getI64Type(), {}, {});
    return scoredValue;
  }
  Value batch() {
    if (!batchValue)
      batchValue = call("batch", b.getI64Type(), {}, {});
    return batchValue;
  }

  /// The pointer a kernel reads as a row activation (sized by the call's
  /// rows): a kernel result or the ids, never a weight (fixed size).
  Value act(Value v) {
    if (v.getDefiningOp<WeightOp>() && !unsupported)
      unsupported = v;
    return ptr(v);
  }

  /// The pointer a kernel reads for `v`.
  Value ptr(Value v) {
    if (Value p = pointers.lookup(v))
      return p;
    Value p;
    if (auto w = v.getDefiningOp<WeightOp>())
      p = call("f32", cfptr, {},
               {b.getI32IntegerAttr(weights.index.lookup(w))});
    else if (auto arg = dyn_cast<BlockArgument>(v);
             arg && arg.getArgNumber() == 0 &&
             cast<RankedTensorType>(arg.getType())
                 .getElementType()
                 .isInteger(64))
      p = call("ids", idsPtr, {}, {});
    if (!p) {
      // Not a weight, the ids or a planned result (an arith.constant, say):
      // reported by the pass; a placeholder keeps the IR well formed.
      if (!unsupported)
        unsupported = v;
      p = call("f32", cfptr, {}, {b.getI32IntegerAttr(0)});
    }
    pointers[v] = p;
    return p;
  }
  Value unsupported;
  Operation *unplanned = nullptr;
  Operation *badPack = nullptr;

  /// The output of `op` as its plan says.
  Value output(Operation *op) {
    Value p;
    Attribute slot = op->getAttr("w4a4k.slot");
    if (isa_and_nonnull<StringAttr>(slot))
      p = call("result", fptr, {}, {});
    else if (auto s = dyn_cast_or_null<DenseI64ArrayAttr>(slot);
             s && s.size() == 2)
      p = call("slot", fptr, {}, {i64(s[0])});
    else {
      unplanned = op;
      p = call("slot", fptr, {}, {i64(0)});
    }
    pointers[op->getResult(0)] = p;
    return p;
  }

  int pack(w4a4k::QGemmOp q, SmallVectorImpl<std::string> &packs) {
    auto key = std::make_pair(q.getCodes().getDefiningOp(),
                              q.getScales().getDefiningOp());
    if (!q.getCodes().getDefiningOp<WeightOp>() ||
        !q.getScales().getDefiningOp<WeightOp>()) {
      badPack = q;
      return 0;
    }
    auto it = packIndex.find(key);
    if (it != packIndex.end())
      return it->second;
    int index = static_cast<int>(packs.size());
    packIndex[key] = index;
    packs.push_back("{" + std::to_string(weights.index.lookup(key.first)) +
                    ", " + std::to_string(weights.index.lookup(key.second)) +
                    ", " + std::to_string(q.getWeightBits()) + ", " +
                    std::to_string(q.getGroupSize()) + ", " +
                    std::to_string(q.getOutFeatures()) + ", " +
                    std::to_string(q.getInput().getType().getWidth()) + "}");
    return index;
  }

  OpBuilder &b;
  Location loc;
  Value ctx;
  const KernelWeights &weights;
  Type fptr, cfptr, idsPtr;
  llvm::DenseMap<Value, Value> pointers;
  std::map<int64_t, Value> rowsCache, seqCache;
  Value batchValue, scoredValue;
  std::map<std::pair<Operation *, Operation *>, int> packIndex;
};

int64_t width(Value v) {
  return cast<RankedTensorType>(v.getType()).getShape().back();
}

struct KernelsToEmitCPass
    : public mlir::w4a4::impl::W4A4KToEmitCBase<KernelsToEmitCPass> {
  using W4A4KToEmitCBase::W4A4KToEmitCBase;
  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto func = module.lookupSymbol<func::FuncOp>("forward");
    if (!func || !func->hasAttr("w4a4k.arena_width")) {
      module.emitError("--w4a4k-to-emitc: needs a @forward planned by "
                       "--w4a4k-plan-buffers");
      return signalPassFailure();
    }
    if (func.getNumArguments() != 1 || func.getNumResults() != 1 ||
        !cast<RankedTensorType>(func.getArgumentTypes()[0])
             .getElementType()
             .isInteger(64)) {
      func.emitError("--w4a4k-to-emitc: @forward must take token ids and "
                     "return logits (an export with KV-cache inputs needs "
                     "--w4a4-internalize-kv-cache first)");
      return signalPassFailure();
    }
    FailureOr<KernelWeights> weights = collectKernelWeights(func);
    if (failed(weights))
      return signalPassFailure();
    // The caller that wrote weights.bin passes its checksum; otherwise the
    // image is built here only to compute it.
    uint64_t checksum = 0;
    if (!weightsChecksum.empty()) {
      if (StringRef(weightsChecksum).getAsInteger(16, checksum)) {
        module.emitError("--w4a4k-to-emitc: weights-checksum '")
            << weightsChecksum << "' is not hexadecimal";
        return signalPassFailure();
      }
    } else {
      (void)::w4a4::rt::serializeWeights(weights->entries, weights->data,
                                         &checksum);
    }
    MLIRContext *mc = &getContext();
    OpBuilder b(mc);
    Location loc = func.getLoc();
    Block *top = module.getBody();
    b.setInsertionPointToEnd(top);
    emitc::IncludeOp::create(b, loc, "w4a4/runtime/Compiled.h");
    emitc::VerbatimOp::create(b, loc, "namespace {");
    auto ctxType = emitc::PointerType::get(
        emitc::OpaqueType::get(mc, "w4a4::cc::Context"));
    auto body = emitc::FuncOp::create(b, loc, "forward_body",
                                      b.getFunctionType({ctxType}, {}));
    body.setSpecifiersAttr(b.getStrArrayAttr({"static"}));
    Block *entry = body.addEntryBlock();
    b.setInsertionPointToStart(entry);
    Emitter e(b, loc, entry->getArgument(0), *weights);
    SmallVector<std::string> packs;
    bool failedOp = false;
    for (Operation &opRef : func.getBody().front()) {
      Operation *op = &opRef;
      if (isa<WeightOp>(op))
        continue;
      auto in = [&](unsigned i) { return e.ptr(op->getOperand(i)); };
      auto act = [&](unsigned i) { return e.act(op->getOperand(i)); };
      auto opt = [&](Value v, SmallVectorImpl<Value> &ops) -> Attribute {
        if (!v)
          return e.null();
        ops.push_back(e.ptr(v));
        return e.arg(ops.size());
      };
      int64_t x = e.extraOf(op);
      auto rowsOf = [&] {
        return op->hasAttr("w4a4k.tail") ? e.scored() : e.rows(x);
      };
      if (auto k = dyn_cast<w4a4k::EmbeddingOp>(op)) {
        auto t = cast<RankedTensorType>(k.getTable().getType());
        Value out = e.output(op);
        e.call("embedding", {},
               {e.ptr(k.getTable()), e.ptr(k.getIds()), rowsOf(), out},
               {e.arg(1), e.i64(t.getShape()[0]), e.i64(t.getShape()[1]),
                e.arg(2), e.arg(3), e.arg(4)});
      } else if (auto k = dyn_cast<w4a4k::RMSNormOp>(op)) {
        SmallVector<Value> ops{act(0)};
        Attribute gain = opt(k.getGain(), ops);
        ops.push_back(rowsOf());
        unsigned rowsArg = ops.size();
        ops.push_back(e.output(op));
        e.call("rmsNorm", {}, ops,
               {e.arg(1), gain, e.arg(rowsArg), e.i64(width(k.getInput())),
                e.f64(k.getEpsilon().convertToDouble()), e.arg(rowsArg + 1)});
      } else if (auto k = dyn_cast<w4a4k::GemmOp>(op)) {
        SmallVector<Value> ops{act(0), in(1)};
        Attribute bias = opt(k.getBias(), ops);
        ops.push_back(rowsOf());
        unsigned rowsArg = ops.size();
        ops.push_back(e.output(op));
        e.call("gemm", {}, ops,
               {e.arg(1), e.arg(2), bias, e.arg(rowsArg),
                e.i64(width(k.getInput())), e.i64(width(k.getResult())),
                e.arg(rowsArg + 1)});
      } else if (auto k = dyn_cast<w4a4k::QuantizeOp>(op)) {
        auto qslot = op->getAttrOfType<IntegerAttr>("w4a4k.qslot");
        if (!qslot) {
          e.unplanned = op;
          continue;
        }
        int64_t slot = qslot.getInt();
        e.call("quantize", {}, {act(0), rowsOf()},
               {e.i64(slot), e.arg(1), e.arg(2), e.i64(k.getType().getWidth()),
                e.i64(k.getType().getBits()),
                e.f64(k.getClipRatio().convertToDouble())});
      } else if (auto k = dyn_cast<w4a4k::QGemmOp>(op)) {
        Operation *producer = k.getInput().getDefiningOp();
        auto qslot = producer
                         ? producer->getAttrOfType<IntegerAttr>("w4a4k.qslot")
                         : IntegerAttr();
        if (!qslot) {
          e.unplanned = op;
          continue;
        }
        int64_t slot = qslot.getInt();
        SmallVector<Value> ops;
        Attribute bias = opt(k.getBias(), ops);
        Attribute residual = opt(k.getResidual(), ops);
        ops.push_back(rowsOf());
        unsigned rowsArg = ops.size();
        ops.push_back(e.output(op));
        e.call("qgemm", {}, ops,
               {e.i64(slot), b.getI32IntegerAttr(e.pack(k, packs)), bias,
                residual, e.arg(rowsArg), e.arg(rowsArg + 1)});
      } else if (auto k = dyn_cast<w4a4k::RMSNormQuantizeOp>(op)) {
        auto qslot = op->getAttrOfType<IntegerAttr>("w4a4k.qslot");
        if (!qslot) {
          e.unplanned = op;
          continue;
        }
        SmallVector<Value> ops{act(0)};
        Attribute gain = opt(k.getGain(), ops);
        ops.push_back(rowsOf());
        e.call("rmsNormQuantize", {}, ops,
               {e.i64(qslot.getInt()), e.arg(1), gain, e.arg(ops.size()),
                e.i64(width(k.getInput())),
                e.f64(k.getEpsilon().convertToDouble()),
                e.i64(k.getType().getBits()),
                e.f64(k.getClipRatio().convertToDouble())});
      } else if (auto k = dyn_cast<w4a4k::SwiGLUQuantizeOp>(op)) {
        auto qslot = op->getAttrOfType<IntegerAttr>("w4a4k.qslot");
        if (!qslot) {
          e.unplanned = op;
          continue;
        }
        SmallVector<Value> ops{act(0), act(1)};
        Attribute signs = opt(k.getSigns(), ops);
        ops.push_back(rowsOf());
        e.call("swigluQuantize", {}, ops,
               {e.i64(qslot.getInt()), e.arg(1), e.arg(2), e.arg(ops.size()),
                e.i64(width(k.getGate())), e.i64(k.getHadamardSize()), signs,
                e.flag(k.getHadamardInverse()), e.i64(k.getHadamardStride()),
                e.i64(k.getType().getBits()),
                e.f64(k.getClipRatio().convertToDouble())});
      } else if (auto k = dyn_cast<w4a4k::TailRowsOp>(op)) {
        Value bt = e.batch(), sq = e.seq(x);
        e.call("tailRows", {}, {act(0), bt, sq, e.output(op)},
               {e.arg(1), e.arg(2), e.arg(3), e.i64(width(k.getInput())),
                e.arg(4)});
      } else if (auto k = dyn_cast<w4a4k::FakeQuantOp>(op)) {
        Value rows = rowsOf();
        e.call("fakeQuant", {}, {act(0), rows, e.output(op)},
               {e.arg(1), e.arg(2), e.i64(width(k.getInput())),
                e.i64(k.getBits()), e.f64(k.getClipRatio().convertToDouble()),
                e.i64(k.getGroup()), e.arg(3)});
      } else if (auto k = dyn_cast<w4a4k::RoPEOp>(op)) {
        int64_t hd = k.getHeadDim();
        Value bt = e.batch(), sq = e.seq(x);
        e.call("rope", {}, {act(0), bt, sq, e.output(op)},
               {e.arg(1), e.arg(2), e.arg(3), e.i64(width(k.getInput()) / hd),
                e.i64(hd), e.f64(k.getTheta().convertToDouble()),
                e.i64(k.getPositionOffset()), e.flag(k.getInterleaved()),
                e.arg(4)});
      } else if (auto k = dyn_cast<w4a4k::AttentionOp>(op)) {
        SmallVector<Value> ops{act(0), act(1), act(2)};
        Attribute kp = opt(k.getKeyPrefix(), ops);
        Attribute vp = opt(k.getValuePrefix(), ops);
        int64_t prefix =
            k.getKeyPrefix()
                ? cast<RankedTensorType>(k.getKeyPrefix().getType())
                      .getShape()[0]
                : 0;
        ops.push_back(e.batch());
        unsigned bArg = ops.size();
        ops.push_back(e.seq(x));
        ops.push_back(e.output(op));
        e.call("attention", {}, ops,
               {e.i64(k.getCacheLayer() ? int64_t(*k.getCacheLayer()) : -1),
                e.arg(1), e.arg(2), e.arg(3), kp, vp, e.i64(prefix),
                e.arg(bArg), e.arg(bArg + 1), e.i64(k.getNumHeads()),
                e.i64(k.getNumKvHeads()), e.i64(k.getHeadDim()),
                e.f64(k.getScale().convertToDouble()), e.arg(bArg + 2)});
      } else if (isa<w4a4k::SwiGLUOp, w4a4k::AddOp>(op)) {
        e.call(isa<w4a4k::AddOp>(op) ? "add" : "swiglu", {},
               {act(0), act(1), rowsOf(), e.output(op)},
               {e.arg(1), e.arg(2), e.arg(3), e.i64(width(op->getResult(0))),
                e.arg(4)});
      } else if (auto k = dyn_cast<w4a4k::HadamardOp>(op)) {
        SmallVector<Value> ops{act(0)};
        Attribute signs = opt(k.getSigns(), ops);
        ops.push_back(rowsOf());
        unsigned rowsArg = ops.size();
        ops.push_back(e.output(op));
        e.call("hadamard", {}, ops,
               {e.arg(1), e.arg(rowsArg), e.i64(width(k.getInput())),
                e.i64(k.getSize()), signs, e.flag(k.getInverse()),
                e.i64(k.getStride()), e.arg(rowsArg + 1)});
      } else if (auto k = dyn_cast<w4a4k::RegistersOp>(op)) {
        int mode = k.getMode() == "prepend" ? 0 : k.getMode() == "add" ? 1 : 2;
        int64_t inExtra = k.getInput().getDefiningOp()
                              ? e.extraOf(k.getInput().getDefiningOp())
                              : 0;
        auto regs = cast<RankedTensorType>(k.getRegisters().getType());
        Value bt = e.batch(), sq = e.seq(inExtra);
        e.call("registers", {}, {act(0), in(1), bt, sq, e.output(op)},
               {b.getI32IntegerAttr(mode), e.arg(1), e.arg(2), e.arg(3),
                e.arg(4), e.i64(regs.getShape()[0]), e.i64(regs.getShape()[1]),
                e.arg(5)});
      } else if (isa<func::ReturnOp>(op)) {
        emitc::ReturnOp::create(b, loc, Value());
      } else {
        op->emitError("--w4a4k-to-emitc: no runtime call for this op");
        failedOp = true;
      }
    }
    if (e.unplanned) {
      e.unplanned->emitError("--w4a4k-to-emitc: not planned (run "
                             "--w4a4k-plan-buffers first)");
      failedOp = true;
    }
    if (e.badPack) {
      e.badPack->emitError("--w4a4k-to-emitc: integer weights must be "
                           "w4a4.weight codes and scales");
      failedOp = true;
    }
    if (e.unsupported) {
      Operation *def = e.unsupported.getDefiningOp();
      (def ? def->emitError() : func.emitError())
          << "--w4a4k-to-emitc: a kernel reads a value that is neither a "
             "w4a4.weight (as a parameter), the ids nor a kernel's result";
      failedOp = true;
    }
    if (failedOp)
      return signalPassFailure();

    // The tables and the library's entry point.
    b.setInsertionPointToEnd(top);
    std::string tables = "const w4a4::cc::TensorSpec kTensors[] = {\n";
    for (const auto &t : weights->entries) {
      tables += "  {\"" + cString(t.name) + "\", " +
                std::to_string(static_cast<int>(t.type)) + ", " +
                std::to_string(t.shape.size()) + ", {";
      for (size_t i = 0; i < t.shape.size(); ++i)
        tables += (i ? ", " : "") + std::to_string(t.shape[i]);
      if (t.shape.empty())
        tables += "0"; // "{}" would be an EmitC format placeholder
      tables += "}},\n";
    }
    tables += "};\n";
    tables += "const w4a4::cc::PackSpec kPacks[] = {\n";
    for (const std::string &p : packs)
      tables += "  " + p + ",\n";
    if (packs.empty())
      tables += "  {0, 0, 0, 0, 0, 0},\n";
    tables += "};\n";
    auto resultType = cast<RankedTensorType>(func.getResultTypes()[0]);
    auto argType = cast<RankedTensorType>(func.getArgumentTypes()[0]);
    int64_t batchDim = ShapedType::isDynamic(argType.getShape()[0])
                           ? -1
                           : argType.getShape()[0];
    // The positions a call uses beyond its tokens: a register prefix still
    // prepended, and the largest RoPE offset (a folded prefix).
    int64_t maxTokens = 0;
    if (auto mp = module->getAttrOfType<IntegerAttr>("w4a4.max_positions")) {
      int64_t used =
          func->getAttrOfType<IntegerAttr>("w4a4k.max_seq_extra").getInt();
      int64_t offset = 0;
      func.walk([&](w4a4k::RoPEOp r) {
        offset = std::max<int64_t>(offset, r.getPositionOffset());
      });
      maxTokens = mp.getInt() - used - offset;
      if (maxTokens <= 0) {
        module.emitError("--w4a4k-to-emitc: w4a4.max_positions ")
            << mp.getInt() << " leaves no position for tokens";
        return signalPassFailure();
      }
    }
    int64_t cacheLayers = 0;
    func.walk([&](w4a4k::AttentionOp a) {
      if (a.getCacheLayer())
        cacheLayers =
            std::max<int64_t>(cacheLayers, int64_t(*a.getCacheLayer()) + 1);
    });
    bool perCall = func->hasAttr("w4a4k.per_call_registers");
    bool rowTail = false;
    func.walk([&](w4a4k::TailRowsOp) { rowTail = true; });
    char sum[32];
    std::snprintf(sum, sizeof sum, "0x%016" PRIx64 "ull", checksum);
    tables +=
        std::string("const w4a4::cc::ModelSpec kSpec = {\n  ") + sum +
        ", kTensors, " + std::to_string(weights->entries.size()) +
        ", kPacks, " + std::to_string(packs.size()) + ",\n  " +
        std::to_string(
            func->getAttrOfType<IntegerAttr>("w4a4k.arena_width").getInt()) +
        ", " +
        std::to_string(
            func->getAttrOfType<IntegerAttr>("w4a4k.max_seq_extra").getInt()) +
        ", " +
        std::to_string(
            func->getAttrOfType<IntegerAttr>("w4a4k.qrows_slots").getInt()) +
        ",\n  " + std::to_string(resultType.getShape().back()) + ", " +
        std::to_string(batchDim) + ", " + std::to_string(maxTokens) + ", " +
        std::to_string(cacheLayers) + ", " + (perCall ? "1" : "0") + ", " +
        (rowTail ? "1" : "0") + ", forward_body};\n";
    tables += "} // namespace\n";
    tables += "extern \"C\" w4a4_model *w4a4_open(const char *dir, char *err, "
              "size_t err_len) {\n  return w4a4::cc::open(&kSpec, dir, err, "
              "err_len);\n}";
    emitc::VerbatimOp::create(b, loc, tables);
    func.erase();
    // Module attributes stay (they record the model); they do not print.
  }
};

} // namespace
