//===- OnnxShapes.cpp - stage 1: per-op, per-opset ONNX inference ---------===//
//
// One inference function per op (and per opset where the op changed: axes
// as attributes or inputs, Split's num_outputs, Shape's start/end), looked
// up by (domain, op, opset). Integer shape arithmetic is evaluated on
// symbolic values. No exceptions: errors are returned as text.
//
//===----------------------------------------------------------------------===//

#include "passes/Conversion/OnnxToW4A4/OnnxShapes.h"
#include "passes/Conversion/OnnxToW4A4/OnnxReader.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

namespace w4a4::onnx_import {

std::string shapeString(const std::vector<SymExpr> &dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i)
    s += (i ? ", " : "") + dims[i].str();
  return s + "]";
}

namespace {

constexpr int64_t kBigEnd = int64_t{1} << 30; // "to the end" slice bounds

struct Ctx {
  const Node &node;
  int64_t opset;
  const std::vector<const ValueInfo *> &in;
  std::vector<ValueInfo> &out;
  const std::function<SymExpr()> &fresh;
  std::string error;

  bool fail(const std::string &message) {
    if (error.empty())
      error = message;
    return false;
  }
  const ValueInfo *input(size_t i) const {
    return i < in.size() ? in[i] : nullptr;
  }
  /// Input i, which must be present and ranked.
  const ValueInfo *ranked(size_t i) {
    const ValueInfo *v = input(i);
    if (!v) {
      fail("input " + std::to_string(i) + " is required");
      return nullptr;
    }
    if (!v->ranked) {
      fail("input " + std::to_string(i) + " has no known rank");
      return nullptr;
    }
    return v;
  }
  const Attribute *attr(const std::string &name) const {
    auto it = node.attributes.find(name);
    return it == node.attributes.end() ? nullptr : &it->second;
  }
  int64_t attrInt(const std::string &name, int64_t dflt) const {
    const Attribute *a = attr(name);
    return a && a->kind == Attribute::Int ? a->i : dflt;
  }
  std::optional<std::vector<int64_t>> attrInts(const std::string &name) const {
    const Attribute *a = attr(name);
    if (!a || a->kind != Attribute::Ints)
      return std::nullopt;
    return a->ints;
  }
  /// Constant integer values of input i (all elements constant).
  std::optional<std::vector<int64_t>> constInts(size_t i) const {
    const ValueInfo *v = input(i);
    if (!v || !v->data)
      return std::nullopt;
    std::vector<int64_t> out;
    for (const SymExpr &e : *v->data) {
      auto c = e.constant();
      if (!c)
        return std::nullopt;
      out.push_back(*c);
    }
    return out;
  }
  ValueInfo &result(size_t i = 0) {
    if (out.size() <= i)
      out.resize(i + 1);
    return out[i];
  }
  void setResult(size_t i, int32_t elem, std::vector<SymExpr> dims) {
    ValueInfo &r = result(i);
    r.elemType = elem;
    r.ranked = true;
    r.dims = std::move(dims);
  }
};

bool isIntType(int32_t t) {
  auto e = static_cast<ElemType>(t);
  return e == ElemType::Int64 || e == ElemType::Int32 || e == ElemType::Int8 ||
         e == ElemType::UInt8 || e == ElemType::Bool;
}

bool isFloatType(int32_t t) {
  auto e = static_cast<ElemType>(t);
  return e == ElemType::Float || e == ElemType::Float16 ||
         e == ElemType::BFloat16 || e == ElemType::Double;
}

std::optional<int64_t> numel(const std::vector<SymExpr> &dims) {
  int64_t n = 1;
  for (const SymExpr &d : dims) {
    auto c = d.constant();
    if (!c || *c < 0 || (*c && n > kMaxDataElements * 1024 / *c))
      return std::nullopt;
    n *= *c;
  }
  return n;
}

SymExpr product(const std::vector<SymExpr> &dims, size_t b, size_t e) {
  SymExpr p(1);
  for (size_t i = b; i < e && i < dims.size(); ++i)
    p = p * dims[i];
  return p;
}

/// Normalizes an axis against `rank`; false when out of range.
bool normAxis(int64_t &axis, int64_t rank) {
  if (axis < 0)
    axis += rank;
  return axis >= 0 && axis < rank;
}

/// Multidirectional (numpy) broadcast of shapes.
bool broadcastDims(Ctx &c, const std::vector<std::vector<SymExpr>> &shapes,
                   std::vector<SymExpr> &out) {
  size_t rank = 0;
  for (const auto &s : shapes)
    rank = std::max(rank, s.size());
  out.assign(rank, SymExpr(1));
  for (size_t i = 0; i < rank; ++i) {
    std::optional<SymExpr> dim;
    for (const auto &s : shapes) {
      if (s.size() + i < rank)
        continue;
      const SymExpr &d = s[s.size() + i - rank];
      if (d == SymExpr(1))
        continue;
      if (!dim) {
        dim = d;
      } else if (*dim != d) {
        auto a = dim->constant(), b = d.constant();
        if (a && b)
          return c.fail("incompatible dimensions " + std::to_string(*a) +
                        " and " + std::to_string(*b) + " in broadcasting " +
                        shapeString(shapes[0]) + " with " +
                        shapeString(shapes.back()));
        if (b) // a constant is more specific than a symbol
          dim = d;
      }
    }
    out[i] = dim.value_or(SymExpr(1));
  }
  return true;
}

/// Element-wise data of a broadcast op whose operands carry data (scalars
/// and equal-shaped vectors).
std::optional<std::vector<SymExpr>> elementwiseData(
    const std::vector<const ValueInfo *> &ins, size_t count,
    const std::function<std::optional<SymExpr>(const std::vector<SymExpr> &)>
        &fn) {
  std::vector<SymExpr> out;
  for (const ValueInfo *v : ins)
    if (!v || !v->data || (v->data->size() != 1 && v->data->size() != count))
      return std::nullopt;
  for (size_t i = 0; i < count; ++i) {
    std::vector<SymExpr> args;
    for (const ValueInfo *v : ins)
      args.push_back((*v->data)[v->data->size() == 1 ? 0 : i]);
    auto r = fn(args);
    if (!r)
      return std::nullopt;
    out.push_back(*r);
  }
  return out;
}

//===----------------------------------------------------------------------===//
// Element-wise
//===----------------------------------------------------------------------===//

bool inferSameAsInput(Ctx &c) {
  const ValueInfo *x = c.ranked(0);
  if (!x)
    return false;
  c.result(0) = *x;
  c.result(0).data.reset();
  return true;
}

/// Unary ops that keep the integer values exactly.
bool inferIdentityLike(Ctx &c) {
  const ValueInfo *x = c.ranked(0);
  if (!x)
    return false;
  c.result(0) = *x;
  return true;
}

bool inferNeg(Ctx &c) {
  if (!inferSameAsInput(c))
    return false;
  const ValueInfo *x = c.input(0);
  if (x->data) {
    std::vector<SymExpr> d;
    for (const SymExpr &e : *x->data)
      d.push_back(SymExpr(0) - e);
    c.result(0).data = d;
  }
  return true;
}

bool inferBroadcast(Ctx &c, bool boolResult) {
  std::vector<std::vector<SymExpr>> shapes;
  std::vector<const ValueInfo *> ins;
  for (size_t i = 0; i < c.in.size(); ++i) {
    const ValueInfo *v = c.ranked(i);
    if (!v)
      return false;
    shapes.push_back(v->dims);
    ins.push_back(v);
  }
  if (ins.empty())
    return c.fail("needs at least one input");
  // Where's result type is that of its value operands.
  bool where = c.node.opType == "Where";
  const std::string &t = c.node.opType;
  size_t arity = where ? 3 : t == "Not" ? 1 : t == "Min" || t == "Max" ? 0 : 2;
  if (arity && ins.size() != arity)
    return c.fail("expects " + std::to_string(arity) + " inputs, got " +
                  std::to_string(ins.size()));
  int32_t elem = boolResult ? static_cast<int32_t>(ElemType::Bool)
                            : ins[where ? 1 : 0]->elemType;
  for (size_t i = where ? 1 : 0; i < ins.size() && !boolResult; ++i)
    if (ins[i]->elemType != elem &&
        !(c.node.opType == "Pow" && i == 1)) // Pow's exponent may differ
      return c.fail("operand types differ (ONNX type " +
                    std::to_string(ins[i]->elemType) + " and " +
                    std::to_string(elem) + ")");
  std::vector<SymExpr> dims;
  if (!broadcastDims(c, shapes, dims))
    return false;
  c.setResult(0, elem, dims);
  auto count = numel(dims);
  if (!count || *count > kMaxDataElements || dims.size() > 1)
    return true;
  const std::string &op = c.node.opType;
  c.result(0).data = elementwiseData(
      ins, *count,
      [&](const std::vector<SymExpr> &a) -> std::optional<SymExpr> {
        if (op == "Where") {
          auto cond = a[0].constant();
          if (!cond)
            return std::nullopt;
          return *cond ? a[1] : a[2];
        }
        if (op == "Not") {
          auto v = a[0].constant();
          return v ? std::optional<SymExpr>(SymExpr(!*v)) : std::nullopt;
        }
        if (op == "And" || op == "Or") {
          auto x = a[0].constant(), y = a[1].constant();
          if (!x || !y)
            return std::nullopt;
          return SymExpr(op == "And" ? (*x && *y) : (*x || *y));
        }
        if (a.size() == 1)
          return a[0];
        std::optional<SymExpr> r = a[0];
        for (size_t i = 1; i < a.size() && r; ++i)
          r = symBinary(op == "LessOrEqual" || op == "GreaterOrEqual"
                            ? std::string()
                            : op,
                        *r, a[i]);
        return r;
      });
  if (!isIntType(elem) && !boolResult)
    c.result(0).data.reset();
  return true;
}

bool inferCast(Ctx &c) {
  const ValueInfo *x = c.ranked(0);
  if (!x)
    return false;
  int64_t to = c.attrInt("to", 0);
  if (elemSize(static_cast<int32_t>(to)) == 0)
    return c.fail("cast to unsupported ONNX type " + std::to_string(to));
  c.setResult(0, static_cast<int32_t>(to), x->dims);
  // Integer values stay exact through casts between integer types and to
  // float (a sequence length cast for a float Range, say).
  bool toFloat = static_cast<ElemType>(to) == ElemType::Float ||
                 static_cast<ElemType>(to) == ElemType::Double;
  if (x->data && (isIntType(static_cast<int32_t>(to)) || toFloat))
    c.result(0).data = x->data;
  return true;
}

bool inferClip(Ctx &c) { return inferSameAsInput(c); }

//===----------------------------------------------------------------------===//
// Linear algebra, reductions
//===----------------------------------------------------------------------===//

bool inferMatMul(Ctx &c) {
  const ValueInfo *a = c.ranked(0), *b = c.ranked(1);
  if (!a || !b)
    return false;
  if (a->elemType != b->elemType)
    return c.fail("operand types differ");
  std::vector<SymExpr> da = a->dims, db = b->dims;
  if (da.empty() || db.empty())
    return c.fail("MatMul of a scalar");
  bool va = da.size() == 1, vb = db.size() == 1;
  if (va)
    da.insert(da.begin(), SymExpr(1));
  if (vb)
    db.push_back(SymExpr(1));
  const SymExpr &k1 = da.back(), &k2 = db[db.size() - 2];
  if (k1 != k2 && k1.isConst() && k2.isConst())
    return c.fail("incompatible dimensions for matrix multiplication: " +
                  shapeString(a->dims) + " x " + shapeString(b->dims));
  std::vector<SymExpr> batch;
  if (!broadcastDims(c,
                     {std::vector<SymExpr>(da.begin(), da.end() - 2),
                      std::vector<SymExpr>(db.begin(), db.end() - 2)},
                     batch))
    return false;
  if (!va)
    batch.push_back(da[da.size() - 2]);
  if (!vb)
    batch.push_back(db.back());
  c.setResult(0, a->elemType, batch);
  return true;
}

bool inferGemm(Ctx &c) {
  const ValueInfo *a = c.ranked(0), *b = c.ranked(1);
  if (!a || !b)
    return false;
  if (a->dims.size() != 2 || b->dims.size() != 2)
    return c.fail("Gemm operands must be 2-D, got " + shapeString(a->dims) +
                  " and " + shapeString(b->dims));
  bool ta = c.attrInt("transA", 0), tb = c.attrInt("transB", 0);
  SymExpr m = a->dims[ta ? 1 : 0], k1 = a->dims[ta ? 0 : 1];
  SymExpr k2 = b->dims[tb ? 1 : 0], n = b->dims[tb ? 0 : 1];
  if (k1 != k2 && k1.isConst() && k2.isConst())
    return c.fail("incompatible dimensions for Gemm: " + shapeString(a->dims) +
                  (ta ? "^T" : "") + " x " + shapeString(b->dims) +
                  (tb ? "^T" : ""));
  c.setResult(0, a->elemType, {m, n});
  return true;
}

bool inferReduce(Ctx &c, bool axesInput) {
  const ValueInfo *x = c.ranked(0);
  if (!x)
    return false;
  std::optional<std::vector<int64_t>> axes;
  if (axesInput) {
    if (c.input(1)) {
      axes = c.constInts(1);
      if (!axes)
        return c.fail("axes must be a constant");
    }
  } else {
    axes = c.attrInts("axes");
  }
  int64_t rank = x->dims.size();
  bool keep = c.attrInt("keepdims", 1);
  std::vector<bool> reduced(rank, false);
  if (!axes || axes->empty()) {
    if (c.attrInt("noop_with_empty_axes", 0)) {
      c.result(0) = *x;
      c.result(0).data.reset();
      return true;
    }
    reduced.assign(rank, true);
  } else {
    for (int64_t a : *axes) {
      if (!normAxis(a, rank))
        return c.fail("axis " + std::to_string(a) + " out of range");
      reduced[a] = true;
    }
  }
  std::vector<SymExpr> dims;
  for (int64_t i = 0; i < rank; ++i)
    if (!reduced[i])
      dims.push_back(x->dims[i]);
    else if (keep)
      dims.push_back(SymExpr(1));
  c.setResult(0, x->elemType, dims);
  // ReduceSum / ReduceProd of a small integer vector (shape arithmetic).
  if (x->data && rank == 1 && reduced[0] && isIntType(x->elemType)) {
    bool prod = c.node.opType == "ReduceProd";
    if (prod || c.node.opType == "ReduceSum") {
      SymExpr acc(prod ? 1 : 0);
      for (const SymExpr &e : *x->data)
        acc = prod ? acc * e : acc + e;
      c.result(0).data = std::vector<SymExpr>{acc};
    }
  }
  return true;
}

bool inferSoftmax(Ctx &c) {
  const ValueInfo *x = c.ranked(0);
  if (!x)
    return false;
  int64_t axis = c.attrInt("axis", -1);
  if (!normAxis(axis, x->dims.size()))
    return c.fail("axis out of range");
  return inferSameAsInput(c);
}

//===----------------------------------------------------------------------===//
// Shapes and data movement
//===----------------------------------------------------------------------===//

bool inferShape(Ctx &c, bool startEnd) {
  const ValueInfo *x = c.ranked(0);
  if (!x)
    return false;
  int64_t rank = x->dims.size();
  int64_t start = startEnd ? c.attrInt("start", 0) : 0;
  int64_t end = startEnd ? c.attrInt("end", rank) : rank;
  if (start < 0)
    start += rank;
  if (end < 0)
    end += rank;
  start = std::clamp<int64_t>(start, 0, rank);
  end = std::clamp<int64_t>(end, start, rank);
  c.setResult(0, static_cast<int32_t>(ElemType::Int64), {SymExpr(end - start)});
  c.result(0).data =
      std::vector<SymExpr>(x->dims.begin() + start, x->dims.begin() + end);
  return true;
}

bool inferSize(Ctx &c) {
  const ValueInfo *x = c.ranked(0);
  if (!x)
    return false;
  c.setResult(0, static_cast<int32_t>(ElemType::Int64), {});
  c.result(0).data = std::vector<SymExpr>{product(x->dims, 0, x->dims.size())};
  return true;
}

bool inferReshape(Ctx &c) {
  const ValueInfo *x = c.ranked(0), *s = c.ranked(1);
  if (!x || !s)
    return false;
  if (s->dims.size() != 1)
    return c.fail("the shape input must be 1-D");
  bool allowZero = c.opset >= 14 && c.attrInt("allowzero", 0);
  std::vector<SymExpr> dims;
  if (!s->data) {
    auto n = s->dims[0].constant();
    if (!n)
      return c.fail("the target rank is not known");
    for (int64_t i = 0; i < *n; ++i)
      dims.push_back(c.fresh());
  } else {
    int64_t inferred = -1;
    for (size_t i = 0; i < s->data->size(); ++i) {
      const SymExpr &d = (*s->data)[i];
      auto v = d.constant();
      if (v && *v == 0 && !allowZero) {
        if (i >= x->dims.size())
          return c.fail("0 in the target shape copies a dimension the input "
                        "does not have");
        dims.push_back(x->dims[i]);
      } else if (v && *v == -1) {
        if (inferred >= 0)
          return c.fail("more than one -1 in the target shape");
        inferred = i;
        dims.push_back(SymExpr(1));
      } else if (v && *v < -1) {
        return c.fail("negative dimension " + std::to_string(*v) +
                      " in the target shape");
      } else {
        dims.push_back(d);
      }
    }
    SymExpr total = product(x->dims, 0, x->dims.size());
    if (inferred >= 0) {
      SymExpr known = product(dims, 0, dims.size());
      auto q = total.divExact(known);
      if (!q && known.isConst() && total.isConst())
        return c.fail("cannot reshape " + shapeString(x->dims) + " to " +
                      shapeString(*s->data));
      dims[inferred] = q ? *q : c.fresh();
    } else {
      auto a = total.constant(), b = product(dims, 0, dims.size()).constant();
      if (a && b && *a != *b)
        return c.fail("cannot reshape " + shapeString(x->dims) + " (" +
                      std::to_string(*a) + " elements) to " +
                      shapeString(dims) + " (" + std::to_string(*b) + ")");
    }
  }
  c.setResult(0, x->elemType, dims);
  c.result(0).data = x->data;
  return true;
}

bool inferTranspose(Ctx &c) {
  const ValueInfo *x = c.ranked(0);
  if (!x)
    return false;
  int64_t rank = x->dims.size();
  std::vector<int64_t> perm;
  if (auto p = c.attrInts("perm")) {
    perm = *p;
  } else {
    for (int64_t i = rank - 1; i >= 0; --i)
      perm.push_back(i);
  }
  if (static_cast<int64_t>(perm.size()) != rank)
    return c.fail("perm has " + std::to_string(perm.size()) +
                  " entries for rank " + std::to_string(rank));
  std::vector<bool> seen(rank, false);
  std::vector<SymExpr> dims;
  for (int64_t p : perm) {
    if (!normAxis(p, rank) || seen[p])
      return c.fail("perm is not a permutation");
    seen[p] = true;
    dims.push_back(x->dims[p]);
  }
  c.setResult(0, x->elemType, dims);
  return true;
}

std::optional<std::vector<int64_t>> axesOf(Ctx &c, size_t input,
                                           bool fromInput) {
  if (fromInput)
    return c.input(input) ? c.constInts(input) : std::nullopt;
  return c.attrInts("axes");
}

bool inferUnsqueeze(Ctx &c) {
  const ValueInfo *x = c.ranked(0);
  if (!x)
    return false;
  auto axes = axesOf(c, 1, c.opset >= 13);
  if (!axes)
    return c.fail("axes must be a constant");
  int64_t rank = x->dims.size() + axes->size();
  std::vector<bool> inserted(rank, false);
  for (int64_t a : *axes) {
    if (!normAxis(a, rank) || inserted[a])
      return c.fail("axis out of range or repeated");
    inserted[a] = true;
  }
  std::vector<SymExpr> dims;
  size_t j = 0;
  for (int64_t i = 0; i < rank; ++i)
    dims.push_back(inserted[i] ? SymExpr(1) : x->dims[j++]);
  c.setResult(0, x->elemType, dims);
  c.result(0).data = x->data;
  return true;
}

bool inferSqueeze(Ctx &c) {
  const ValueInfo *x = c.ranked(0);
  if (!x)
    return false;
  bool fromInput = c.opset >= 13;
  auto axes = axesOf(c, 1, fromInput);
  if (fromInput && c.input(1) && !axes)
    return c.fail("axes must be a constant");
  int64_t rank = x->dims.size();
  std::vector<bool> removed(rank, false);
  if (!axes) {
    for (int64_t i = 0; i < rank; ++i)
      removed[i] = x->dims[i] == SymExpr(1);
  } else {
    for (int64_t a : *axes) {
      if (!normAxis(a, rank))
        return c.fail("axis out of range");
      if (x->dims[a].isConst() && x->dims[a] != SymExpr(1))
        return c.fail("cannot squeeze dimension " + x->dims[a].str());
      removed[a] = true;
    }
  }
  std::vector<SymExpr> dims;
  for (int64_t i = 0; i < rank; ++i)
    if (!removed[i])
      dims.push_back(x->dims[i]);
  c.setResult(0, x->elemType, dims);
  c.result(0).data = x->data;
  return true;
}

bool inferConcat(Ctx &c) {
  if (c.in.empty())
    return c.fail("needs at least one input");
  const ValueInfo *first = c.ranked(0);
  if (!first)
    return false;
  int64_t rank = first->dims.size();
  int64_t axis = c.attrInt("axis", 0);
  if (!normAxis(axis, rank))
    return c.fail("axis out of range");
  std::vector<SymExpr> dims = first->dims;
  dims[axis] = SymExpr(0);
  std::vector<SymExpr> data;
  bool haveData = rank == 1;
  for (size_t i = 0; i < c.in.size(); ++i) {
    const ValueInfo *v = c.ranked(i);
    if (!v)
      return false;
    if (static_cast<int64_t>(v->dims.size()) != rank ||
        v->elemType != first->elemType)
      return c.fail("inputs differ in rank or type");
    for (int64_t d = 0; d < rank; ++d) {
      if (d == axis)
        continue;
      if (v->dims[d] != dims[d] && v->dims[d].isConst() && dims[d].isConst())
        return c.fail("inputs differ in dimension " + std::to_string(d) + ": " +
                      shapeString(first->dims) + " and " +
                      shapeString(v->dims));
      if (!dims[d].isConst() && v->dims[d].isConst())
        dims[d] = v->dims[d];
    }
    dims[axis] = dims[axis] + v->dims[axis];
    if (haveData && v->data)
      data.insert(data.end(), v->data->begin(), v->data->end());
    else
      haveData = false;
  }
  c.setResult(0, first->elemType, dims);
  if (haveData && static_cast<int64_t>(data.size()) <= kMaxDataElements)
    c.result(0).data = data;
  return true;
}

/// The length of x[start:end:step] along a dimension of size `dim`.
SymExpr sliceLength(Ctx &c, const SymExpr &dim, const SymExpr &start,
                    const SymExpr &end, int64_t step) {
  auto d = dim.constant(), s = start.constant(), e = end.constant();
  if (d && s && e) {
    int64_t n = *d, b = *s, f = *e;
    if (step > 0) {
      b = b < 0 ? std::max<int64_t>(b + n, 0) : std::min(b, n);
      f = f < 0 ? std::max<int64_t>(f + n, 0) : std::min(f, n);
      return SymExpr(f > b ? (f - b + step - 1) / step : 0);
    }
    b = b < 0 ? std::max<int64_t>(b + n, -1) : std::min(b, n - 1);
    f = f < 0 ? std::max<int64_t>(f + n, -1) : std::min(f, n - 1);
    return SymExpr(b > f ? (b - f - step - 1) / -step : 0);
  }
  if (step != 1)
    return c.fresh();
  // Symbolic dimension or bounds, step 1. "To the end" bounds are large
  // constants; a negative constant counts from the end.
  SymExpr b = start, f = end;
  if (s && *s < 0)
    b = dim + SymExpr(*s);
  if (e && *e >= kBigEnd)
    f = dim;
  else if (e && *e < 0)
    f = dim + SymExpr(*e);
  return f - b;
}

bool inferSlice(Ctx &c) {
  const ValueInfo *x = c.ranked(0);
  if (!x)
    return false;
  int64_t rank = x->dims.size();
  const ValueInfo *starts = c.input(1), *ends = c.input(2);
  if (!starts || !ends)
    return c.fail("starts and ends are required");
  std::optional<std::vector<int64_t>> axes =
      c.input(3) ? c.constInts(3) : std::nullopt;
  std::optional<std::vector<int64_t>> steps =
      c.input(4) ? c.constInts(4) : std::nullopt;
  std::vector<SymExpr> dims = x->dims;
  if ((c.input(3) && !axes) || (c.input(4) && !steps) || !starts->data ||
      !ends->data) {
    // Unknown bounds: every dimension that may be sliced is unknown.
    for (int64_t i = 0; i < rank; ++i)
      if (!axes || std::count(axes->begin(), axes->end(), i) ||
          std::count(axes->begin(), axes->end(), i - rank))
        dims[i] = c.fresh();
    c.setResult(0, x->elemType, dims);
    return true;
  }
  size_t n = starts->data->size();
  if (ends->data->size() != n || (axes && axes->size() != n) ||
      (steps && steps->size() != n))
    return c.fail("starts, ends, axes and steps differ in length");
  for (size_t i = 0; i < n; ++i) {
    int64_t axis = axes ? (*axes)[i] : static_cast<int64_t>(i);
    int64_t step = steps ? (*steps)[i] : 1;
    if (!normAxis(axis, rank))
      return c.fail("axis out of range");
    if (step == 0)
      return c.fail("step 0");
    dims[axis] = sliceLength(c, x->dims[axis], (*starts->data)[i],
                             (*ends->data)[i], step);
  }
  c.setResult(0, x->elemType, dims);
  // Data of 1-D integer vectors with constant bounds.
  if (x->data && rank == 1 && n == 1) {
    auto len = dims[0].constant();
    auto s = (*starts->data)[0].constant();
    int64_t step = steps ? (*steps)[0] : 1;
    auto size = x->dims[0].constant();
    if (len && s && size) {
      int64_t b = *s < 0 ? *s + *size : *s;
      if (step > 0)
        b = std::clamp<int64_t>(b, 0, *size);
      else
        b = std::clamp<int64_t>(b, -1, *size - 1);
      std::vector<SymExpr> data;
      for (int64_t i = 0; i < *len; ++i)
        data.push_back((*x->data)[b + i * step]);
      c.result(0).data = data;
    }
  }
  return true;
}

bool inferGather(Ctx &c) {
  const ValueInfo *x = c.ranked(0), *idx = c.ranked(1);
  if (!x || !idx)
    return false;
  int64_t rank = x->dims.size();
  int64_t axis = c.attrInt("axis", 0);
  if (!normAxis(axis, rank))
    return c.fail("axis out of range");
  if (!isIntType(idx->elemType))
    return c.fail("indices must be integers");
  std::vector<SymExpr> dims(x->dims.begin(), x->dims.begin() + axis);
  dims.insert(dims.end(), idx->dims.begin(), idx->dims.end());
  dims.insert(dims.end(), x->dims.begin() + axis + 1, x->dims.end());
  c.setResult(0, x->elemType, dims);
  auto indices = c.constInts(1);
  if (indices) {
    auto extent = x->dims[axis].constant();
    for (int64_t i : *indices)
      if (extent && (i < -*extent || i >= *extent))
        return c.fail("index " + std::to_string(i) + " out of range [0, " +
                      std::to_string(*extent) + ")");
    if (x->data && rank == 1 && extent) {
      std::vector<SymExpr> data;
      for (int64_t i : *indices)
        data.push_back((*x->data)[i < 0 ? i + *extent : i]);
      c.result(0).data = data;
    }
  }
  return true;
}

bool inferExpand(Ctx &c) {
  const ValueInfo *x = c.ranked(0), *s = c.ranked(1);
  if (!x || !s)
    return false;
  if (s->dims.size() != 1)
    return c.fail("the shape input must be 1-D");
  std::vector<SymExpr> target;
  if (s->data) {
    target = *s->data;
  } else {
    auto n = s->dims[0].constant();
    if (!n)
      return c.fail("the target rank is not known");
    for (int64_t i = 0; i < *n; ++i)
      target.push_back(c.fresh());
  }
  std::vector<SymExpr> dims;
  if (!broadcastDims(c, {x->dims, target}, dims))
    return false;
  c.setResult(0, x->elemType, dims);
  auto count = numel(dims);
  if (x->data && x->data->size() == 1 && count && *count <= kMaxDataElements)
    c.result(0).data = std::vector<SymExpr>(*count, (*x->data)[0]);
  return true;
}

bool inferTile(Ctx &c) {
  const ValueInfo *x = c.ranked(0);
  if (!x)
    return false;
  auto reps = c.constInts(1);
  std::vector<SymExpr> dims = x->dims;
  if (!reps) {
    for (SymExpr &d : dims)
      d = c.fresh();
  } else {
    if (reps->size() != dims.size())
      return c.fail("repeats has the wrong length");
    for (size_t i = 0; i < dims.size(); ++i)
      dims[i] = dims[i] * SymExpr((*reps)[i]);
  }
  c.setResult(0, x->elemType, dims);
  return true;
}

bool inferRange(Ctx &c) {
  const ValueInfo *s = c.ranked(0), *l = c.ranked(1), *d = c.ranked(2);
  if (!s || !l || !d)
    return false;
  SymExpr len = c.fresh();
  std::optional<std::vector<SymExpr>> data;
  if (s->data && l->data && d->data && s->data->size() == 1 &&
      l->data->size() == 1 && d->data->size() == 1) {
    const SymExpr &a = (*s->data)[0], &b = (*l->data)[0];
    auto delta = (*d->data)[0].constant();
    if (delta && *delta == 0)
      return c.fail("delta 0");
    auto ca = a.constant(), cb = b.constant();
    if (delta && ca && cb) {
      int64_t n = std::max<int64_t>(
          0, (*cb - *ca + *delta - (*delta > 0 ? 1 : -1)) / *delta);
      len = SymExpr(n);
      if (n <= kMaxDataElements && isIntType(s->elemType)) {
        data.emplace();
        for (int64_t i = 0; i < n; ++i)
          data->push_back(SymExpr(*ca + i * *delta));
      }
    } else if (delta && *delta == 1) {
      len = b - a;
    }
  }
  c.setResult(0, s->elemType, {len});
  c.result(0).data = data;
  return true;
}

bool inferConstantOfShape(Ctx &c) {
  const ValueInfo *s = c.ranked(0);
  if (!s)
    return false;
  if (s->dims.size() != 1)
    return c.fail("the shape input must be 1-D");
  int32_t elem = static_cast<int32_t>(ElemType::Float);
  std::optional<int64_t> intValue = 0;
  if (const Attribute *v = c.attr("value")) {
    if (v->kind != Attribute::Tensor)
      return c.fail("value must be a tensor");
    elem = v->tensorType;
    intValue.reset();
    if (isIntType(elem) && elemSize(elem) <= 8 &&
        v->tensorBytes.size() == static_cast<size_t>(elemSize(elem))) {
      int64_t x = 0;
      std::memcpy(&x, v->tensorBytes.data(), elemSize(elem));
      if (elemSize(elem) == 4)
        x = static_cast<int32_t>(x);
      intValue = x;
    }
  }
  std::vector<SymExpr> dims;
  if (s->data) {
    dims = *s->data;
  } else {
    auto n = s->dims[0].constant();
    if (!n)
      return c.fail("the target rank is not known");
    for (int64_t i = 0; i < *n; ++i)
      dims.push_back(c.fresh());
  }
  c.setResult(0, elem, dims);
  auto count = numel(dims);
  if (isIntType(elem) && intValue && count && *count <= kMaxDataElements)
    c.result(0).data = std::vector<SymExpr>(*count, SymExpr(*intValue));
  return true;
}

bool inferConstant(Ctx &c) {
  if (const Attribute *v = c.attr("value")) {
    if (v->kind != Attribute::Tensor)
      return c.fail("value must be a tensor");
    std::vector<SymExpr> dims(v->tensorDims.begin(), v->tensorDims.end());
    c.setResult(0, v->tensorType, dims);
    int64_t size = elemSize(v->tensorType);
    auto count = numel(dims);
    if (static_cast<ElemType>(v->tensorType) == ElemType::Float && count &&
        *count <= kMaxDataElements &&
        v->tensorBytes.size() == static_cast<size_t>(*count * 4)) {
      // Integral float constants (Range bounds and steps) carry values.
      std::vector<SymExpr> data;
      for (int64_t i = 0; i < *count; ++i) {
        float f;
        std::memcpy(&f, v->tensorBytes.data() + i * 4, 4);
        // Range check first: casting -inf, NaN or 1e38 to int64 is
        // undefined behaviour.
        if (!(std::abs(f) <= 1e9f) ||
            f != static_cast<float>(static_cast<int64_t>(f)))
          return true;
        data.push_back(SymExpr(static_cast<int64_t>(f)));
      }
      c.result(0).data = data;
      return true;
    }
    if (isIntType(v->tensorType) && count && *count <= kMaxDataElements &&
        v->tensorBytes.size() == static_cast<size_t>(*count * size)) {
      std::vector<SymExpr> data;
      for (int64_t i = 0; i < *count; ++i) {
        int64_t x = 0;
        std::memcpy(&x, v->tensorBytes.data() + i * size, size);
        if (size == 4)
          x = static_cast<int32_t>(x);
        else if (size == 1)
          x = static_cast<int8_t>(x);
        data.push_back(SymExpr(x));
      }
      c.result(0).data = data;
    }
    return true;
  }
  if (const Attribute *v = c.attr("value_int")) {
    c.setResult(0, static_cast<int32_t>(ElemType::Int64), {});
    c.result(0).data = std::vector<SymExpr>{SymExpr(v->i)};
    return true;
  }
  if (const Attribute *v = c.attr("value_ints")) {
    c.setResult(0, static_cast<int32_t>(ElemType::Int64),
                {SymExpr(static_cast<int64_t>(v->ints.size()))});
    if (static_cast<int64_t>(v->ints.size()) <= kMaxDataElements)
      c.result(0).data = std::vector<SymExpr>(v->ints.begin(), v->ints.end());
    return true;
  }
  if (c.attr("value_float")) {
    c.setResult(0, static_cast<int32_t>(ElemType::Float), {});
    return true;
  }
  if (const Attribute *v = c.attr("value_floats")) {
    c.setResult(0, static_cast<int32_t>(ElemType::Float),
                {SymExpr(static_cast<int64_t>(v->floats.size()))});
    return true;
  }
  return c.fail("only value, value_int(s) and value_float(s) constants are "
                "supported");
}

bool inferSplit(Ctx &c) {
  const ValueInfo *x = c.ranked(0);
  if (!x)
    return false;
  int64_t rank = x->dims.size();
  int64_t axis = c.attrInt("axis", 0);
  if (!normAxis(axis, rank))
    return c.fail("axis out of range");
  size_t outs = c.node.outputs.size();
  std::vector<SymExpr> sizes;
  if (c.input(1)) {
    auto split = c.constInts(1);
    if (!split)
      return c.fail("split sizes must be constants");
    sizes.assign(split->begin(), split->end());
  } else if (auto split = c.attrInts("split"); split && c.opset < 13) {
    sizes.assign(split->begin(), split->end());
  } else {
    int64_t parts = static_cast<int64_t>(outs);
    if (c.opset >= 18 && c.attr("num_outputs"))
      parts = c.attrInt("num_outputs", parts);
    if (parts <= 0)
      return c.fail("no outputs");
    auto d = x->dims[axis].constant();
    if (d && parts > 0 && *d % parts) {
      // Opset 18: the last chunk is smaller.
      int64_t chunk = (*d + parts - 1) / parts;
      for (int64_t i = 0; i < parts; ++i)
        sizes.push_back(SymExpr(std::min(chunk, *d - i * chunk)));
    } else {
      auto q = x->dims[axis].divExact(SymExpr(parts));
      for (int64_t i = 0; i < parts; ++i)
        sizes.push_back(q ? *q : c.fresh());
    }
  }
  if (sizes.size() != outs)
    return c.fail(std::to_string(sizes.size()) + " split sizes for " +
                  std::to_string(outs) + " outputs");
  SymExpr total(0);
  for (size_t i = 0; i < outs; ++i) {
    std::vector<SymExpr> dims = x->dims;
    dims[axis] = sizes[i];
    total = total + sizes[i];
    c.setResult(i, x->elemType, dims);
  }
  if (total != x->dims[axis] && total.isConst() && x->dims[axis].isConst())
    return c.fail("split sizes sum to " + total.str() + ", not " +
                  x->dims[axis].str());
  return true;
}

//===----------------------------------------------------------------------===//
// Fused decoder ops: onnxruntime contrib ops and opset 23
//===----------------------------------------------------------------------===//

/// SimplifiedLayerNormalization / RMSNormalization: output 0 like X, the
/// optional statistics outputs reduced from `axis` on.
bool inferNorm(Ctx &c, bool skip) {
  const ValueInfo *x = c.ranked(0);
  if (!x || !c.ranked(skip ? 2 : 1))
    return false;
  if (skip && !c.ranked(1))
    return false;
  if (!isFloatType(x->elemType))
    return c.fail("input must be floating point");
  int64_t axis = c.attrInt("axis", -1);
  if (!normAxis(axis, x->dims.size()))
    return c.fail("axis out of range");
  c.setResult(0, x->elemType, x->dims);
  std::vector<SymExpr> stat(x->dims.begin(), x->dims.begin() + axis);
  stat.resize(x->dims.size(), SymExpr(1));
  for (size_t i = 1; i < c.node.outputs.size(); ++i) {
    if (skip && i == 3)
      c.setResult(i, x->elemType, x->dims); // input + skip (+ bias)
    else
      c.setResult(i, static_cast<int32_t>(ElemType::Float), stat);
  }
  return true;
}

bool inferRotary(Ctx &c) {
  const ValueInfo *x = c.ranked(0);
  if (!x)
    return false;
  if (x->dims.size() != 3 && x->dims.size() != 4)
    return c.fail("input must be 3-D or 4-D, got " + shapeString(x->dims));
  c.setResult(0, x->elemType, x->dims);
  return true;
}

/// The length of a KV sequence after appending `len` new positions to the
/// optional past [batch, heads, past, head_size] at input `pastIndex`.
SymExpr presentLength(Ctx &c, size_t pastIndex, const SymExpr &len) {
  const ValueInfo *past = c.input(pastIndex);
  if (past && past->ranked && past->dims.size() == 4)
    return past->dims[2] + len;
  return len;
}

bool inferGroupQueryAttention(Ctx &c) {
  const ValueInfo *q = c.ranked(0);
  if (!q)
    return false;
  int64_t heads = c.attrInt("num_heads", 0), kv = c.attrInt("kv_num_heads", 0);
  if (heads <= 0 || kv <= 0 || heads % kv)
    return c.fail("num_heads and kv_num_heads must be positive, num_heads a "
                  "multiple of kv_num_heads");
  if (q->dims.size() != 3)
    return c.fail("query must be [batch, sequence, hidden]");
  auto width = q->dims[2].constant();
  bool packed = !c.input(1);
  int64_t parts = packed ? heads + 2 * kv : heads;
  if (!width || *width % parts)
    return c.fail("query width " + q->dims[2].str() + " is not a multiple of " +
                  std::to_string(parts) + " heads");
  int64_t headSize = *width / parts;
  c.setResult(0, q->elemType,
              {q->dims[0], q->dims[1], SymExpr(heads * headSize)});
  SymExpr total = presentLength(c, 3, q->dims[1]);
  if (auto t = c.input(6); t && t->data && t->data->size() == 1)
    total = (*t->data)[0];
  for (size_t i = 1; i < 3 && i < c.node.outputs.size(); ++i)
    c.setResult(i, q->elemType,
                {q->dims[0], SymExpr(kv), total, SymExpr(headSize)});
  return true;
}

bool inferMultiHeadAttention(Ctx &c) {
  const ValueInfo *q = c.ranked(0), *k = c.ranked(1), *v = c.ranked(2);
  if (!q || !k || !v)
    return false;
  int64_t heads = c.attrInt("num_heads", 0);
  if (heads <= 0)
    return c.fail("num_heads must be positive");
  if (q->dims.size() != 3 || k->dims.size() != 3 || v->dims.size() != 3)
    return c.fail("query, key and value must be [batch, sequence, hidden]");
  auto width = q->dims[2].constant();
  if (!width || *width % heads)
    return c.fail("query width is not a multiple of num_heads");
  c.setResult(0, q->elemType, {q->dims[0], q->dims[1], v->dims[2]});
  SymExpr total = presentLength(c, 6, k->dims[1]);
  for (size_t i = 1; i < 3 && i < c.node.outputs.size(); ++i)
    c.setResult(i, q->elemType,
                {q->dims[0], SymExpr(heads), total, SymExpr(*width / heads)});
  return true;
}

/// Opset 23 Attention: Q [B, Hq, S, D] or [B, S, Hq * D] (q_num_heads).
bool inferAttention23(Ctx &c) {
  const ValueInfo *q = c.ranked(0), *k = c.ranked(1), *v = c.ranked(2);
  if (!q || !k || !v)
    return false;
  size_t rank = q->dims.size();
  if ((rank != 3 && rank != 4) || k->dims.size() != rank ||
      v->dims.size() != rank)
    return c.fail("Q, K and V must all be 3-D or all 4-D");
  if (rank == 4) {
    c.setResult(0, q->elemType,
                {q->dims[0], q->dims[1], q->dims[2], v->dims[3]});
    SymExpr total = presentLength(c, 4, k->dims[2]);
    for (size_t i = 1; i < 3 && i < c.node.outputs.size(); ++i)
      c.setResult(i, q->elemType,
                  {k->dims[0], k->dims[1], total, (i == 1 ? k : v)->dims[3]});
  } else {
    int64_t qh = c.attrInt("q_num_heads", 0),
            kvh = c.attrInt("kv_num_heads", 0);
    if (qh <= 0 || kvh <= 0)
      return c.fail("3-D inputs need q_num_heads and kv_num_heads");
    auto kw = k->dims[2].constant(), vw = v->dims[2].constant();
    if (!kw || !vw || *kw % kvh || *vw % kvh)
      return c.fail("K/V width is not a multiple of kv_num_heads");
    c.setResult(0, q->elemType,
                {q->dims[0], q->dims[1], SymExpr(*vw / kvh * qh)});
    SymExpr total = presentLength(c, 4, k->dims[1]);
    for (size_t i = 1; i < 3 && i < c.node.outputs.size(); ++i)
      c.setResult(i, q->elemType,
                  {k->dims[0], SymExpr(kvh), total,
                   SymExpr((i == 1 ? *kw : *vw) / kvh)});
  }
  if (c.node.outputs.size() > 3)
    return c.fail("the qk_matmul_output output is not supported");
  return true;
}

//===----------------------------------------------------------------------===//
// The registry
//===----------------------------------------------------------------------===//

using InferFn = bool (*)(Ctx &);

struct Entry {
  const char *domain, *op;
  int64_t since;
  InferFn fn;
};

const std::vector<Entry> &registry() {
  static const std::vector<Entry> entries = [] {
    std::vector<Entry> e;
    auto on = [&](const char *op, int64_t since, InferFn fn,
                  const char *domain = "") {
      e.push_back({domain, op, since, fn});
    };
    for (const char *op : {"Sqrt", "Reciprocal", "Exp", "Log", "Sigmoid",
                           "Tanh", "Erf", "Cos", "Sin", "Abs", "Relu",
                           "Softplus", "Trilu", "CumSum", "IsInf", "IsNaN"})
      on(op, 1, inferSameAsInput);
    on("Neg", 1, inferNeg);
    on("Identity", 1, inferIdentityLike);
    on("Cast", 1, inferCast);
    on("Clip", 1, inferClip);
    for (const char *op :
         {"Add", "Sub", "Mul", "Div", "Pow", "Min", "Max", "Mod", "Where"})
      on(op, 1, [](Ctx &c) { return inferBroadcast(c, false); });
    for (const char *op : {"Equal", "Less", "Greater", "LessOrEqual",
                           "GreaterOrEqual", "And", "Or", "Not"})
      on(op, 1, [](Ctx &c) { return inferBroadcast(c, true); });
    on("MatMul", 1, inferMatMul);
    on("Gemm", 1, inferGemm);
    // Reductions: axes became an input in opset 13 (ReduceSum) and 18 (the
    // others).
    on("ReduceSum", 1, [](Ctx &c) { return inferReduce(c, false); });
    on("ReduceSum", 13, [](Ctx &c) { return inferReduce(c, true); });
    for (const char *op : {"ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd",
                           "ReduceSumSquare", "ReduceL2"}) {
      on(op, 1, [](Ctx &c) { return inferReduce(c, false); });
      on(op, 18, [](Ctx &c) { return inferReduce(c, true); });
    }
    on("Softmax", 13, inferSoftmax);
    on("Shape", 1, [](Ctx &c) { return inferShape(c, false); });
    on("Shape", 15, [](Ctx &c) { return inferShape(c, true); });
    on("Size", 1, inferSize);
    on("Reshape", 5, inferReshape);
    on("Transpose", 1, inferTranspose);
    on("Unsqueeze", 13, inferUnsqueeze);
    on("Squeeze", 13, inferSqueeze);
    on("Concat", 4, inferConcat);
    on("Slice", 10, inferSlice);
    on("Gather", 1, inferGather);
    on("Expand", 8, inferExpand);
    on("Tile", 6, inferTile);
    on("Range", 11, inferRange);
    on("Constant", 13, inferConstant);
    on("ConstantOfShape", 9, inferConstantOfShape);
    on("Split", 13, inferSplit);
    on("Split", 18, inferSplit); // num_outputs
    // Fused decoder ops. The onnxruntime-genai builder writes
    // SimplifiedLayerNormalization in the default domain.
    on("SimplifiedLayerNormalization", 1,
       [](Ctx &c) { return inferNorm(c, false); });
    on("RMSNormalization", 23, [](Ctx &c) { return inferNorm(c, false); });
    on("RotaryEmbedding", 23, inferRotary);
    on("Attention", 23, inferAttention23);
    const char *ms = "com.microsoft";
    on(
        "SimplifiedLayerNormalization", 1,
        [](Ctx &c) { return inferNorm(c, false); }, ms);
    on(
        "SkipSimplifiedLayerNormalization", 1,
        [](Ctx &c) { return inferNorm(c, true); }, ms);
    on("RotaryEmbedding", 1, inferRotary, ms);
    on("GroupQueryAttention", 1, inferGroupQueryAttention, ms);
    on("MultiHeadAttention", 1, inferMultiHeadAttention, ms);
    return e;
  }();
  return entries;
}

std::string domainName(const std::string &d) {
  return d.empty() || d == "ai.onnx" ? "" : d;
}

const Entry *lookup(const std::string &domain, const std::string &op,
                    int64_t opset, std::optional<int64_t> &firstSince) {
  const Entry *best = nullptr;
  std::string dom = domainName(domain);
  for (const Entry &e : registry()) {
    if (dom != e.domain || op != e.op)
      continue;
    if (!firstSince || e.since < *firstSince)
      firstSince = e.since;
    if (e.since <= opset && (!best || e.since > best->since))
      best = &e;
  }
  return best;
}

} // namespace

std::vector<OpSupport> supportedOps() {
  std::vector<OpSupport> out;
  for (const Entry &e : registry())
    out.push_back({e.domain, e.op, e.since});
  return out;
}

bool isSupported(const std::string &domain, const std::string &opType,
                 int64_t opset, std::string &why) {
  std::optional<int64_t> first;
  if (lookup(domain, opType, opset, first))
    return true;
  why = first ? "op " + opType + " is supported from opset " +
                    std::to_string(*first) + " on"
              : "unsupported op (not part of a SwiGLU decoder)";
  return false;
}

std::string inferNode(const Node &node, int64_t opset,
                      const std::vector<const ValueInfo *> &inputs,
                      std::vector<ValueInfo> &outputs,
                      const std::function<SymExpr()> &fresh) {
  std::optional<int64_t> first;
  const Entry *e = lookup(node.domain, node.opType, opset, first);
  if (!e)
    return "unsupported op";
  Ctx c{node, opset, inputs, outputs, fresh, {}};
  outputs.clear();
  if (!e->fn(c))
    return c.error.empty() ? "shape inference failed" : c.error;
  if (outputs.size() < node.outputs.size()) {
    // Optional outputs an op does not describe stay undefined; they must
    // not be used.
    outputs.resize(node.outputs.size());
  }
  return "";
}

} // namespace w4a4::onnx_import
