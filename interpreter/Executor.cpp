//===- Executor.cpp - run w4a4 IR through the runtime kernels -------------===//

#include "interpreter/Executor.h"

#include "dialects/W4A4/W4A4Ops.h"
#include "dialects/W4A4/W4A4Utils.h"
#include "w4a4/runtime/CheckedMath.h"
#include "w4a4/runtime/Hadamard.h"
#include "w4a4/runtime/IntGemm.h"
#include "w4a4/runtime/Kernels.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/FormatVariadic.h"

#include <cmath>
#include <map>
#include <tuple>

using namespace mlir;
using namespace mlir::w4a4;
namespace rt = ::w4a4::rt;

int64_t HostTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

HostTensor HostTensor::zerosF32(std::vector<int64_t> shape) {
  HostTensor t;
  t.shape = std::move(shape);
  t.owned = std::make_shared<std::vector<float>>(t.numel());
  t.f32 = t.owned->data();
  return t;
}

static std::string debugString(Type t) {
  std::string s;
  llvm::raw_string_ostream os(s);
  t.print(os);
  return s;
}

static llvm::Error opError(Operation *op, const llvm::Twine &message) {
  std::string loc;
  llvm::raw_string_ostream os(loc);
  op->getLoc().print(os);
  return llvm::createStringError(llvm::formatv(
      "{0}: '{1}': {2}", loc, op->getName().getStringRef(), message.str()));
}

llvm::Expected<std::unique_ptr<Executor>>
Executor::create(ModuleOp module, StringRef entry,
                 std::shared_ptr<rt::Device> device) {
  auto func = module.lookupSymbol<func::FuncOp>(entry);
  if (!func || func.isExternal())
    return llvm::createStringError("no function @" + entry.str() +
                                   " with a body in the module");
  if (func.getNumArguments() < 1 || func.getNumResults() < 1)
    return llvm::createStringError("@" + entry.str() +
                                   " must take token ids and return logits");
  std::unique_ptr<Executor> ex(new Executor());
  ex->func = func;
  // Inputs: token ids first; then integer [batch, seq] positions and fp32
  // [batch, kv_heads, past, head_dim] KV-cache pasts with static heads and
  // head_dim.
  for (BlockArgument arg : func.getArguments()) {
    auto t = dyn_cast<RankedTensorType>(arg.getType());
    bool integer = t && isa<IntegerType>(t.getElementType());
    std::string which =
        "@" + entry.str() + " input " + std::to_string(arg.getArgNumber());
    if (arg.getArgNumber() == 0) {
      if (!integer || t.getRank() != 2)
        return llvm::createStringError(which +
                                       " must be token ids [batch, seq]");
      ex->kinds.push_back(InputKind::Ids);
    } else if (integer && t.getRank() == 2) {
      ex->kinds.push_back(InputKind::Positions);
    } else if (t && t.getElementType().isF32() && t.getRank() == 4 &&
               !t.isDynamicDim(1) && !t.isDynamicDim(3)) {
      ex->kinds.push_back(InputKind::Past);
    } else {
      return llvm::createStringError(
          which + " is neither position ids [batch, seq] nor a KV-cache past "
                  "[batch, kv_heads, past, head_dim] of fp32 with static "
                  "kv_heads and head_dim");
    }
  }
  ex->device = device ? std::move(device) : rt::createCpuDevice();
  if (!ex->device->isHost())
    return llvm::createStringError(
        "the executor keeps weights and observed values in host memory; "
        "device '" +
        ex->device->name() + "' is not host-visible");
  // The kernels compute in fp32: any other float type (f16 or bf16 weights
  // or activations, which the op types allow) is refused here, before a
  // kernel could read it as fp32.
  for (Operation &op : func.getBody().front())
    for (Value v : llvm::concat<Value>(op.getOperands(), op.getResults()))
      if (auto t = dyn_cast<RankedTensorType>(v.getType()))
        if (isa<FloatType>(t.getElementType()) && !t.getElementType().isF32())
          return opError(&op, "element type " +
                                  debugString(t.getElementType()) +
                                  " is not supported by the executor (its "
                                  "kernels are fp32)");
  for (Operation &op : func.getBody().front()) {
    Attribute value;
    if (op.use_empty())
      continue; // an unused constant is never materialised
    if (auto w = dyn_cast<WeightOp>(op))
      value = w.getValue();
    else if (auto c = dyn_cast<arith::ConstantOp>(op))
      value = c.getValue();
    else
      continue;
    auto t = ex->constant(&op, value);
    if (!t)
      return t.takeError();
    ex->constants[&op] = std::move(*t);
  }
  for (Operation &op : func.getBody().front())
    if (isa<QLinearOp>(op))
      if (llvm::Error e = ex->prepareQLinear(&op))
        return std::move(e);
  // The row-wise tail, found backwards from the return.
  for (Operation &op : llvm::reverse(func.getBody().front())) {
    if (!isa<RMSNormOp, LinearOp, QLinearOp, AddOp, SwiGLUOp, HadamardOp,
             QuantizeOp>(op))
      continue;
    bool onlyTail = llvm::all_of(op.getUsers(), [&](Operation *user) {
      return isa<func::ReturnOp>(user) || ex->tail.contains(user);
    });
    if (onlyTail && !op.use_empty())
      ex->tail.insert(&op);
  }
  return ex;
}

llvm::Error Executor::prepareQLinear(Operation *op) {
  auto q = cast<QLinearOp>(op);
  auto codesOp = q.getWeightCodes().getDefiningOp<WeightOp>();
  auto scalesOp = q.getWeightScales().getDefiningOp<WeightOp>();
  if (!codesOp || !scalesOp)
    return opError(op, "expects weight codes and scales from w4a4.weight ops");
  ArrayRef<char> raw;
  std::vector<char> owned;
  if (auto res = dyn_cast<DenseResourceElementsAttr>(codesOp.getValue())) {
    if (!res.getRawHandle().getBlob())
      return opError(op, "weight codes are missing (elided dense_resource?)");
    raw = res.getRawHandle().getBlob()->getData();
  } else if (auto dense = dyn_cast<DenseIntElementsAttr>(codesOp.getValue())) {
    if (!denseDataMatchesType(dense))
      return opError(op, "weight codes hold less data than their type needs");
    if (dense.getNumElements() > (int64_t(1) << 34))
      return opError(op, "weight codes too large to materialise");
    for (const APInt &v : dense.getValues<APInt>())
      owned.push_back(static_cast<char>(v.getSExtValue()));
    raw = owned;
  } else {
    return opError(op, "unsupported weight code constant");
  }
  const HostTensor &scales = constants[scalesOp];
  int64_t out = codesOp.getType().getDimSize(0);
  int64_t in = q.getInput().getType().getShape().back();
  int64_t bits = q.getWeightBits();
  int64_t perByte = (bits == 2 || bits == 4) ? 8 / bits : 1;
  int64_t group = q.getGroupSize();
  if (ShapedType::isDynamic(in) || in <= 0 || out <= 0 || group < 0 ||
      (group > 0 && in % group))
    return opError(op, "needs a static input width that the group size "
                       "divides");
  // The code blob and the scales hold what the shapes say (a blob shorter
  // than its type would be read past its end).
  std::optional<int64_t> codeBytes =
      ::w4a4::checkedMul(out, (in + perByte - 1) / perByte);
  std::optional<int64_t> scaleCount =
      ::w4a4::checkedMul(out, group ? in / group : 1);
  if (!codeBytes || static_cast<int64_t>(raw.size()) != *codeBytes)
    return opError(op, "weight codes hold " + std::to_string(raw.size()) +
                           " bytes; [" + std::to_string(out) + ", " +
                           std::to_string(in) + "] at " + std::to_string(bits) +
                           " bits needs " +
                           std::to_string(codeBytes.value_or(-1)));
  if (!scaleCount || !scales.f32 || scales.numel() != *scaleCount)
    return opError(op, "weight scales hold " + std::to_string(scales.numel()) +
                           " values; the codes need " +
                           std::to_string(scaleCount.value_or(-1)));
  auto w = std::make_shared<rt::PackedWeights>();
  rt::Status s =
      rt::packWeights(reinterpret_cast<const int8_t *>(raw.data()), scales.f32,
                      out, in, q.getWeightBits(), q.getGroupSize(), *w);
  if (!s.ok())
    return opError(op, s.message());
  packed[op] = w;
  // Dequantized weights for floating-point activations (act_bits = 0, the
  // only reader): weights stay packed otherwise.
  if (q.getActBits() != 0)
    return llvm::Error::success();
  HostTensor deq = HostTensor::zerosF32({out, in});
  int64_t glen = w->group ? w->group : in;
  for (int64_t o = 0; o < out; ++o)
    for (int64_t i = 0; i < in; ++i)
      deq.mutableF32()[o * in + i] = static_cast<float>(w->code(o, i)) *
                                     w->scales[o * w->groups + i / glen];
  dequantized[op] = std::move(deq);
  return llvm::Error::success();
}

llvm::Expected<HostTensor> Executor::constant(Operation *op, Attribute value) {
  auto elements = dyn_cast<ElementsAttr>(value);
  auto type =
      elements ? dyn_cast<RankedTensorType>(elements.getType()) : nullptr;
  if (!type)
    return opError(op, "expects a ranked tensor constant");
  HostTensor t;
  t.shape.assign(type.getShape().begin(), type.getShape().end());
  std::optional<int64_t> bytes = ::w4a4::checkedProduct(t.shape, 4);
  if (!bytes)
    return opError(op, "constant of " + debugString(type) +
                           " has more elements than fit in 64 bits");
  if (!type.getElementType().isF32()) {
    // Integer constants (shape arithmetic) are unused by raised IR; anything
    // else the kernels cannot take.
    return t;
  }
  if (auto res = dyn_cast<DenseResourceElementsAttr>(value)) {
    AsmResourceBlob *blob = res.getRawHandle().getBlob();
    if (!blob)
      return opError(op, "weight data is missing (elided dense_resource?)");
    ArrayRef<char> raw = blob->getData();
    if (static_cast<int64_t>(raw.size()) != *bytes)
      return opError(op, "weight blob has " + std::to_string(raw.size()) +
                             " bytes; its type " + debugString(type) +
                             " needs " + std::to_string(*bytes));
    t.f32 = reinterpret_cast<const float *>(raw.data());
  } else if (auto dense = dyn_cast<DenseFPElementsAttr>(value)) {
    if (!denseDataMatchesType(dense))
      return opError(op, "a dense constant of " + debugString(type) +
                             " holds less data than its type needs");
    if (*bytes > (int64_t(1) << 34))
      return opError(op, "a dense constant of " + debugString(type) +
                             " is too large to materialise (16 GiB limit; "
                             "store weights as dense_resource blobs)");
    t.owned = std::make_shared<std::vector<float>>();
    for (const APFloat &x : dense.getValues<APFloat>())
      t.owned->push_back(x.convertToFloat());
    t.f32 = t.owned->data();
  } else {
    return opError(op, "unsupported constant kind");
  }
  for (int64_t i = 0, n = t.numel(); i < n; ++i)
    if (!std::isfinite(t.f32[i]))
      return opError(op, "weight holds NaN or infinity at element " +
                             std::to_string(i));
  return t;
}

namespace {
std::string shapeString(const std::vector<int64_t> &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}
std::vector<int64_t> withLast(std::vector<int64_t> shape, int64_t last) {
  shape.back() = last;
  return shape;
}
int64_t rowsOf(const HostTensor &t) { return t.numel() / t.shape.back(); }
} // namespace

std::pair<int64_t, int64_t> Executor::pastDims(unsigned i) const {
  auto t =
      cast<RankedTensorType>(cast<func::FuncOp>(func).getArgument(i).getType());
  return {t.getDimSize(1), t.getDimSize(3)};
}

llvm::Expected<std::vector<HostTensor>>
Executor::inputsFor(const std::vector<int64_t> &ids, int64_t batch, int64_t seq,
                    const std::vector<HostTensor> &presents) const {
  if (seq < 0 || batch < 0 || static_cast<int64_t>(ids.size()) != batch * seq)
    return llvm::createStringError("expected " + std::to_string(batch * seq) +
                                   " token ids");
  size_t pasts = llvm::count(kinds, InputKind::Past);
  if (!presents.empty() && presents.size() != pasts)
    return llvm::createStringError(
        "the KV cache has " + std::to_string(presents.size()) +
        " tensors; the model takes " + std::to_string(pasts));
  int64_t past = presents.empty() ? 0 : presents[0].shape[2];
  std::vector<HostTensor> in;
  size_t nextPast = 0;
  for (size_t i = 0; i < kinds.size(); ++i) {
    HostTensor t;
    t.shape = {batch, seq};
    if (kinds[i] == InputKind::Ids) {
      t.ids = std::make_shared<std::vector<int64_t>>(ids);
    } else if (kinds[i] == InputKind::Positions) {
      t.ids = std::make_shared<std::vector<int64_t>>(batch * seq);
      for (int64_t j = 0; j < batch * seq; ++j)
        (*t.ids)[j] = past + j % seq;
    } else if (!presents.empty()) {
      t = presents[nextPast++];
    } else {
      auto [heads, dim] = pastDims(i);
      t = HostTensor::zerosF32({batch, heads, 0, dim});
    }
    in.push_back(std::move(t));
  }
  return in;
}

llvm::Expected<HostTensor>
Executor::run(const std::vector<int64_t> &ids, int64_t batch, int64_t seq,
              llvm::function_ref<void(Value, const HostTensor &)> observe) {
  auto in = inputsFor(ids, batch, seq);
  if (!in)
    return in.takeError();
  auto out = execute(*in, observe, -1, -1);
  if (!out)
    return out.takeError();
  return std::move((*out)[0]);
}

llvm::Expected<std::vector<HostTensor>>
Executor::runAll(const std::vector<HostTensor> &inputs,
                 llvm::function_ref<void(Value, const HostTensor &)> observe) {
  return execute(inputs, observe, -1, -1);
}

llvm::Expected<HostTensor> Executor::runRows(const std::vector<int64_t> &ids,
                                             int64_t batch, int64_t seq,
                                             int64_t begin, int64_t end) {
  if (begin < 0 || end < begin || end > seq)
    return llvm::createStringError(
        "rows [" + std::to_string(begin) + ", " + std::to_string(end) +
        ") are outside the sequence of " + std::to_string(seq));
  auto in = inputsFor(ids, batch, seq);
  if (!in)
    return in.takeError();
  auto out = execute(*in, {}, begin, end);
  if (!out)
    return out.takeError();
  return std::move((*out)[0]);
}

/// Positions [begin, end) of a [batch, seq, ...] tensor.
static HostTensor slicePositions(const HostTensor &t, int64_t begin,
                                 int64_t end) {
  int64_t inner = t.numel() / (t.shape[0] * t.shape[1]);
  HostTensor s;
  s.shape = t.shape;
  s.shape[1] = end - begin;
  s.owned = std::make_shared<std::vector<float>>(s.numel());
  for (int64_t b = 0; b < t.shape[0]; ++b)
    std::copy(t.f32 + (b * t.shape[1] + begin) * inner,
              t.f32 + (b * t.shape[1] + end) * inner,
              s.owned->data() + b * (end - begin) * inner);
  s.f32 = s.owned->data();
  return s;
}

llvm::Expected<std::vector<HostTensor>>
Executor::execute(const std::vector<HostTensor> &inputs,
                  llvm::function_ref<void(Value, const HostTensor &)> observe,
                  int64_t begin, int64_t end) {
  auto f = cast<func::FuncOp>(func);
  bool rows = begin >= 0;
  if (inputs.size() != kinds.size())
    return llvm::createStringError(
        "@forward takes " + std::to_string(kinds.size()) + " inputs, got " +
        std::to_string(inputs.size()));
  // Every input is checked against what the function expects: ids and
  // positions [batch, seq] with data, pasts [batch, kv_heads, past,
  // head_dim] of one past length.
  if (inputs[0].shape.size() != 2 || !inputs[0].ids ||
      static_cast<int64_t>(inputs[0].ids->size()) != inputs[0].numel() ||
      inputs[0].shape[0] < 0 || inputs[0].shape[1] < 0)
    return llvm::createStringError("input 0: expected token ids [batch, seq]");
  int64_t batch = inputs[0].shape[0], seq = inputs[0].shape[1], past = -1;
  for (size_t i = 1; i < inputs.size(); ++i) {
    const HostTensor &t = inputs[i];
    std::string which = "input " + std::to_string(i) + ": ";
    if (kinds[i] == InputKind::Positions) {
      if (t.shape != std::vector<int64_t>{batch, seq} || !t.ids ||
          static_cast<int64_t>(t.ids->size()) != batch * seq)
        return llvm::createStringError(which + "expected position ids [" +
                                       std::to_string(batch) + ", " +
                                       std::to_string(seq) + "]");
      for (int64_t p : *t.ids)
        if (p < 0 || p > (int64_t(1) << 40))
          return llvm::createStringError(
              which + "position " + std::to_string(p) + " is out of range");
      continue;
    }
    auto [heads, dim] = pastDims(i);
    if (t.shape.size() != 4 || t.shape[0] != batch || t.shape[1] != heads ||
        t.shape[3] != dim || t.shape[2] < 0 || (t.numel() && !t.f32) ||
        (past >= 0 && t.shape[2] != past))
      return llvm::createStringError(
          which + "expected a KV-cache past [" + std::to_string(batch) + ", " +
          std::to_string(heads) + ", " +
          (past >= 0 ? std::to_string(past) : std::string("past")) + ", " +
          std::to_string(dim) + "] of fp32");
    past = t.shape[2];
  }
  // Static dimensions of the function's argument types hold too.
  for (size_t i = 0; i < inputs.size(); ++i) {
    auto t = cast<RankedTensorType>(f.getArgument(i).getType());
    bool ok = static_cast<int64_t>(inputs[i].shape.size()) == t.getRank();
    for (int64_t d = 0; ok && d < t.getRank(); ++d)
      ok = t.isDynamicDim(d) || t.getDimSize(d) == inputs[i].shape[d];
    if (!ok) {
      std::string got;
      for (int64_t d : inputs[i].shape)
        got += (got.empty() ? "" : "x") + std::to_string(d);
      return llvm::createStringError(
          "input " + std::to_string(i) + " is [" + got +
          "] but @forward's argument type is " + debugString(t));
    }
  }
  llvm::DenseMap<Value, HostTensor> env;
  for (size_t i = 0; i < inputs.size(); ++i)
    env[f.getArgument(i)] = inputs[i];

  // Quantized activations, shared by the qlinears reading one input with the
  // same bits and clip (q/k/v, w1/w3): quantized once per run.
  std::map<std::tuple<void *, int64_t, double, bool>,
           std::shared_ptr<rt::QuantizedRows>>
      quantizedInputs;

  // Last use of every value, to free activations early.
  llvm::DenseMap<Value, Operation *> lastUse;
  for (Operation &op : f.getBody().front())
    for (Value v : op.getOperands())
      lastUse[v] = &op;

  rt::Stream &stream = device->defaultStream();
  // An output tensor in device memory (the CPU device's is host memory).
  bool outOfMemory = false;
  auto alloc = [&](std::vector<int64_t> shape) {
    HostTensor t;
    t.shape = std::move(shape);
    std::optional<int64_t> bytes =
        ::w4a4::checkedProduct(t.shape, sizeof(float));
    if (!bytes) {
      outOfMemory = true; // reported as out of memory by TRY
      t.shape.assign(t.shape.size(), 0);
      return t;
    }
    t.buffer = device->allocate(*bytes, /*zeroFill=*/false);
    t.f32 = t.buffer ? t.buffer->f32() : nullptr;
    outOfMemory |= !t.buffer;
    return t;
  };
#define TRY(status)                                                            \
  do {                                                                         \
    if (outOfMemory)                                                           \
      return opError(op, "out of device memory");                              \
    rt::Status tryStatus = (status);                                           \
    if (!tryStatus.ok())                                                       \
      return opError(op, tryStatus.message());                                 \
  } while (false)

  // With rows requested, the tail reads its operands from outside the tail
  // sliced to those positions (once per value). The output's positions are
  // the token positions: an operand with another sequence length (a
  // register prefix still attached) is used whole and sliced at the return.
  llvm::DenseMap<Value, HostTensor> sliced;
  auto sliceable = [&](const HostTensor &t) {
    return t.f32 && t.shape.size() >= 3 && t.shape[0] == batch &&
           t.shape[1] == seq;
  };
  for (Operation &opRef : f.getBody().front()) {
    Operation *op = &opRef;
    bool inTail = rows && tail.contains(op);
    // Results after the first (an attention's present keys / values).
    std::vector<HostTensor> more;
    auto get = [&](Value v) -> HostTensor & {
      HostTensor &t = env[v];
      if (!inTail || !v.getDefiningOp() || tail.contains(v.getDefiningOp()) ||
          isa<WeightOp, arith::ConstantOp>(v.getDefiningOp()) || !sliceable(t))
        return t;
      auto it = sliced.find(v);
      if (it == sliced.end())
        it = sliced.try_emplace(v, slicePositions(t, begin, end)).first;
      return it->second;
    };
    llvm::Expected<HostTensor> result =
        llvm::TypeSwitch<Operation *, llvm::Expected<HostTensor>>(op)
            .Case<WeightOp, arith::ConstantOp>(
                [&](auto) -> llvm::Expected<HostTensor> {
                  return constants.lookup(op);
                })
            .Case<EmbeddingOp>(
                [&](EmbeddingOp e) -> llvm::Expected<HostTensor> {
                  HostTensor &table = get(e.getTable()), &in = get(e.getIds());
                  if (!in.ids)
                    return opError(op, "expects integer ids");
                  if (table.shape.size() != 2 || !table.f32)
                    return opError(op, "expects an fp32 table [vocab, hidden]");
                  auto shape = in.shape;
                  shape.push_back(table.shape[1]);
                  HostTensor out = alloc(shape);
                  TRY(device->embedding(stream, table.f32, table.shape[0],
                                        table.shape[1], in.ids->data(),
                                        in.numel(), out.mutableF32()));
                  return out;
                })
            .Case<RMSNormOp>([&](RMSNormOp n) -> llvm::Expected<HostTensor> {
              HostTensor &x = get(n.getInput());
              if (x.shape.empty() ||
                  (n.getGain() && get(n.getGain()).numel() != x.shape.back()))
                return opError(op, "the gain's length differs from the "
                                   "input's width " +
                                       shapeString(x.shape) + " at run time");
              HostTensor out = alloc(x.shape);
              const float *gain = n.getGain() ? get(n.getGain()).f32 : nullptr;
              TRY(device->rmsNorm(
                  stream, x.f32, gain, rowsOf(x), x.shape.back(),
                  n.getEpsilon().convertToDouble(), out.mutableF32()));
              return out;
            })
            .Case<LinearOp>([&](LinearOp l) -> llvm::Expected<HostTensor> {
              HostTensor &x = get(l.getInput()), &w = get(l.getWeight());
              if (x.shape.empty() || w.shape.size() != 2 ||
                  x.shape.back() != w.shape[1] ||
                  (l.getBias() && get(l.getBias()).numel() != w.shape[0]))
                return opError(op, "input " + shapeString(x.shape) +
                                       " does not fit the weight " +
                                       shapeString(w.shape) +
                                       " (or its bias) at run time");
              const float *bias = l.getBias() ? get(l.getBias()).f32 : nullptr;
              HostTensor out = alloc(withLast(x.shape, w.shape[0]));
              TRY(device->linear(stream, x.f32, w.f32, bias, rowsOf(x),
                                 w.shape[1], w.shape[0], out.mutableF32()));
              return out;
            })
            .Case<RoPEOp>([&](RoPEOp r) -> llvm::Expected<HostTensor> {
              HostTensor &x = get(r.getInput());
              int64_t hd = r.getHeadDim();
              if (x.shape.size() != 3 || x.shape[2] % hd)
                return opError(op, "expects [batch, seq, heads * " +
                                       std::to_string(hd) + "], got " +
                                       shapeString(x.shape));
              HostTensor out = alloc(x.shape);
              if (r.getPositions()) {
                HostTensor &pos = get(r.getPositions());
                if (!pos.ids ||
                    pos.shape != std::vector<int64_t>{x.shape[0], x.shape[1]})
                  return opError(op, "positions are not [batch, seq] of the "
                                     "input at run time");
                TRY(device->ropeAt(stream, x.f32, pos.ids->data(), x.shape[0],
                                   x.shape[1], x.shape[2] / hd, hd,
                                   r.getTheta().convertToDouble(),
                                   r.getPositionOffset(), r.getInterleaved(),
                                   out.mutableF32()));
                return out;
              }
              TRY(device->rope(
                  stream, x.f32, x.shape[0], x.shape[1], x.shape[2] / hd, hd,
                  r.getTheta().convertToDouble(), r.getPositionOffset(),
                  r.getInterleaved(), out.mutableF32()));
              return out;
            })
            .Case<CachePositionsOp>(
                [&](CachePositionsOp c) -> llvm::Expected<HostTensor> {
                  HostTensor &in = get(c.getIds()), &pk = get(c.getPastKey());
                  if (!in.ids || in.shape.size() != 2 || pk.shape.size() != 4)
                    return opError(op, "expects ids [batch, seq] and a past "
                                       "[batch, kv_heads, past, head_dim]");
                  HostTensor out;
                  out.shape = in.shape;
                  out.ids = std::make_shared<std::vector<int64_t>>(in.numel());
                  for (int64_t j = 0; j < in.numel(); ++j)
                    (*out.ids)[j] = pk.shape[2] + j % in.shape[1];
                  return out;
                })
            .Case<AttentionOp>(
                [&](AttentionOp a) -> llvm::Expected<HostTensor> {
                  HostTensor &q = get(a.getQuery()), &k = get(a.getKey()),
                             &v = get(a.getValue());
                  const float *kp = nullptr, *vp = nullptr;
                  int64_t prefix = 0;
                  if (a.getKeyPrefix()) {
                    kp = get(a.getKeyPrefix()).f32;
                    vp = get(a.getValuePrefix()).f32;
                    prefix = get(a.getKeyPrefix()).shape[0];
                  }
                  int64_t hd = a.getHeadDim();
                  double scale = a.getScale()
                                     ? a.getScale()->convertToDouble()
                                     : 1.0 / std::sqrt(static_cast<double>(hd));
                  int64_t heads = a.getNumHeads(), kvh = a.getNumKvHeads();
                  if (q.shape.size() != 3 || k.shape != v.shape ||
                      k.shape.size() != 3 || k.shape[0] != q.shape[0] ||
                      k.shape[1] != q.shape[1] || q.shape[2] != heads * hd ||
                      k.shape[2] != kvh * hd)
                    return opError(
                        op, "query " + shapeString(q.shape) + ", key " +
                                shapeString(k.shape) + " and value " +
                                shapeString(v.shape) +
                                " are not [batch, seq, heads * head_dim] "
                                "with " +
                                std::to_string(heads) + " / " +
                                std::to_string(kvh) + " heads of " +
                                std::to_string(hd) + " at run time");
                  if (a.getKeyPrefix() &&
                      (get(a.getKeyPrefix()).shape !=
                           get(a.getValuePrefix()).shape ||
                       get(a.getKeyPrefix()).shape.size() != 2 ||
                       get(a.getKeyPrefix()).shape[1] != kvh * hd))
                    return opError(op, "the KV prefix is not [prefix, "
                                       "num_kv_heads * head_dim]");
                  HostTensor out = alloc(q.shape);
                  if (a.getPastKey()) {
                    HostTensor &pk = get(a.getPastKey()),
                               &pv = get(a.getPastValue());
                    int64_t kvh = a.getNumKvHeads();
                    if (pk.shape.size() != 4 || pk.shape != pv.shape ||
                        pk.shape[0] != q.shape[0] || pk.shape[1] != kvh ||
                        pk.shape[3] != hd)
                      return opError(op, "the KV-cache past is not [batch, "
                                         "num_kv_heads, past, head_dim]");
                    int64_t pastLen = pk.shape[2];
                    HostTensor presentK =
                        alloc({q.shape[0], kvh, pastLen + q.shape[1], hd});
                    HostTensor presentV =
                        alloc({q.shape[0], kvh, pastLen + q.shape[1], hd});
                    TRY(device->attentionCached(
                        stream, q.f32, k.f32, v.f32, kp, vp, prefix, pk.f32,
                        pv.f32, pastLen, q.shape[0], q.shape[1],
                        a.getNumHeads(), kvh, hd, scale, out.mutableF32(),
                        presentK.mutableF32(), presentV.mutableF32()));
                    more = {std::move(presentK), std::move(presentV)};
                    return out;
                  }
                  TRY(device->attention(stream, q.f32, k.f32, v.f32, kp, vp,
                                        prefix, q.shape[0], q.shape[1],
                                        a.getNumHeads(), a.getNumKvHeads(), hd,
                                        scale, out.mutableF32()));
                  return out;
                })
            .Case<SwiGLUOp>([&](SwiGLUOp s) -> llvm::Expected<HostTensor> {
              HostTensor &g = get(s.getGate()), &u = get(s.getUp());
              if (g.shape != u.shape)
                return opError(op, "gate " + shapeString(g.shape) + " and up " +
                                       shapeString(u.shape) +
                                       " differ at run time");
              HostTensor out = alloc(g.shape);
              TRY(device->swiglu(stream, g.f32, u.f32, g.numel(),
                                 out.mutableF32()));
              return out;
            })
            .Case<AddOp>([&](AddOp s) -> llvm::Expected<HostTensor> {
              HostTensor &x = get(s.getLhs()), &y = get(s.getRhs());
              if (x.shape != y.shape)
                return opError(op, "operand shapes differ at run time");
              HostTensor out = alloc(x.shape);
              TRY(device->add(stream, x.f32, y.f32, x.numel(),
                              out.mutableF32()));
              return out;
            })
            .Case<RegistersOp>(
                [&](RegistersOp r) -> llvm::Expected<HostTensor> {
                  HostTensor &x = get(r.getInput()),
                             &regs = get(r.getRegisters());
                  if (x.shape.size() != 3 || regs.shape.size() != 2 ||
                      regs.shape[1] != x.shape[2])
                    return opError(op, "input " + shapeString(x.shape) +
                                           " and registers " +
                                           shapeString(regs.shape) +
                                           " are not [batch, seq, hidden] "
                                           "and [k, hidden] at run time");
                  int64_t k = regs.shape[0];
                  rt::RegisterMode mode = r.getMode() == RegisterMode::prepend
                                              ? rt::RegisterMode::Prepend
                                          : r.getMode() == RegisterMode::add
                                              ? rt::RegisterMode::Add
                                              : rt::RegisterMode::Strip;
                  auto shape = x.shape;
                  shape[1] += mode == rt::RegisterMode::Prepend ? k
                              : mode == rt::RegisterMode::Strip ? -k
                                                                : 0;
                  if (shape[1] < 0)
                    return opError(op, "sequence shorter than the registers");
                  HostTensor out = alloc(shape);
                  TRY(device->registers(stream, mode, x.f32, regs.f32,
                                        x.shape[0], x.shape[1], k, x.shape[2],
                                        out.mutableF32()));
                  return out;
                })
            .Case<QuantizeOp>([&](QuantizeOp q) -> llvm::Expected<HostTensor> {
              HostTensor &x = get(q.getInput());
              HostTensor out = alloc(x.shape);
              // Groups are contiguous runs of the last axis: quantize them
              // as rows of group_size elements.
              int64_t width = q.getGroupSize().value_or(x.shape.back());
              if (width <= 0 || x.shape.back() % width != 0)
                return opError(op, "group_size does not divide the width");
              TRY(device->quantizeRows(
                  stream, x.f32, rowsOf(x) * (x.shape.back() / width), width,
                  q.getBits(), q.getClipRatio().convertToDouble(),
                  out.mutableF32()));
              return out;
            })
            .Case<HadamardOp>([&](HadamardOp h) -> llvm::Expected<HostTensor> {
              HostTensor &x = get(h.getInput());
              if (h.getKind() == HadamardKind::random_orthogonal)
                return opError(op, "random_orthogonal has no kernel yet");
              int64_t width = x.shape.back();
              std::vector<float> signs;
              if (std::optional<ArrayRef<int8_t>> s = h.getSigns())
                for (int8_t v : *s)
                  signs.push_back(v);
              else if (std::optional<uint64_t> seed = h.getSeed())
                signs = rt::seededSigns(*seed, width);
              HostTensor out = alloc(x.shape);
              TRY(device->hadamardRows(
                  stream, x.f32, rowsOf(x), width, h.getSize(),
                  signs.empty() ? nullptr : signs.data(), h.getInverse(),
                  out.mutableF32(), h.getStride()));
              return out;
            })
            .Case<QLinearOp>([&](QLinearOp q) -> llvm::Expected<HostTensor> {
              HostTensor &x = get(q.getInput());
              const rt::PackedWeights &w = *packed[op];
              if (x.shape.empty() || x.shape.back() != w.in)
                return opError(op, "input " + shapeString(x.shape) +
                                       " does not fit the weight's " +
                                       std::to_string(w.in) +
                                       " inputs at run time");
              const float *bias = q.getBias() ? get(q.getBias()).f32 : nullptr;
              int64_t rows = rowsOf(x);
              HostTensor out = alloc(withLast(x.shape, w.out));
              if (q.getActBits() > 0) {
                double clip = q.getActClipRatio().convertToDouble();
                auto &xq = quantizedInputs[{q.getInput().getAsOpaquePointer(),
                                            q.getActBits(), clip, inTail}];
                if (!xq) {
                  xq = std::make_shared<rt::QuantizedRows>();
                  TRY(device->quantizeActivations(stream, x.f32, rows, w.in,
                                                  q.getActBits(), clip, *xq));
                }
                TRY(device->intGemm(stream, *xq, w, bias, out.mutableF32()));
              } else {
                TRY(device->linear(stream, x.f32, dequantized[op].f32, bias,
                                   rows, w.in, w.out, out.mutableF32()));
              }
              if (q.getLowRankLeft()) {
                // y += (x R^T) L^T in floating point, on the unquantized input.
                HostTensor &l = get(q.getLowRankLeft()),
                           &r = get(q.getLowRankRight());
                int64_t rank = r.shape[0];
                HostTensor t = alloc({rows, rank});
                TRY(device->linear(stream, x.f32, r.f32, nullptr, rows, w.in,
                                   rank, t.mutableF32()));
                HostTensor lr = alloc({rows, w.out});
                TRY(device->linear(stream, t.f32, l.f32, nullptr, rows, rank,
                                   w.out, lr.mutableF32()));
                TRY(device->add(stream, out.f32, lr.f32, out.numel(),
                                out.mutableF32()));
              }
              return out;
            })
            .Case<func::ReturnOp>(
                [&](func::ReturnOp) -> llvm::Expected<HostTensor> {
                  return HostTensor();
                })
            .Default([&](Operation *) -> llvm::Expected<HostTensor> {
              return opError(op, "the executor has no kernel for this op");
            });
    if (!result)
      return result.takeError();
    if (auto ret = dyn_cast<func::ReturnOp>(op)) {
      rt::Status done = stream.synchronize();
      if (!done.ok())
        return llvm::createStringError(done.message());
      std::vector<HostTensor> outs;
      for (Value v : ret.getOperands())
        outs.push_back(env[v]);
      HostTensor &out = outs[0];
      if (rows && out.shape.size() >= 2 && out.shape[1] == seq)
        out = slicePositions(out, begin, end);
      else if (rows && (out.shape.size() < 2 || out.shape[1] != end - begin))
        return opError(op, "cannot select positions of the result");
      return outs;
    }
    if (op->getNumResults() == more.size() + 1) {
      if (observe)
        observe(op->getResult(0), *result);
      env[op->getResult(0)] = std::move(*result);
      for (size_t i = 0; i < more.size(); ++i)
        env[op->getResult(i + 1)] = std::move(more[i]);
    }
    for (Value v : op->getOperands())
      if (lastUse.lookup(v) == op &&
          !isa_and_nonnull<WeightOp, arith::ConstantOp>(v.getDefiningOp())) {
        env.erase(v);
        sliced.erase(v);
      }
  }
#undef TRY
  return llvm::createStringError("function without a return");
}
