//===- W4A4Ops.cpp - w4a4 op verifiers ------------------------------------===//
//
// Each verifier constraint carries a tag `<op>_cN`; test/dialects/W4A4/
// invalid.mlir has one expected-error case per tag.
//
//===----------------------------------------------------------------------===//

#include "dialects/W4A4/W4A4Ops.h"
#include "dialects/W4A4/W4A4Utils.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "w4a4/runtime/CheckedMath.h"
#include "w4a4/runtime/Hadamard.h"

#include <cmath>

using namespace mlir;
using namespace mlir::w4a4;

namespace {

bool dimsCompatible(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) || ShapedType::isDynamic(b) || a == b;
}

/// Checks that `shape` equals `expected` dimension by dimension, where a
/// dynamic dimension on either side matches anything.
bool shapesCompatible(ArrayRef<int64_t> shape, ArrayRef<int64_t> expected) {
  if (shape.size() != expected.size())
    return false;
  for (auto [a, b] : llvm::zip_equal(shape, expected))
    if (!dimsCompatible(a, b))
      return false;
  return true;
}

RankedTensorType rankedType(Value v) {
  return cast<RankedTensorType>(v.getType());
}

/// All `values` (null ones skipped) share the element type of the first.
LogicalResult verifySameElementType(Operation *op, StringRef tag,
                                    ArrayRef<Value> values) {
  Type elementType;
  for (Value v : values) {
    if (!v)
      continue;
    Type t = rankedType(v).getElementType();
    if (!elementType)
      elementType = t;
    else if (t != elementType)
      return op->emitOpError() << "(" << tag
                               << ") expects all float operands and the result "
                                  "to share one element type, got "
                               << elementType << " and " << t;
  }
  return success();
}

} // namespace

//===----------------------------------------------------------------------===//
// WeightOp
//===----------------------------------------------------------------------===//

LogicalResult WeightOp::verify() {
  // weight_c1
  if (getName().empty())
    return emitOpError("(weight_c1) expects a non-empty name");
  // weight_c2
  if (auto dense = dyn_cast<DenseElementsAttr>(getValue());
      dense && !denseDataMatchesType(dense))
    return emitOpError("(weight_c2) the dense value holds ")
           << cast<DenseIntOrFPElementsAttr>(dense).getRawData().size()
           << " bytes of data, not what its type " << dense.getType()
           << " needs";
  return success();
}

//===----------------------------------------------------------------------===//
// EmbeddingOp
//===----------------------------------------------------------------------===//

LogicalResult EmbeddingOp::verify() {
  RankedTensorType table = getTable().getType();
  RankedTensorType ids = getIds().getType();
  RankedTensorType result = getResult().getType();
  // embedding_c1
  if (table.getRank() != 2)
    return emitOpError("(embedding_c1) expects a rank-2 table [vocab, hidden], "
                       "got rank ")
           << table.getRank();
  // embedding_c2
  SmallVector<int64_t> expected(ids.getShape());
  expected.push_back(table.getDimSize(1));
  if (!shapesCompatible(result.getShape(), expected))
    return emitOpError("(embedding_c2) expects the result shape to be the ids "
                       "shape followed by the table's hidden size, got ")
           << result << " for ids " << ids << " and table " << table;
  // embedding_c3
  if (result.getElementType() != table.getElementType())
    return emitOpError("(embedding_c3) expects the result element type to "
                       "match the table's, got ")
           << result.getElementType() << " and " << table.getElementType();
  return success();
}

//===----------------------------------------------------------------------===//
// RMSNormOp
//===----------------------------------------------------------------------===//

LogicalResult RMSNormOp::verify() {
  RankedTensorType input = getInput().getType();
  // rms_norm_c1
  if (input.getRank() < 1)
    return emitOpError("(rms_norm_c1) expects an input of rank >= 1");
  // rms_norm_c2
  double eps = getEpsilon().convertToDouble();
  if (!(eps > 0.0) || !std::isfinite(eps))
    return emitOpError("(rms_norm_c2) expects a finite epsilon > 0, got ")
           << eps;
  if (Value gain = getGain()) {
    RankedTensorType g = rankedType(gain);
    // rms_norm_c3
    if (g.getRank() != 1 ||
        !dimsCompatible(g.getDimSize(0), input.getShape().back()))
      return emitOpError("(rms_norm_c3) expects the gain to be a vector of the "
                         "input's last dimension, got ")
             << g << " for input " << input;
    // rms_norm_c4
    if (failed(verifySameElementType(*this, "rms_norm_c4", {getInput(), gain})))
      return failure();
  }
  return success();
}

//===----------------------------------------------------------------------===//
// LinearOp
//===----------------------------------------------------------------------===//

LogicalResult LinearOp::verify() {
  RankedTensorType input = getInput().getType();
  RankedTensorType weight = getWeight().getType();
  RankedTensorType result = getResult().getType();
  // linear_c1
  if (weight.getRank() != 2 || input.getRank() < 1)
    return emitOpError("(linear_c1) expects a rank-2 weight [out, in] and an "
                       "input of rank >= 1, got ")
           << weight << " and " << input;
  int64_t out = weight.getDimSize(0), in = weight.getDimSize(1);
  // linear_c2
  if (!dimsCompatible(input.getShape().back(), in))
    return emitOpError("(linear_c2) expects the input's last dimension to "
                       "equal the weight's input dimension ")
           << in << ", got " << input;
  // linear_c3
  if (Value bias = getBias()) {
    RankedTensorType b = rankedType(bias);
    if (b.getRank() != 1 || !dimsCompatible(b.getDimSize(0), out))
      return emitOpError("(linear_c3) expects a bias vector of the weight's "
                         "output dimension ")
             << out << ", got " << b;
  }
  // linear_c4
  SmallVector<int64_t> expected(input.getShape());
  expected.back() = out;
  if (!shapesCompatible(result.getShape(), expected))
    return emitOpError("(linear_c4) expects the result shape to be the input "
                       "shape with the last dimension replaced by ")
           << out << ", got " << result;
  // linear_c5
  return verifySameElementType(
      *this, "linear_c5", {getInput(), getWeight(), getBias(), getResult()});
}

//===----------------------------------------------------------------------===//
// RoPEOp
//===----------------------------------------------------------------------===//

LogicalResult RoPEOp::verify() {
  RankedTensorType input = getInput().getType();
  // rope_c1
  if (input.getRank() < 2)
    return emitOpError("(rope_c1) expects an input [..., seq, heads * "
                       "head_dim] of rank >= 2, got ")
           << input;
  // rope_c2
  int64_t headDim = getHeadDim();
  if (headDim <= 0 || headDim % 2 != 0)
    return emitOpError("(rope_c2) expects a positive, even head_dim, got ")
           << headDim;
  // rope_c3
  int64_t width = input.getShape().back();
  if (!ShapedType::isDynamic(width) && width % headDim != 0)
    return emitOpError("(rope_c3) expects the last dimension ")
           << width << " to be a multiple of head_dim " << headDim;
  // rope_c4
  double theta = getTheta().convertToDouble();
  if (!(theta > 0.0) || !std::isfinite(theta))
    return emitOpError("(rope_c4) expects a finite theta > 0, got ") << theta;
  // rope_c5
  if (static_cast<int64_t>(getPositionOffset()) < 0)
    return emitOpError("(rope_c5) expects position_offset >= 0, got ")
           << static_cast<int64_t>(getPositionOffset());
  // rope_c6
  if (Value positions = getPositions()) {
    auto pt = cast<RankedTensorType>(positions.getType());
    if (input.getRank() != 3 || pt.getRank() != 2 ||
        !dimsCompatible(pt.getDimSize(0), input.getDimSize(0)) ||
        !dimsCompatible(pt.getDimSize(1), input.getDimSize(1)))
      return emitOpError("(rope_c6) expects positions [batch, seq] for an "
                         "input [batch, seq, heads * head_dim], got ")
             << pt << " for " << input;
  }
  return success();
}

//===----------------------------------------------------------------------===//
// CachePositionsOp
//===----------------------------------------------------------------------===//

LogicalResult CachePositionsOp::verify() {
  auto ids = cast<RankedTensorType>(getIds().getType());
  auto past = cast<RankedTensorType>(getPastKey().getType());
  auto result = cast<RankedTensorType>(getResult().getType());
  // cache_positions_c1
  if (ids.getRank() != 2 || past.getRank() != 4 ||
      !dimsCompatible(ids.getDimSize(0), past.getDimSize(0)))
    return emitOpError("(cache_positions_c1) expects ids [batch, seq] and a "
                       "past key [batch, num_kv_heads, past, head_dim], got ")
           << ids << " and " << past;
  // cache_positions_c2
  if (result.getRank() != 2 ||
      !dimsCompatible(result.getDimSize(0), ids.getDimSize(0)) ||
      !dimsCompatible(result.getDimSize(1), ids.getDimSize(1)))
    return emitOpError("(cache_positions_c2) expects a result of the ids' "
                       "shape, got ")
           << result;
  return success();
}

//===----------------------------------------------------------------------===//
// AttentionOp
//===----------------------------------------------------------------------===//

LogicalResult AttentionOp::verify() {
  RankedTensorType q = getQuery().getType(), k = getKey().getType(),
                   v = getValue().getType();
  // attention_c1
  if (q.getRank() != 3 || k.getRank() != 3 || v.getRank() != 3)
    return emitOpError("(attention_c1) expects query, key and value of rank 3 "
                       "[batch, seq, heads * head_dim]");
  // attention_c2
  int64_t heads = getNumHeads(), kvHeads = getNumKvHeads(),
          headDim = getHeadDim();
  if (heads <= 0 || kvHeads <= 0 || headDim <= 0 || heads % kvHeads != 0 ||
      !::w4a4::checkedMul(heads, headDim) || heads * headDim > (1 << 30))
    return emitOpError("(attention_c2) expects positive num_heads, "
                       "num_kv_heads and head_dim with num_heads a multiple "
                       "of num_kv_heads and num_heads * head_dim <= 2^30, got ")
           << heads << ", " << kvHeads << ", " << headDim;
  // attention_c3
  if (!dimsCompatible(q.getDimSize(2), heads * headDim) ||
      !dimsCompatible(k.getDimSize(2), kvHeads * headDim) ||
      !dimsCompatible(v.getDimSize(2), kvHeads * headDim))
    return emitOpError("(attention_c3) expects query width num_heads * "
                       "head_dim = ")
           << heads * headDim
           << " and key/value width num_kv_heads * head_dim = "
           << kvHeads * headDim;
  // attention_c4
  for (int64_t axis : {0, 1})
    if (!dimsCompatible(q.getDimSize(axis), k.getDimSize(axis)) ||
        !dimsCompatible(q.getDimSize(axis), v.getDimSize(axis)))
      return emitOpError("(attention_c4) expects query, key and value to "
                         "agree on the batch and sequence dimensions");
  // attention_c5
  Value kp = getKeyPrefix(), vp = getValuePrefix();
  if (static_cast<bool>(kp) != static_cast<bool>(vp))
    return emitOpError("(attention_c5) expects key_prefix and value_prefix "
                       "to be given together");
  if (kp) {
    RankedTensorType kpt = rankedType(kp), vpt = rankedType(vp);
    // attention_c6
    if (kpt.getRank() != 2 || vpt.getRank() != 2 ||
        !dimsCompatible(kpt.getDimSize(0), vpt.getDimSize(0)) ||
        !dimsCompatible(kpt.getDimSize(1), kvHeads * headDim) ||
        !dimsCompatible(vpt.getDimSize(1), kvHeads * headDim))
      return emitOpError("(attention_c6) expects key and value prefixes of "
                         "shape [prefix, num_kv_heads * head_dim] with one "
                         "prefix length, got ")
             << kpt << " and " << vpt;
  }
  // attention_c10
  Value pk = getPastKey(), pv = getPastValue();
  if (static_cast<bool>(pk) != static_cast<bool>(pv) ||
      getPresents().size() != (pk ? 2u : 0u))
    return emitOpError("(attention_c10) expects past_key, past_value, "
                       "present_key and present_value together");
  if (pk) {
    RankedTensorType pkt = rankedType(pk), pvt = rankedType(pv);
    // attention_c11
    for (RankedTensorType t :
         {pkt, pvt, rankedType(getPresentKey()), rankedType(getPresentValue())})
      if (t.getRank() != 4 ||
          !dimsCompatible(t.getDimSize(0), q.getDimSize(0)) ||
          !dimsCompatible(t.getDimSize(1), kvHeads) ||
          !dimsCompatible(t.getDimSize(3), headDim))
        return emitOpError("(attention_c11) expects past and present keys and "
                           "values [batch, num_kv_heads, len, head_dim] = "
                           "[?, ")
               << kvHeads << ", ?, " << headDim << "], got " << t;
    if (!dimsCompatible(pkt.getDimSize(2), pvt.getDimSize(2)))
      return emitOpError("(attention_c11) expects past keys and values of "
                         "one length");
  }
  // attention_c7
  if (getResult().getType() != q)
    return emitOpError("(attention_c7) expects the result type to equal the "
                       "query type ")
           << q << ", got " << getResult().getType();
  // attention_c8
  if (std::optional<APFloat> scale = getScale()) {
    double s = scale->convertToDouble();
    if (!(s > 0.0) || !std::isfinite(s))
      return emitOpError("(attention_c8) expects a finite scale > 0, got ")
             << s;
  }
  // attention_c9
  return verifySameElementType(*this, "attention_c9",
                               {getQuery(), getKey(), getValue(), kp, vp, pk,
                                pv, getPresentKey(), getPresentValue()});
}

//===----------------------------------------------------------------------===//
// RegistersOp
//===----------------------------------------------------------------------===//

LogicalResult RegistersOp::verify() {
  RankedTensorType input = getInput().getType();
  RankedTensorType regs = getRegisters().getType();
  RankedTensorType result = getResult().getType();
  // registers_c1
  if (input.getRank() != 3 || regs.getRank() != 2)
    return emitOpError("(registers_c1) expects an input [batch, seq, hidden] "
                       "and registers [k, hidden], got ")
           << input << " and " << regs;
  // registers_c2
  if (!dimsCompatible(regs.getDimSize(1), input.getDimSize(2)))
    return emitOpError("(registers_c2) expects the registers' width ")
           << regs.getDimSize(1) << " to equal the hidden size "
           << input.getDimSize(2);
  int64_t k = regs.getDimSize(0), seq = input.getDimSize(1);
  // registers_c3
  auto combine = [&](int64_t delta) {
    if (ShapedType::isDynamic(k) || ShapedType::isDynamic(seq))
      return ShapedType::kDynamic;
    return seq + delta * k;
  };
  switch (getMode()) {
  case RegisterMode::prepend:
    if (!shapesCompatible(result.getShape(), {input.getDimSize(0), combine(1),
                                              input.getDimSize(2)}))
      return emitOpError("(registers_c3) expects prepend to give [batch, seq "
                         "+ k, hidden], got ")
             << result << " for input " << input << " and " << k
             << " registers";
    break;
  case RegisterMode::strip:
    if (!shapesCompatible(result.getShape(), {input.getDimSize(0), combine(-1),
                                              input.getDimSize(2)}))
      return emitOpError("(registers_c3) expects strip to give [batch, seq "
                         "- k, hidden], got ")
             << result << " for input " << input << " and " << k
             << " registers";
    [[fallthrough]];
  case RegisterMode::add:
    if (getMode() == RegisterMode::add && result != input)
      return emitOpError("(registers_c3) expects add to keep the input type ")
             << input << ", got " << result;
    if (!ShapedType::isDynamic(k) && !ShapedType::isDynamic(seq) && seq < k)
      return emitOpError("(registers_c3) expects at least k = ")
             << k << " positions, got " << seq;
    break;
  }
  // registers_c4
  return verifySameElementType(*this, "registers_c4",
                               {getInput(), getRegisters(), getResult()});
}

//===----------------------------------------------------------------------===//
// HadamardOp
//===----------------------------------------------------------------------===//

LogicalResult HadamardOp::verify() {
  RankedTensorType input = getInput().getType();
  int64_t width = input.getRank() ? input.getShape().back() : 0;
  int64_t size = getSize(), stride = getStride();
  // hadamard_c1
  if (input.getRank() < 1 || ShapedType::isDynamic(width) || size <= 0 ||
      stride <= 0 || width % (size * stride) != 0)
    return emitOpError("(hadamard_c1) expects a positive size (times the "
                       "stride) dividing the static last dimension, got size ")
           << size << " and stride " << stride << " for " << input;
  // hadamard_c2
  switch (getKind()) {
  case HadamardKind::walsh:
    if (!::w4a4::rt::isPowerOfTwo(size))
      return emitOpError("(hadamard_c2) expects a power-of-two size for "
                         "kind walsh, got ")
             << size;
    break;
  case HadamardKind::kronecker:
    if (!::w4a4::rt::factorHadamardOrder(size))
      return emitOpError("(hadamard_c2) has no Hadamard matrix of order ")
             << size << " (kronecker needs m * 2^k with a Paley order m)";
    break;
  case HadamardKind::random_orthogonal:
    break;
  }
  // hadamard_c3
  if (getSigns() && getSeed())
    return emitOpError("(hadamard_c3) expects at most one of signs and seed");
  // hadamard_c4
  if (std::optional<ArrayRef<int8_t>> signs = getSigns()) {
    if (static_cast<int64_t>(signs->size()) != width)
      return emitOpError("(hadamard_c4) expects one sign per feature (")
             << width << "), got " << signs->size();
    if (llvm::any_of(*signs, [](int8_t s) { return s != 1 && s != -1; }))
      return emitOpError("(hadamard_c4) expects signs of +1 or -1");
  }
  // hadamard_c5
  if (getKind() == HadamardKind::random_orthogonal && !getSeed())
    return emitOpError("(hadamard_c5) expects a seed for kind "
                       "random_orthogonal");
  return success();
}

//===----------------------------------------------------------------------===//
// QuantizeOp
//===----------------------------------------------------------------------===//

static LogicalResult verifyClipRatio(Operation *op, StringRef tag,
                                     double clip) {
  if (!(clip > 0.0 && clip <= 1.0))
    return op->emitOpError()
           << "(" << tag << ") expects a clip ratio in (0, 1], got " << clip;
  return success();
}

LogicalResult QuantizeOp::verify() {
  // quantize_c1
  int64_t bits = getBits();
  if (bits < 2 || bits > 8)
    return emitOpError("(quantize_c1) expects bits in [2, 8], got ") << bits;
  // quantize_c2
  if (failed(verifyClipRatio(*this, "quantize_c2",
                             getClipRatio().convertToDouble())))
    return failure();
  // quantize_c3
  if (getInput().getType().getRank() < 1)
    return emitOpError("(quantize_c3) expects an input of rank >= 1");
  // quantize_c4
  if (std::optional<int64_t> g = getGroupSize()) {
    int64_t last = getInput().getType().getShape().back();
    if (*g <= 0 || (!ShapedType::isDynamic(last) && last % *g != 0))
      return emitOpError("(quantize_c4) expects a group_size > 0 dividing "
                         "the last dimension ")
             << last << ", got " << *g;
  }
  return success();
}

//===----------------------------------------------------------------------===//
// QLinearOp
//===----------------------------------------------------------------------===//

LogicalResult QLinearOp::verify() {
  // qlinear_c1
  int64_t wbits = getWeightBits(), abits = getActBits();
  if (wbits < 2 || wbits > 8)
    return emitOpError("(qlinear_c1) expects weight_bits in [2, 8], got ")
           << wbits;
  // qlinear_c2
  if (abits != 0 && (abits < 2 || abits > 8))
    return emitOpError("(qlinear_c2) expects act_bits 0 (floating point) or "
                       "in [2, 8], got ")
           << abits;
  // qlinear_c3
  if (failed(verifyClipRatio(*this, "qlinear_c3",
                             getActClipRatio().convertToDouble())))
    return failure();
  // qlinear_c4
  RankedTensorType input = getInput().getType();
  if (input.getRank() < 1 || ShapedType::isDynamic(input.getShape().back()))
    return emitOpError("(qlinear_c4) expects an input with a static last "
                       "dimension, got ")
           << input;
  int64_t in = input.getShape().back();
  // qlinear_c5
  RankedTensorType codes = getWeightCodes().getType();
  int64_t perByte = getCodesPerByte(wbits);
  int64_t packed = (in + perByte - 1) / perByte;
  if (codes.getRank() != 2 || !dimsCompatible(codes.getDimSize(1), packed))
    return emitOpError("(qlinear_c5) expects weight codes [out, ")
           << packed << "] (" << in << " inputs, " << perByte
           << " codes per byte), got " << codes;
  int64_t out = codes.getDimSize(0);
  // qlinear_c6
  int64_t group = getGroupSize();
  if (group < 0 || (group > 0 && in % group != 0))
    return emitOpError("(qlinear_c6) expects group_size 0 (per channel) or a "
                       "positive divisor of the input dimension ")
           << in << ", got " << group;
  // qlinear_c7
  RankedTensorType scales = getWeightScales().getType();
  int64_t groups = group == 0 ? 1 : in / group;
  if (!shapesCompatible(scales.getShape(), {out, groups}))
    return emitOpError("(qlinear_c7) expects weight scales [out, groups] = [")
           << out << ", " << groups << "], got " << scales;
  // qlinear_c8
  if (Value bias = getBias()) {
    RankedTensorType b = rankedType(bias);
    if (!shapesCompatible(b.getShape(), {out}))
      return emitOpError("(qlinear_c8) expects a bias vector of ")
             << out << " outputs, got " << b;
  }
  // qlinear_c9
  Value left = getLowRankLeft(), right = getLowRankRight();
  if (static_cast<bool>(left) != static_cast<bool>(right))
    return emitOpError("(qlinear_c9) expects both low-rank factors or neither");
  if (left) {
    RankedTensorType l = rankedType(left), r = rankedType(right);
    if (l.getRank() != 2 || r.getRank() != 2 ||
        !dimsCompatible(l.getDimSize(0), out) ||
        !dimsCompatible(l.getDimSize(1), r.getDimSize(0)) ||
        !dimsCompatible(r.getDimSize(1), in))
      return emitOpError("(qlinear_c9) expects low-rank factors L [out, rank] "
                         "and R [rank, in], got ")
             << l << " and " << r;
  }
  // qlinear_c10
  RankedTensorType result = getResult().getType();
  SmallVector<int64_t> expected(input.getShape());
  expected.back() = out;
  if (!shapesCompatible(result.getShape(), expected))
    return emitOpError("(qlinear_c10) expects the result shape to be the "
                       "input shape with the last dimension replaced by ")
           << out << ", got " << result;
  // qlinear_c11
  return verifySameElementType(
      *this, "qlinear_c11",
      {getInput(), getWeightScales(), getBias(), left, right, getResult()});
}

//===----------------------------------------------------------------------===//
// OnnxOp
//===----------------------------------------------------------------------===//

LogicalResult OnnxOp::verify() {
  // onnx_c1
  if (getOpType().empty())
    return emitOpError("(onnx_c1) expects a non-empty ONNX op type");
  // onnx_c2
  if (std::optional<ArrayRef<int64_t>> absent = getAbsentInputs()) {
    int64_t total = getNumOperands() + absent->size(), previous = -1;
    for (int64_t i : *absent) {
      if (i <= previous || i < 0 || i >= total)
        return emitOpError("(onnx_c2) expects absent_inputs to be increasing "
                           "input positions below ")
               << total;
      previous = i;
    }
  }
  return success();
}

#define GET_OP_CLASSES
#include "dialects/W4A4/W4A4Ops.cpp.inc"
