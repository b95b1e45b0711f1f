//===- Evaluate.cpp - evaluate small generic-IR subgraphs -----------------===//

#include "passes/Conversion/OnnxToW4A4/Evaluate.h"
#include "passes/Conversion/OnnxToW4A4/SymExpr.h"

#include "dialects/W4A4/W4A4Ops.h"
#include "dialects/W4A4/W4A4Utils.h"
#include "mlir/Dialect/Arith/IR/Arith.h"

#include <cmath>
#include <limits>

using namespace mlir;
using namespace mlir::w4a4;
namespace ox = ::w4a4::onnx_import;

namespace {

constexpr int64_t kMaxElements = int64_t{1} << 22;

bool contains(StringRef name, StringRef part) {
  return name.lower().find(part.lower()) != std::string::npos;
}

std::vector<int64_t> strides(const std::vector<int64_t> &shape) {
  std::vector<int64_t> s(shape.size(), 1);
  for (int64_t i = static_cast<int64_t>(shape.size()) - 2; i >= 0; --i)
    s[i] = s[i + 1] * shape[i + 1];
  return s;
}

std::optional<std::vector<int64_t>>
broadcastShape(const std::vector<std::vector<int64_t>> &shapes) {
  size_t rank = 0;
  for (auto &s : shapes)
    rank = std::max(rank, s.size());
  std::vector<int64_t> out(rank, 1);
  for (auto &s : shapes)
    for (size_t i = 0; i < s.size(); ++i) {
      int64_t &o = out[rank - s.size() + i];
      int64_t d = s[i];
      if (d == 1)
        continue;
      if (o != 1 && o != d)
        return std::nullopt;
      o = d;
    }
  return out;
}

/// Index into `t` (broadcast to `shape`) of the flat position `flat`.
int64_t broadcastIndex(const ETensor &t, const std::vector<int64_t> &shape,
                       const std::vector<int64_t> &outStrides, int64_t flat) {
  int64_t idx = 0, stride = 1;
  size_t off = shape.size() - t.shape.size();
  for (int64_t i = static_cast<int64_t>(t.shape.size()) - 1; i >= 0; --i) {
    int64_t coord = (flat / outStrides[i + off]) % shape[i + off];
    if (t.shape[i] != 1)
      idx += coord * stride;
    stride *= t.shape[i];
  }
  return idx;
}

int64_t normAxis(int64_t a, int64_t rank) { return a < 0 ? a + rank : a; }
bool axisOk(int64_t a, int64_t rank) { return a >= 0 && a < rank; }

std::optional<std::vector<int64_t>> ints(const ETensor &t) {
  std::vector<int64_t> out;
  for (double d : t.v) {
    if (std::isnan(d))
      return std::nullopt;
    // INT64_MAX ("to the end") is not exact in float64: clamp.
    out.push_back(d >= 9e18    ? int64_t{1} << 62
                  : d <= -9e18 ? -(int64_t{1} << 62)
                               : static_cast<int64_t>(d));
  }
  return out;
}

int64_t attrInt(OnnxOp op, StringRef name, int64_t dflt) {
  return onnxAttrInt(op, name, dflt);
}

std::optional<std::vector<int64_t>> attrInts(OnnxOp op, StringRef name) {
  if (DictionaryAttr d = op.getOnnxAttrsAttr())
    if (auto a = d.getAs<DenseI64ArrayAttr>(name))
      return std::vector<int64_t>(a.asArrayRef().begin(), a.asArrayRef().end());
  return std::nullopt;
}

std::optional<ETensor> fromAttr(Attribute attr) {
  auto elements = dyn_cast<ElementsAttr>(attr);
  if (!elements)
    return std::nullopt;
  auto type = cast<ShapedType>(elements.getType());
  ETensor t;
  t.shape.assign(type.getShape().begin(), type.getShape().end());
  if (t.numel() > kMaxElements)
    return std::nullopt;
  if (isa<FloatType>(type.getElementType())) {
    auto f = readFloats(attr);
    if (!f)
      return std::nullopt;
    t.v = std::move(*f);
    return t;
  }
  auto dense = dyn_cast<DenseElementsAttr>(attr);
  if (!dense)
    return std::nullopt;
  if (type.getElementType().isInteger(1)) {
    for (bool b : dense.getValues<bool>())
      t.v.push_back(b);
    return t;
  }
  bool isUnsigned = type.getElementType().isUnsignedInteger();
  for (const APInt &x : dense.getValues<APInt>())
    t.v.push_back(isUnsigned ? static_cast<double>(x.getZExtValue())
                             : static_cast<double>(x.getSExtValue()));
  return t;
}

} // namespace

Value mlir::w4a4::onnxInput(OnnxOp op, int64_t pos) {
  SmallVector<int64_t> absent;
  if (auto a = op.getAbsentInputsAttr())
    absent.assign(a.asArrayRef().begin(), a.asArrayRef().end());
  if (llvm::is_contained(absent, pos))
    return {};
  int64_t idx =
      pos - llvm::count_if(absent, [&](int64_t a) { return a < pos; });
  return idx >= 0 && idx < static_cast<int64_t>(op.getNumOperands())
             ? op.getOperand(idx)
             : Value();
}

int64_t mlir::w4a4::onnxAttrInt(OnnxOp op, StringRef name, int64_t dflt) {
  if (DictionaryAttr d = op.getOnnxAttrsAttr())
    if (auto a = d.getAs<IntegerAttr>(name))
      return a.getInt();
  return dflt;
}

ArrayAttr mlir::w4a4::stageOneDims(Value v) {
  if (auto arg = dyn_cast<BlockArgument>(v)) {
    if (auto f = dyn_cast<func::FuncOp>(arg.getOwner()->getParentOp()))
      return f.getArgAttrOfType<ArrayAttr>(arg.getArgNumber(), "w4a4.dims");
    return {};
  }
  Operation *op = v.getDefiningOp();
  return op && op->getNumResults() == 1
             ? op->getAttrOfType<ArrayAttr>("w4a4.dims")
             : ArrayAttr();
}

SubgraphEvaluator::SubgraphEvaluator(func::FuncOp func, int64_t seq,
                                     int64_t batch)
    : seqLen(seq) {
  // Symbols: input_ids' dims are (batch, seq); a past input's third dim is
  // the past length (0). Other symbols are lengths of the whole sequence.
  auto dimsOf = [&](unsigned i) -> std::vector<std::string> {
    std::vector<std::string> out;
    if (auto a = func.getArgAttrOfType<ArrayAttr>(i, "w4a4.dims"))
      for (Attribute s : a)
        out.push_back(cast<StringAttr>(s).str());
    return out;
  };
  auto nameOf = [&](unsigned i) -> StringRef {
    auto a = func.getArgAttrOfType<StringAttr>(i, "w4a4.name");
    return a ? a.getValue() : StringRef();
  };
  for (unsigned i = 0; i < func.getNumArguments(); ++i) {
    std::vector<std::string> dims = dimsOf(i);
    StringRef name = nameOf(i);
    if (contains(name, "input_ids") && dims.size() == 2) {
      bindings[dims[0]] = batch;
      bindings[dims[1]] = seq;
    }
    if (contains(name, "past") && dims.size() == 4)
      bindings[dims[2]] = 0;
  }
  // Remaining single symbols (e.g. a total-length name) are sequence
  // lengths after an empty past.
  for (unsigned i = 0; i < func.getNumArguments(); ++i)
    for (const std::string &d : dimsOf(i))
      if (auto e = ox::SymExpr::parse(d))
        for (const std::string &sym : e->symbols())
          bindings.emplace(sym, seq);
  for (unsigned i = 0; i < func.getNumArguments(); ++i) {
    StringRef name = nameOf(i);
    auto type = dyn_cast<RankedTensorType>(func.getArgument(i).getType());
    if (!type || contains(name, "input_ids"))
      continue;
    std::vector<std::string> dims = dimsOf(i);
    ETensor t;
    for (int64_t d = 0; d < type.getRank(); ++d) {
      if (!type.isDynamicDim(d)) {
        t.shape.push_back(type.getDimSize(d));
        continue;
      }
      int64_t value = seq;
      if (d < static_cast<int64_t>(dims.size()))
        if (auto e = ox::SymExpr::parse(dims[d]))
          if (auto v = e->evaluate(bindings))
            value = *v;
      t.shape.push_back(value);
    }
    if (!t.sizeOk())
      continue; // left unbound: nothing that reads it evaluates
    if (contains(name, "past")) {
      if (t.shape.size() == 4)
        t.shape[2] = 0;
      memo[func.getArgument(i)] = t;
    } else if (contains(name, "attention_mask")) {
      t.v.assign(t.numel(), 1.0);
      memo[func.getArgument(i)] = t;
    } else if (contains(name, "position_ids") && !t.shape.empty()) {
      int64_t n = t.shape.back();
      for (int64_t k = 0; k < t.numel(); ++k)
        t.v.push_back(static_cast<double>(k % n));
      memo[func.getArgument(i)] = t;
    }
  }
}

std::optional<ETensor> SubgraphEvaluator::eval(Value v) {
  if (!v)
    return fail("no value");
  auto it = memo.find(v);
  if (it != memo.end())
    return it->second;
  if (isa<BlockArgument>(v))
    return fail("depends on a function input that is not bound");
  if (++depth > 2000) {
    --depth;
    return fail("subgraph too deep");
  }
  auto r = evalOp(v.getDefiningOp(), cast<OpResult>(v).getResultNumber());
  --depth;
  if (r) {
    if (!r->sizeOk() || r->v.size() != size_t(r->numel()))
      return fail("subgraph value too large or malformed");
    memo[v] = *r;
  }
  return r;
}

std::optional<std::vector<int64_t>>
SubgraphEvaluator::evalDims(ArrayAttr dims) {
  std::vector<int64_t> out;
  for (Attribute a : dims) {
    auto e = ox::SymExpr::parse(cast<StringAttr>(a).str());
    std::optional<int64_t> v = e ? e->evaluate(bindings) : std::nullopt;
    if (!v)
      return std::nullopt;
    out.push_back(*v);
  }
  return out;
}

std::optional<std::vector<int64_t>> SubgraphEvaluator::shapeOf(Value v) {
  auto s = shapeOfUnchecked(v);
  if (!s)
    return s;
  ETensor t;
  t.shape = *s;
  if (!t.sizeOk()) {
    (void)fail("a shape is negative or too large");
    return std::nullopt;
  }
  return s;
}

std::optional<std::vector<int64_t>>
SubgraphEvaluator::shapeOfUnchecked(Value v) {
  auto type = dyn_cast<RankedTensorType>(v.getType());
  if (!type)
    return std::nullopt;
  if (type.hasStaticShape())
    return std::vector<int64_t>(type.getShape().begin(), type.getShape().end());
  if (auto it = memo.find(v); it != memo.end())
    return it->second.shape;
  ArrayAttr dims = stageOneDims(v);
  if (dims && static_cast<int64_t>(dims.size()) == type.getRank())
    if (auto d = evalDims(dims))
      return d;
  // Raised ops keep their input's shape except the last dim (linear, ...).
  if (Operation *op = v.getDefiningOp(); op && !isa<OnnxOp>(op) &&
                                         op->getNumOperands() > 0 &&
                                         isa<W4A4Dialect>(op->getDialect()) &&
                                         !isa<EmbeddingOp, RegistersOp>(op)) {
    auto in = shapeOf(op->getOperand(0));
    if (in && in->size() == size_t(type.getRank())) {
      if (!type.isDynamicDim(type.getRank() - 1))
        in->back() = type.getDimSize(type.getRank() - 1);
      return in;
    }
  }
  auto t = eval(v);
  return t ? std::optional<std::vector<int64_t>>(t->shape) : std::nullopt;
}

std::optional<ETensor> SubgraphEvaluator::evalOp(Operation *op,
                                                 unsigned resultIndex) {
  // Stage 1's symbolic values, under the bindings.
  if (auto sym = op->getAttrOfType<ArrayAttr>("w4a4.sym");
      sym && op->getNumResults() == 1) {
    auto type = dyn_cast<RankedTensorType>(op->getResult(0).getType());
    if (auto values = evalDims(sym); values && type && type.hasStaticShape()) {
      ETensor t;
      t.shape.assign(type.getShape().begin(), type.getShape().end());
      t.v.assign(values->begin(), values->end());
      if (t.numel() == static_cast<int64_t>(t.v.size()))
        return t;
    }
  }
  if (auto c = dyn_cast<arith::ConstantOp>(op)) {
    auto t = fromAttr(c.getValue());
    return t ? t : fail("unreadable constant");
  }
  if (auto w = dyn_cast<WeightOp>(op)) {
    auto t = fromAttr(w.getValue());
    return t ? t : fail("unreadable weight");
  }
  auto onnx = dyn_cast<OnnxOp>(op);
  if (!onnx)
    return fail("depends on a raised op");
  StringRef type = onnx.getOpType();
  std::vector<ETensor> in;
  for (Value operand : onnx.getOperands()) {
    auto t = eval(operand);
    if (!t)
      return std::nullopt;
    if (!t->sizeOk() || t->v.size() != size_t(t->numel()))
      return fail("malformed operand");
    in.push_back(std::move(*t));
  }
  // Operand counts the evaluation below relies on (hand-written IR may
  // have fewer).
  static const std::map<std::string, size_t> minOperands = {
      {"Reshape", 2}, {"Slice", 3},  {"Gather", 2},      {"Expand", 2},
      {"Range", 3},   {"CumSum", 2}, {"MatMul", 2},      {"Where", 3},
      {"Add", 2},     {"Sub", 2},    {"Mul", 2},         {"Div", 2},
      {"Pow", 2},     {"Equal", 2},  {"Less", 2},        {"Greater", 2},
      {"And", 2},     {"Or", 2},     {"LessOrEqual", 2}, {"GreaterOrEqual", 2}};
  auto need = minOperands.find(type.str());
  if (in.size() < (need == minOperands.end() ? 1 : need->second))
    return fail(type.str() + ": too few operands");
  auto input = [&](int64_t pos) -> std::optional<ETensor> {
    Value v = onnxInput(onnx, pos);
    if (!v)
      return std::nullopt;
    return eval(v);
  };
  auto unary = [&](auto fn) -> std::optional<ETensor> {
    if (in.size() != 1)
      return fail(type.str() + ": one operand expected");
    ETensor t = in[0];
    for (double &x : t.v)
      x = fn(x);
    return t;
  };
  auto binary = [&](auto fn) -> std::optional<ETensor> {
    std::vector<std::vector<int64_t>> shapes;
    for (auto &t : in)
      shapes.push_back(t.shape);
    auto shape = broadcastShape(shapes);
    if (!shape || in.empty())
      return fail(type.str() + ": shapes do not broadcast");
    ETensor out;
    out.shape = *shape;
    int64_t n = out.numel();
    if (!out.sizeOk())
      return fail("too large");
    auto st = strides(out.shape);
    out.v.resize(n);
    for (int64_t i = 0; i < n; ++i) {
      std::vector<double> args;
      for (auto &t : in)
        args.push_back(t.v[broadcastIndex(t, out.shape, st, i)]);
      out.v[i] = fn(args);
    }
    return out;
  };
  Type resultElem =
      cast<ShapedType>(op->getResult(resultIndex).getType()).getElementType();
  bool intResult = isa<IntegerType>(resultElem);

  if (type == "Identity")
    return in.at(0);
  if (type == "Neg")
    return unary([](double x) { return -x; });
  if (type == "Sqrt")
    return unary([](double x) { return std::sqrt(x); });
  if (type == "Reciprocal")
    return unary([](double x) { return 1.0 / x; });
  if (type == "Rsqrt")
    return unary([](double x) { return 1.0 / std::sqrt(x); });
  if (type == "Exp")
    return unary([](double x) { return std::exp(x); });
  if (type == "Cos")
    return unary([](double x) { return std::cos(x); });
  if (type == "Sin")
    return unary([](double x) { return std::sin(x); });
  if (type == "Abs")
    return unary([](double x) { return std::abs(x); });
  if (type == "Not")
    return unary([](double x) { return x == 0 ? 1.0 : 0.0; });
  if (type == "Cast") {
    int64_t to = attrInt(onnx, "to", 1);
    if (to == 9)
      return unary([](double x) { return x != 0 ? 1.0 : 0.0; });
    if (to == 1)
      return unary([](double x) { return double(float(x)); });
    if (to == 6 || to == 7 || to == 2 || to == 3)
      return unary([](double x) { return std::trunc(x); });
    return in.at(0);
  }
  if (type == "Add")
    return binary([](auto &a) { return a[0] + a[1]; });
  if (type == "Sub")
    return binary([](auto &a) { return a[0] - a[1]; });
  if (type == "Mul")
    return binary([](auto &a) { return a[0] * a[1]; });
  if (type == "Div")
    return binary([&](auto &a) {
      return intResult ? std::trunc(a[0] / a[1]) : a[0] / a[1];
    });
  if (type == "Pow")
    return binary([](auto &a) { return std::pow(a[0], a[1]); });
  if (type == "Min")
    return binary([](auto &a) {
      double m = a[0];
      for (double x : a)
        m = std::min(m, x);
      return m;
    });
  if (type == "Max")
    return binary([](auto &a) {
      double m = a[0];
      for (double x : a)
        m = std::max(m, x);
      return m;
    });
  if (type == "Equal")
    return binary([](auto &a) { return double(a[0] == a[1]); });
  if (type == "Less")
    return binary([](auto &a) { return double(a[0] < a[1]); });
  if (type == "Greater")
    return binary([](auto &a) { return double(a[0] > a[1]); });
  if (type == "LessOrEqual")
    return binary([](auto &a) { return double(a[0] <= a[1]); });
  if (type == "GreaterOrEqual")
    return binary([](auto &a) { return double(a[0] >= a[1]); });
  if (type == "And")
    return binary([](auto &a) { return double(a[0] != 0 && a[1] != 0); });
  if (type == "Or")
    return binary([](auto &a) { return double(a[0] != 0 || a[1] != 0); });
  if (type == "Where")
    return binary([](auto &a) { return a[0] != 0 ? a[1] : a[2]; });
  if (type == "Reshape" || type == "Unsqueeze" || type == "Squeeze" ||
      type == "Flatten") {
    ETensor t = in.at(0);
    std::vector<int64_t> shape;
    if (type == "Reshape") {
      auto s = ints(in.at(1));
      if (!s)
        return fail("Reshape: bad shape");
      int64_t known = 1, infer = -1;
      for (size_t i = 0; i < s->size(); ++i) {
        int64_t d = (*s)[i];
        if (d == 0 && !attrInt(onnx, "allowzero", 0))
          d = i < t.shape.size() ? t.shape[i] : 0;
        if (d == -1)
          infer = i;
        else
          known *= d;
        shape.push_back(d);
      }
      if (infer >= 0)
        shape[infer] = known ? t.numel() / known : 0;
    } else if (type == "Flatten") {
      int64_t axis = normAxis(attrInt(onnx, "axis", 1), t.shape.size());
      int64_t a = 1, b = 1;
      for (int64_t i = 0; i < int64_t(t.shape.size()); ++i)
        (i < axis ? a : b) *= t.shape[i];
      shape = {a, b};
    } else {
      std::optional<std::vector<int64_t>> axes =
          in.size() > 1 ? ints(in[1]) : attrInts(onnx, "axes");
      shape = t.shape;
      if (type == "Unsqueeze") {
        if (!axes)
          return fail("Unsqueeze: no axes");
        int64_t rank = shape.size() + axes->size();
        std::vector<int64_t> norm;
        for (int64_t a : *axes) {
          if (!axisOk(normAxis(a, rank), rank))
            return fail("Unsqueeze: bad axis");
          norm.push_back(normAxis(a, rank));
        }
        std::sort(norm.begin(), norm.end());
        for (int64_t a : norm)
          shape.insert(shape.begin() + std::min<int64_t>(a, shape.size()), 1);
      } else {
        std::vector<int64_t> out;
        for (int64_t i = 0; i < int64_t(shape.size()); ++i) {
          bool drop =
              axes ? llvm::any_of(*axes,
                                  [&](int64_t a) {
                                    return normAxis(a, shape.size()) == i;
                                  })
                   : shape[i] == 1;
          if (!drop)
            out.push_back(shape[i]);
        }
        shape = out;
      }
    }
    ETensor r;
    r.shape = shape;
    if (!r.sizeOk() || r.numel() != t.numel()) {
      std::string from, to;
      for (int64_t d : t.shape)
        from += " " + std::to_string(d);
      for (int64_t d : r.shape)
        to += " " + std::to_string(d);
      return fail(type.str() + " '" + onnx.getNodeName().str() +
                  "': element count changes ([" + from + " ] to [" + to +
                  " ])");
    }
    r.v = std::move(t.v);
    return r;
  }
  if (type == "Transpose") {
    ETensor &t = in.at(0);
    int64_t rank = t.shape.size();
    std::vector<int64_t> perm;
    if (auto p = attrInts(onnx, "perm"))
      perm = *p;
    else
      for (int64_t i = rank - 1; i >= 0; --i)
        perm.push_back(i);
    if (int64_t(perm.size()) != rank)
      return fail("Transpose: bad perm");
    std::vector<bool> seen(rank, false);
    for (int64_t p : perm) {
      if (!axisOk(p, rank) || seen[p])
        return fail("Transpose: bad perm");
      seen[p] = true;
    }
    ETensor r;
    for (int64_t p : perm)
      r.shape.push_back(t.shape[p]);
    auto is = strides(t.shape), os = strides(r.shape);
    r.v.resize(t.numel());
    for (int64_t i = 0; i < t.numel(); ++i) {
      int64_t src = 0;
      for (int64_t d = 0; d < rank; ++d)
        src += ((i / os[d]) % r.shape[d]) * is[perm[d]];
      r.v[i] = t.v[src];
    }
    return r;
  }
  if (type == "Concat") {
    int64_t rank = in.at(0).shape.size();
    int64_t axis = normAxis(attrInt(onnx, "axis", 0), rank);
    if (!axisOk(axis, rank))
      return fail("Concat: bad axis");
    for (auto &t : in) {
      if (int64_t(t.shape.size()) != rank)
        return fail("Concat: ranks differ");
      for (int64_t d = 0; d < rank; ++d)
        if (d != axis && t.shape[d] != in[0].shape[d])
          return fail("Concat: dims differ");
    }
    ETensor r;
    r.shape = in[0].shape;
    r.shape[axis] = 0;
    for (auto &t : in)
      r.shape[axis] += t.shape[axis];
    int64_t outer = 1;
    for (int64_t d = 0; d < axis; ++d)
      outer *= r.shape[d];
    for (int64_t o = 0; o < outer; ++o)
      for (auto &t : in) {
        int64_t chunk = t.numel() / std::max<int64_t>(outer, 1);
        r.v.insert(r.v.end(), t.v.begin() + o * chunk,
                   t.v.begin() + (o + 1) * chunk);
      }
    return r;
  }
  if (type == "Slice") {
    ETensor &t = in.at(0);
    auto starts = ints(in.at(1)), ends = ints(in.at(2));
    std::optional<std::vector<int64_t>> axes, steps;
    if (auto a = input(3))
      axes = ints(*a);
    if (auto s = input(4))
      steps = ints(*s);
    if (!starts || !ends)
      return fail("Slice: bad bounds");
    int64_t rank = t.shape.size();
    std::vector<int64_t> b(rank, 0), st(rank, 1), len = t.shape;
    if (ends->size() != starts->size() ||
        (steps && steps->size() != starts->size()) ||
        (axes && axes->size() != starts->size()))
      return fail("Slice: starts, ends, axes and steps differ in length");
    for (size_t i = 0; i < starts->size(); ++i) {
      int64_t ax = axes ? normAxis((*axes)[i], rank) : int64_t(i);
      if (!axisOk(ax, rank))
        return fail("Slice: bad axis");
      int64_t step = steps ? (*steps)[i] : 1, n = t.shape[ax];
      if (step == 0)
        return fail("Slice: step 0");
      int64_t s = (*starts)[i], e = (*ends)[i];
      if (step > 0) {
        s = s < 0 ? std::max<int64_t>(s + n, 0) : std::min(s, n);
        e = e < 0 ? std::max<int64_t>(e + n, 0) : std::min(e, n);
        len[ax] = e > s ? (e - s + step - 1) / step : 0;
      } else {
        s = s < 0 ? std::max<int64_t>(s + n, -1) : std::min(s, n - 1);
        e = e < 0 ? std::max<int64_t>(e + n, -1) : std::min(e, n - 1);
        len[ax] = s > e ? (s - e - step - 1) / -step : 0;
      }
      b[ax] = s;
      st[ax] = step;
    }
    ETensor r;
    r.shape = len;
    if (!r.sizeOk())
      return fail("Slice: too large");
    auto is = strides(t.shape), os = strides(len);
    r.v.resize(r.numel());
    for (int64_t i = 0; i < r.numel(); ++i) {
      int64_t src = 0;
      for (int64_t d = 0; d < rank; ++d)
        src += (b[d] + ((i / os[d]) % len[d]) * st[d]) * is[d];
      r.v[i] = t.v[src];
    }
    return r;
  }
  if (type == "Gather") {
    ETensor &t = in.at(0);
    auto idx = ints(in.at(1));
    if (!idx)
      return fail("Gather: bad indices");
    int64_t rank = t.shape.size();
    int64_t axis = normAxis(attrInt(onnx, "axis", 0), rank);
    if (!axisOk(axis, rank))
      return fail("Gather: bad axis");
    int64_t outer = 1, inner = 1, n = t.shape[axis];
    for (int64_t d = 0; d < axis; ++d)
      outer *= t.shape[d];
    for (int64_t d = axis + 1; d < rank; ++d)
      inner *= t.shape[d];
    ETensor r;
    r.shape.assign(t.shape.begin(), t.shape.begin() + axis);
    r.shape.insert(r.shape.end(), in[1].shape.begin(), in[1].shape.end());
    r.shape.insert(r.shape.end(), t.shape.begin() + axis + 1, t.shape.end());
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t k : *idx) {
        if (k < 0)
          k += n;
        if (k < 0 || k >= n)
          return fail("Gather: index out of range");
        r.v.insert(r.v.end(), t.v.begin() + (o * n + k) * inner,
                   t.v.begin() + (o * n + k + 1) * inner);
      }
    return r;
  }
  if (type == "Expand") {
    auto s = ints(in.at(1));
    if (!s)
      return fail("Expand: bad shape");
    ETensor shapeOnly;
    shapeOnly.shape = *s;
    auto shape = broadcastShape({in[0].shape, *s});
    if (!shape)
      return fail("Expand: shapes do not broadcast");
    ETensor r;
    r.shape = *shape;
    if (!r.sizeOk())
      return fail("Expand: shape negative or too large");
    auto st = strides(r.shape);
    r.v.resize(r.numel());
    for (int64_t i = 0; i < r.numel(); ++i)
      r.v[i] = in[0].v[broadcastIndex(in[0], r.shape, st, i)];
    return r;
  }
  if (type == "Range") {
    if (in.at(0).v.empty() || in.at(1).v.empty() || in.at(2).v.empty())
      return fail("Range: empty operand");
    double s = in[0].v[0], l = in[1].v[0], d = in[2].v[0];
    if (d == 0 || !std::isfinite(s) || !std::isfinite(l) || !std::isfinite(d) ||
        std::abs((l - s) / d) > double(kMaxElements))
      return fail("Range: bad or too many elements");
    ETensor r;
    int64_t n = std::max<int64_t>(0, int64_t(std::ceil((l - s) / d)));
    if (n > kMaxElements)
      return fail("too large");
    for (int64_t i = 0; i < n; ++i)
      r.v.push_back(s + i * d);
    r.shape = {n};
    return r;
  }
  if (type == "ConstantOfShape") {
    auto s = ints(in.at(0));
    if (!s)
      return fail("ConstantOfShape: bad shape");
    double value = 0;
    if (DictionaryAttr d = onnx.getOnnxAttrsAttr())
      if (Attribute a = d.get("value"))
        if (auto t = fromAttr(a); t && t->v.size() == 1)
          value = t->v[0];
    ETensor r;
    r.shape = *s;
    if (!r.sizeOk())
      return fail("ConstantOfShape: shape negative or too large");
    r.v.assign(r.numel(), value);
    return r;
  }
  if (type == "Trilu") {
    ETensor r = in.at(0);
    int64_t k = 0;
    if (auto kt = input(1); kt && !kt->v.empty())
      k = int64_t(kt->v[0]);
    bool upper = attrInt(onnx, "upper", 1);
    int64_t rank = r.shape.size();
    if (rank < 2)
      return fail("Trilu: rank < 2");
    int64_t rows = r.shape[rank - 2], cols = r.shape[rank - 1];
    for (int64_t i = 0; i < r.numel(); ++i) {
      int64_t c = i % cols, row = (i / cols) % rows;
      bool keep = upper ? c - row >= k : c - row <= k;
      if (!keep)
        r.v[i] = 0;
    }
    return r;
  }
  if (type == "CumSum") {
    ETensor r = in.at(0);
    int64_t rank = r.shape.size();
    if (in.at(1).v.empty())
      return fail("CumSum: no axis");
    int64_t axis = normAxis(int64_t(in[1].v[0]), rank);
    if (!axisOk(axis, rank))
      return fail("CumSum: bad axis");
    bool exclusive = attrInt(onnx, "exclusive", 0),
         reverse = attrInt(onnx, "reverse", 0);
    auto st = strides(r.shape);
    int64_t n = r.shape[axis];
    for (int64_t i = 0; i < r.numel(); ++i) {
      if ((i / st[axis]) % n != 0)
        continue;
      double acc = 0;
      for (int64_t j = 0; j < n; ++j) {
        int64_t k = reverse ? n - 1 - j : j;
        int64_t pos = i + k * st[axis];
        double x = in[0].v[pos];
        r.v[pos] = exclusive ? acc : acc + x;
        acc += x;
      }
    }
    return r;
  }
  if (type == "ReduceSum" || type == "ReduceMax" || type == "ReduceMean" ||
      type == "ReduceMin") {
    ETensor &t = in.at(0);
    int64_t rank = t.shape.size();
    std::optional<std::vector<int64_t>> axes =
        in.size() > 1 ? ints(in[1]) : attrInts(onnx, "axes");
    std::vector<bool> red(rank, !axes || axes->empty());
    if (axes)
      for (int64_t a : *axes) {
        if (!axisOk(normAxis(a, rank), rank))
          return fail("Reduce: bad axis");
        red[normAxis(a, rank)] = true;
      }
    bool keep = attrInt(onnx, "keepdims", 1);
    std::vector<int64_t> kshape;
    ETensor r;
    for (int64_t d = 0; d < rank; ++d) {
      kshape.push_back(red[d] ? 1 : t.shape[d]);
      if (!red[d] || keep)
        r.shape.push_back(red[d] ? 1 : t.shape[d]);
    }
    ETensor k;
    k.shape = kshape;
    int64_t m = k.numel();
    bool isMax = type == "ReduceMax", isMin = type == "ReduceMin";
    r.v.assign(m, isMax ? -INFINITY : isMin ? INFINITY : 0.0);
    std::vector<int64_t> count(m, 0);
    auto ts = strides(t.shape), ks = strides(kshape);
    for (int64_t i = 0; i < t.numel(); ++i) {
      int64_t o = 0;
      for (int64_t d = 0; d < rank; ++d)
        if (!red[d])
          o += ((i / ts[d]) % t.shape[d]) * ks[d];
      double x = t.v[i];
      r.v[o] = isMax   ? std::max(r.v[o], x)
               : isMin ? std::min(r.v[o], x)
                       : r.v[o] + x;
      ++count[o];
    }
    if (type == "ReduceMean")
      for (int64_t o = 0; o < m; ++o)
        r.v[o] /= std::max<int64_t>(count[o], 1);
    return r;
  }
  if (type == "MatMul") {
    ETensor a = in.at(0), b = in.at(1);
    if (a.shape.empty() || b.shape.empty())
      return fail("MatMul: scalar operand");
    if (a.shape.size() == 1)
      a.shape.insert(a.shape.begin(), 1);
    if (b.shape.size() == 1)
      b.shape.push_back(1);
    int64_t m = a.shape[a.shape.size() - 2], k = a.shape.back(),
            n = b.shape.back();
    if (b.shape[b.shape.size() - 2] != k)
      return fail("MatMul: inner dims differ");
    std::vector<int64_t> ab(a.shape.begin(), a.shape.end() - 2),
        bb(b.shape.begin(), b.shape.end() - 2);
    auto batch = broadcastShape({ab, bb});
    if (!batch)
      return fail("MatMul: batch dims do not broadcast");
    ETensor r;
    r.shape = *batch;
    int64_t nb = r.numel();
    r.shape.push_back(m);
    r.shape.push_back(n);
    if (!r.sizeOk())
      return fail("too large");
    ETensor ai, bi;
    ai.shape = ab;
    bi.shape = bb;
    auto bs = strides(*batch);
    r.v.assign(r.numel(), 0.0);
    for (int64_t p = 0; p < nb; ++p) {
      int64_t ia = ab.empty() ? 0 : broadcastIndex(ai, *batch, bs, p);
      int64_t ib = bb.empty() ? 0 : broadcastIndex(bi, *batch, bs, p);
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          double acc = 0;
          for (int64_t q = 0; q < k; ++q)
            acc += a.v[(ia * m + i) * k + q] * b.v[(ib * k + q) * n + j];
          r.v[(p * m + i) * n + j] = acc;
        }
    }
    // Rank-1 operands drop their unit dimension again.
    auto resultType =
        dyn_cast<RankedTensorType>(op->getResult(resultIndex).getType());
    if (resultType &&
        static_cast<int64_t>(r.shape.size()) != resultType.getRank()) {
      std::vector<int64_t> s;
      for (int64_t d : r.shape)
        s.push_back(d);
      if (in[0].shape.size() == 1)
        s.erase(s.end() - 2);
      if (in[1].shape.size() == 1)
        s.pop_back();
      r.shape = s;
    }
    return r;
  }
  return fail("cannot evaluate op " + type.str());
}
