//===- OnnxReader.cpp - ONNX protobuf reader ------------------------------===//
//
// Compiled with exceptions and RTTI (the ONNX library throws); nothing here
// includes MLIR.
//
//===----------------------------------------------------------------------===//

#include "passes/Conversion/OnnxToW4A4/OnnxReader.h"

#include "passes/Conversion/OnnxToW4A4/OnnxShapes.h"

#include "onnx/onnx_pb.h"
#include "w4a4/runtime/CheckedMath.h"

#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace fs = std::filesystem;

namespace w4a4::onnx_import {

int64_t elemSize(int32_t t) {
  switch (static_cast<ElemType>(t)) {
  case ElemType::Float:
  case ElemType::Int32:
    return 4;
  case ElemType::UInt8:
  case ElemType::Int8:
  case ElemType::Bool:
    return 1;
  case ElemType::Int64:
  case ElemType::Double:
    return 8;
  case ElemType::Float16:
  case ElemType::BFloat16:
    return 2;
  default:
    return 0;
  }
}

namespace {

struct Failure {
  std::string message;
};

std::string shapeString(const std::vector<int64_t> &dims) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < dims.size(); ++i)
    os << (i ? ", " : "") << dims[i];
  os << "]";
  return os.str();
}

TensorType typeOf(const onnx::TypeProto &t) {
  TensorType out;
  if (!t.has_tensor_type())
    return out;
  const auto &tt = t.tensor_type();
  out.elemType = tt.elem_type();
  if (tt.has_shape()) {
    out.ranked = true;
    for (const auto &d : tt.shape().dim())
      out.dims.push_back(d.has_dim_value() ? d.dim_value() : -1);
  }
  return out;
}

class Reader {
public:
  Reader(std::string path) : path(std::move(path)) {
    dir = fs::path(this->path).parent_path();
    if (dir.empty())
      dir = ".";
  }

  Model readFile() {
    std::error_code ec;
    auto st = fs::status(path, ec);
    if (!ec && fs::exists(st) && !fs::is_regular_file(st))
      fail(fs::is_directory(st) ? "is a directory"
                                : "is not a regular file (a device or FIFO)");
    std::ifstream in(path, std::ios::binary);
    if (!in)
      fail("cannot open the file");
    std::string data((std::istreambuf_iterator<char>(in)),
                     std::istreambuf_iterator<char>());
    return read(std::move(data));
  }

  Model read(std::string data) {
    if (data.empty())
      fail("the file is empty");
    onnx::ModelProto proto;
    if (!proto.ParseFromString(data))
      fail("not a valid ONNX protobuf (malformed or truncated file)");
    data.clear();
    if (!proto.has_graph())
      fail("the model has no graph");

    Model model;
    model.path = path;
    model.producer = proto.producer_name();
    model.irVersion = proto.ir_version();
    for (const auto &op : proto.opset_import()) {
      if (op.domain().empty() || op.domain() == "ai.onnx")
        model.opset = op.version();
      else if (op.domain() == "com.microsoft")
        model.msOpset = op.version();
    }
    if (model.opset == 0)
      fail("no opset is imported for the default ONNX domain");
    if (model.opset < kMinOpset || model.opset > kMaxOpset)
      fail("opset " + std::to_string(model.opset) +
           " is not supported (supported: " + std::to_string(kMinOpset) +
           " to " + std::to_string(kMaxOpset) + ")");
    for (const auto &kv : proto.metadata_props())
      model.metadata.emplace_back(kv.key(), kv.value());
    if (proto.graph().node_size() == 0)
      fail("the graph is empty (no nodes)");
    int index = 0;
    for (const onnx::NodeProto &n : proto.graph().node()) {
      std::string where =
          describe(n.name().empty() ? n.op_type() + "#" + std::to_string(index)
                                    : n.name(),
                   n.op_type(), n.domain(), model);
      bool ms = n.domain() == "com.microsoft";
      if (!n.domain().empty() && n.domain() != "ai.onnx" && !ms)
        fail(where + ": unsupported op domain '" + n.domain() + "'");
      if (ms && model.msOpset == 0)
        fail(where + ": the model does not import the com.microsoft domain");
      std::string why;
      if (!isSupported(n.domain(), n.op_type(),
                       ms ? model.msOpset : model.opset, why))
        fail(where + ": " + why);
      ++index;
    }

    onnx::GraphProto &graph = *proto.mutable_graph();
    std::map<std::string, ValueInfo> infos;
    for (onnx::TensorProto &t : *graph.mutable_initializer()) {
      model.initializers.push_back(
          readTensor(t, "initializer '" + t.name() + "'"));
      infos[t.name()] = initializerInfo(model.initializers.back());
    }
    std::map<std::string, int> symbolCount;
    for (const auto &v : graph.input()) {
      if (infos.count(v.name()))
        continue; // an initializer listed as an input (IR < 4)
      TensorType t = typeOf(v.type());
      if (!t.ranked || elemSize(t.elemType) == 0)
        fail("graph input '" + v.name() +
             "' must be a tensor of known rank and supported type");
      model.inputs.emplace_back(v.name(), t);
      infos[v.name()] = inputInfo(v, symbolCount);
    }
    for (const auto &v : graph.output())
      model.outputs.emplace_back(v.name(), typeOf(v.type()));
    if (model.outputs.empty())
      fail("the graph has no outputs");

    index = 0;
    int64_t freshCount = 0;
    auto fresh = [&] {
      return SymExpr::symbol("unknown" + std::to_string(freshCount++));
    };
    for (onnx::NodeProto &n : *graph.mutable_node()) {
      Node node;
      node.name = n.name().empty() ? n.op_type() + "#" + std::to_string(index)
                                   : n.name();
      node.opType = n.op_type();
      node.domain = n.domain();
      node.inputs.assign(n.input().begin(), n.input().end());
      node.outputs.assign(n.output().begin(), n.output().end());
      for (onnx::AttributeProto &a : *n.mutable_attribute())
        node.attributes[a.name()] = readAttribute(a, node);
      std::string where = describe(node.name, node.opType, node.domain, model);
      std::vector<const ValueInfo *> ins;
      for (const std::string &in : node.inputs) {
        if (in.empty()) {
          ins.push_back(nullptr);
          continue;
        }
        auto it = infos.find(in);
        if (it == infos.end())
          fail(where + ": input '" + in +
               "' is not defined before the node (graph not topologically "
               "sorted, or a dangling name)");
        ins.push_back(&it->second);
      }
      std::vector<ValueInfo> outs;
      int64_t opset =
          node.domain == "com.microsoft" ? model.msOpset : model.opset;
      std::string err = inferNode(node, opset, ins, outs, fresh);
      if (!err.empty())
        fail(where + ": shape inference failed: " + err);
      for (size_t i = 0; i < node.outputs.size(); ++i)
        if (!node.outputs[i].empty() && outs[i].defined())
          infos[node.outputs[i]] = std::move(outs[i]);
      model.nodes.push_back(std::move(node));
      ++index;
    }
    for (auto &[name, info] : infos) {
      TensorType t;
      t.elemType = info.elemType;
      t.ranked = info.ranked;
      bool symbolic = false;
      std::vector<std::string> dims;
      for (const SymExpr &d : info.dims) {
        auto c = d.constant();
        t.dims.push_back(c ? *c : -1);
        symbolic |= !c;
        dims.push_back(d.str());
      }
      if (symbolic)
        model.symDims[name] = std::move(dims);
      if (info.data) {
        std::vector<std::string> data;
        for (const SymExpr &e : *info.data)
          data.push_back(e.str());
        model.symData[name] = std::move(data);
      }
      model.valueTypes[name] = t;
    }
    // The declared output types must agree with what the graph computes.
    for (auto &[name, declared] : model.outputs) {
      auto it = model.valueTypes.find(name);
      if (it == model.valueTypes.end())
        continue; // reported by the importer
      const TensorType &t = it->second;
      bool ok = !declared.ranked ||
                (declared.dims.size() == t.dims.size() &&
                 (declared.elemType == 0 || declared.elemType == t.elemType));
      for (size_t i = 0; ok && declared.ranked && i < t.dims.size(); ++i)
        ok = declared.dims[i] < 0 || t.dims[i] < 0 ||
             declared.dims[i] == t.dims[i];
      if (!ok)
        fail("graph output '" + name + "' is declared as " +
             shapeString(declared.dims) + " but the graph computes " +
             shapeString(t.dims));
      declared = t;
    }
    return model;
  }

  static std::string describe(const std::string &name, const std::string &op,
                              const std::string &domain, const Model &m) {
    bool ms = domain == "com.microsoft";
    return "node '" + name + "' (op " + (ms ? "com.microsoft." : "") + op +
           ", opset " + std::to_string(ms ? m.msOpset : m.opset) + ")";
  }

  static ValueInfo initializerInfo(const Initializer &init) {
    ValueInfo v;
    v.elemType = init.elemType;
    v.ranked = true;
    for (int64_t d : init.dims)
      v.dims.push_back(SymExpr(d));
    int64_t size = elemSize(init.elemType);
    // Initializers are checked when read: the product fits.
    int64_t count = ::w4a4::checkedProduct(init.dims).value_or(-1);
    auto e = static_cast<ElemType>(init.elemType);
    if ((e == ElemType::Int64 || e == ElemType::Int32) && count >= 0 &&
        count <= kMaxDataElements &&
        static_cast<int64_t>(init.bytes->size()) == count * size) {
      std::vector<SymExpr> data;
      for (int64_t i = 0; i < count; ++i) {
        int64_t x = 0;
        std::memcpy(&x, init.bytes->data() + i * size, size);
        if (size == 4)
          x = static_cast<int32_t>(x);
        data.push_back(SymExpr(x));
      }
      v.data = std::move(data);
    }
    return v;
  }

  /// A graph input: dynamic dimensions become symbols named by their
  /// dim_param ("batch", or an expression such as "past + seq"), or
  /// "<input>_dim<i>" when unnamed.
  static ValueInfo inputInfo(const onnx::ValueInfoProto &v,
                             std::map<std::string, int> &count) {
    ValueInfo info;
    TensorType t = typeOf(v.type());
    info.elemType = t.elemType;
    info.ranked = true;
    const auto &shape = v.type().tensor_type().shape();
    for (int i = 0; i < shape.dim_size(); ++i) {
      const auto &d = shape.dim(i);
      if (d.has_dim_value() && d.dim_value() >= 0) {
        info.dims.push_back(SymExpr(d.dim_value()));
        continue;
      }
      std::string name = d.dim_param();
      std::optional<SymExpr> e;
      if (!name.empty())
        e = SymExpr::parse(name);
      if (!e) {
        std::string sym;
        for (char ch :
             name.empty() ? v.name() + "_dim" + std::to_string(i) : name)
          sym.push_back(std::isalnum(static_cast<unsigned char>(ch)) ? ch
                                                                     : '_');
        if (!std::isalpha(static_cast<unsigned char>(sym[0])))
          sym = "d_" + sym;
        e = SymExpr::symbol(sym);
      }
      info.dims.push_back(*e);
    }
    (void)count;
    return info;
  }

  [[noreturn]] void fail(const std::string &message) {
    throw Failure{path + ": " + message};
  }

private:
  Attribute readAttribute(onnx::AttributeProto &a, const Node &node) {
    Attribute out;
    switch (a.type()) {
    case onnx::AttributeProto::INT:
      out.kind = Attribute::Int;
      out.i = a.i();
      break;
    case onnx::AttributeProto::FLOAT:
      out.kind = Attribute::Float;
      out.f = a.f();
      break;
    case onnx::AttributeProto::STRING:
      out.kind = Attribute::String;
      out.s = a.s();
      break;
    case onnx::AttributeProto::INTS:
      out.kind = Attribute::Ints;
      out.ints.assign(a.ints().begin(), a.ints().end());
      break;
    case onnx::AttributeProto::FLOATS:
      out.kind = Attribute::Floats;
      out.floats.assign(a.floats().begin(), a.floats().end());
      break;
    case onnx::AttributeProto::STRINGS:
      out.kind = Attribute::Strings;
      out.strings.assign(a.strings().begin(), a.strings().end());
      break;
    case onnx::AttributeProto::TENSOR: {
      out.kind = Attribute::Tensor;
      Initializer t =
          readTensor(*a.mutable_t(), "attribute '" + a.name() + "' of node '" +
                                         node.name + "' (" + node.opType + ")");
      out.tensorType = t.elemType;
      out.tensorDims = t.dims;
      out.tensorBytes = std::move(*t.bytes);
      break;
    }
    default:
      out.kind = Attribute::Other;
    }
    return out;
  }

  Initializer readTensor(onnx::TensorProto &t, const std::string &what) {
    Initializer init;
    init.name = t.name();
    init.elemType = t.data_type();
    int64_t size = elemSize(init.elemType);
    if (size == 0)
      fail(what + " has unsupported data type " +
           std::to_string(init.elemType));
    for (int64_t d : t.dims()) {
      if (d < 0)
        fail(what + " has a negative dimension");
      init.dims.push_back(d);
    }
    // Checked: dims like [2^62 + 256, 128] must not wrap to a size that
    // matches a small blob.
    std::optional<int64_t> total = ::w4a4::checkedProduct(init.dims, size);
    if (!total)
      fail(what + ": shape " + shapeString(init.dims) +
           " has more elements than fit in 64 bits");
    int64_t count = *total / size;
    auto bytes = std::make_shared<std::string>();
    if (t.data_location() == onnx::TensorProto::EXTERNAL) {
      *bytes = readExternal(t, what);
    } else if (t.has_raw_data()) {
      bytes->swap(*t.mutable_raw_data()); // no copy
    } else {
      switch (static_cast<ElemType>(init.elemType)) {
      case ElemType::Float:
        bytes->assign(reinterpret_cast<const char *>(t.float_data().data()),
                      t.float_data_size() * 4);
        break;
      case ElemType::Int64:
        bytes->assign(reinterpret_cast<const char *>(t.int64_data().data()),
                      t.int64_data_size() * 8);
        break;
      case ElemType::Double:
        bytes->assign(reinterpret_cast<const char *>(t.double_data().data()),
                      t.double_data_size() * 8);
        break;
      default: // int32_data holds one element per entry for narrower types
        for (int32_t v : t.int32_data())
          bytes->append(reinterpret_cast<const char *>(&v), size);
      }
    }
    if (static_cast<int64_t>(bytes->size()) != *total)
      fail(what + ": " + std::to_string(bytes->size()) +
           " bytes of data for shape " + shapeString(init.dims) +
           " (expected " + std::to_string(*total) + ")");
    init.bytes = std::move(bytes);
    return init;
  }

  std::string readExternal(const onnx::TensorProto &t,
                           const std::string &what) {
    std::string location;
    int64_t offset = 0, length = -1;
    // offset and length: decimal digits only, no sign, fitting int64 (no
    // "0junk" as 0, no negative length as "the rest").
    auto number = [&](const std::string &key, const std::string &text) {
      int64_t v = 0;
      bool ok = !text.empty() && text.size() <= 19;
      for (char c : text) {
        ok &= c >= '0' && c <= '9';
        if (!ok)
          break;
        v = v * 10 + (c - '0');
      }
      if (!ok)
        fail(what + ": external data " + key + " '" + text +
             "' is not a non-negative integer");
      return v;
    };
    for (const auto &kv : t.external_data()) {
      if (kv.key() == "location")
        location = kv.value();
      else if (kv.key() == "offset")
        offset = number("offset", kv.value());
      else if (kv.key() == "length")
        length = number("length", kv.value());
    }
    if (location.empty())
      fail(what + ": external data without a location");
    fs::path rel(location);
    if (rel.is_absolute())
      fail(what + ": external data path '" + location +
           "' is absolute; it must be relative to the model folder");
    for (const auto &part : rel)
      if (part == "..")
        fail(what + ": external data path '" + location +
             "' leaves the model folder ('..')");
    std::error_code ec;
    fs::path root = fs::canonical(dir, ec);
    fs::path full = fs::canonical(dir / rel, ec);
    if (ec)
      fail(what + ": external data file '" + location + "' not found");
    auto mismatch =
        std::mismatch(root.begin(), root.end(), full.begin(), full.end());
    if (mismatch.first != root.end())
      fail(what + ": external data path '" + location +
           "' resolves outside the model folder (symbolic link)");
    if (!fs::is_regular_file(full, ec))
      fail(what + ": external data '" + location +
           "' is not a regular file (a directory, device or FIFO)");
    std::ifstream in(full, std::ios::binary);
    if (!in)
      fail(what + ": cannot open external data file '" + location + "'");
    in.seekg(0, std::ios::end);
    int64_t fileSize = in.tellg();
    if (fileSize < 0)
      fail(what + ": cannot read the size of '" + location + "'");
    if (offset > fileSize)
      fail(what + ": external data offset " + std::to_string(offset) +
           " is outside '" + location + "'");
    if (length < 0)
      length = fileSize - offset;
    if (length > fileSize - offset)
      fail(what + ": external data [" + std::to_string(offset) + ", " +
           std::to_string(offset) + " + " + std::to_string(length) +
           ") runs past the end of '" + location + "' (" +
           std::to_string(fileSize) + " bytes)");
    std::string out(length, '\0');
    in.seekg(offset);
    if (!in.read(out.data(), length) || in.gcount() != length)
      fail(what + ": could not read " + std::to_string(length) +
           " bytes at offset " + std::to_string(offset) + " of '" + location +
           "'");
    return out;
  }

  std::string path;
  fs::path dir;
};

} // namespace

template <typename Fn>
static std::optional<Model> guarded(const std::string &path, std::string &error,
                                    Fn fn) {
  try {
    return fn();
  } catch (const Failure &f) {
    error = f.message;
  } catch (const std::exception &e) {
    error = path + ": " + e.what();
  }
  return std::nullopt;
}

std::optional<Model> readModel(const std::string &path, std::string &error) {
  Reader reader(path);
  return guarded(path, error, [&] { return reader.readFile(); });
}

std::optional<Model> readModelFromBytes(std::string bytes,
                                        const std::string &path,
                                        std::string &error) {
  Reader reader(path);
  return guarded(path, error, [&] { return reader.read(std::move(bytes)); });
}

} // namespace w4a4::onnx_import
