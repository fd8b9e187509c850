// onnx_model.cpp — ViT and CNN graphs in standard ONNX operators, built with the ONNX protobuf
// classes (Debian's libonnx-dev) and checked with ONNX's checker before anyone sees them.
//
// Each layer is written as the operators that compute what ufo's kernel computes, in the same
// order of operations where the order changes rounding (residual sums, normalisation). Linear
// maps of token rows are MatMul + Add with the weight stored transposed ([in,out]: MatMul's
// layout); the class-token head and the CNN head are Gemm with transB, on ufo's [out,in] weight.
#define ONNX_ML 1
#define ONNX_NAMESPACE onnx
#include "export/onnx_model.h"

#include "base/common.h"
#include "nn/cnn.h"
#include "nn/vit.h"

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <cmath>
#include <cstring>
#include <map>

namespace ufo {
namespace {

constexpr float kLnEps = 1e-6f;   // ufo's LayerNorm (layers/layers.cpp)
constexpr float kBnEps = 1e-5f;   // ufo's BatchNorm (layers/cnn_layers.cpp)

onnx::AttributeProto attr(const std::string& name, int64_t v) {
    onnx::AttributeProto a;
    a.set_name(name);
    a.set_type(onnx::AttributeProto::INT);
    a.set_i(v);
    return a;
}

onnx::AttributeProto attr(const std::string& name, float v) {
    onnx::AttributeProto a;
    a.set_name(name);
    a.set_type(onnx::AttributeProto::FLOAT);
    a.set_f(v);
    return a;
}

onnx::AttributeProto attr(const std::string& name, const std::vector<int64_t>& v) {
    onnx::AttributeProto a;
    a.set_name(name);
    a.set_type(onnx::AttributeProto::INTS);
    for (int64_t x : v) a.add_ints(x);
    return a;
}

// Adds initializers and nodes to one GraphProto, naming every intermediate "<op>_<n>".
class Graph {
public:
    Graph(onnx::GraphProto* g, const Network& net) : g_(g) {
        for (const ParamInfo& p : net.layout) names_[net.params.data() + p.offset] = p.name;
    }

    // The parameter tensor at `w` (as declared by the network), under its checkpoint name.
    std::string weight(const float* w, const std::vector<int64_t>& shape) {
        return tensor(param_name(w), shape, w, false);
    }
    // A [rows, cols] parameter stored transposed, [cols, rows], for MatMul.
    std::string weight_t(const float* w, int rows, int cols) {
        return tensor(param_name(w) + "_t", {cols, rows}, w, true);
    }
    // A float constant (not a parameter of the network): the input normalisation.
    std::string constant(const std::string& name, const std::vector<int64_t>& shape, const std::vector<float>& v) {
        return tensor(name, shape, v.data(), false, false);
    }
    // A float scalar, shared by every node that uses the same value.
    std::string scalar(float v) {
        char name[48];
        std::snprintf(name, sizeof name, "const_%.9g", double(v));
        auto [it, fresh] = scalars_.emplace(v, name);
        if (fresh) tensor(name, {}, &v, false, false);
        return it->second;
    }
    // A 1-D int64 constant (shapes, axes, split sizes), shared likewise.
    std::string ints(const std::vector<int64_t>& v) {
        auto [it, fresh] = int_consts_.emplace(v, "shape_" + std::to_string(int_consts_.size()));
        if (fresh) {
            onnx::TensorProto* t = g_->add_initializer();
            t->set_name(it->second);
            t->set_data_type(onnx::TensorProto::INT64);
            t->add_dims(int64_t(v.size()));
            for (int64_t x : v) t->add_int64_data(x);
        }
        return it->second;
    }

    // One node; returns its (first) output, named `out` or "<op>_<n>".
    std::string op(const std::string& type, const std::vector<std::string>& in,
                   const std::vector<onnx::AttributeProto>& attrs = {}, std::string out = "") {
        return ops(type, in, 1, attrs, std::move(out))[0];
    }
    std::vector<std::string> ops(const std::string& type, const std::vector<std::string>& in, int n_out,
                                 const std::vector<onnx::AttributeProto>& attrs = {}, std::string out = "") {
        onnx::NodeProto* node = g_->add_node();
        const std::string base = type + "_" + std::to_string(nodes);
        node->set_name(base);
        node->set_op_type(type);
        for (const auto& i : in) node->add_input(i);
        std::vector<std::string> outs;
        for (int k = 0; k < n_out; ++k) {
            outs.push_back(!out.empty() && k == 0 ? out : n_out == 1 ? base : base + "_" + std::to_string(k));
            node->add_output(outs.back());
        }
        for (const auto& a : attrs) *node->add_attribute() = a;
        ++nodes;
        return outs;
    }

    size_t weights = 0;
    int nodes = 0;

private:
    std::string param_name(const float* w) const {
        auto it = names_.find(w);
        if (it == names_.end()) fail("", "internal: a tensor handed to the ONNX writer is not a parameter");
        return it->second;
    }
    std::string tensor(const std::string& name, const std::vector<int64_t>& shape, const float* v, bool transpose,
                       bool count = true) {
        onnx::TensorProto* t = g_->add_initializer();
        t->set_name(name);
        t->set_data_type(onnx::TensorProto::FLOAT);
        size_t n = 1;
        for (int64_t d : shape) {
            t->add_dims(d);
            n *= size_t(d);
        }
        std::string raw(n * sizeof(float), '\0');
        float* dst = reinterpret_cast<float*>(raw.data());
        if (transpose) {   // shape is [cols, rows] of the source [rows, cols]
            const size_t rows = size_t(shape[1]), cols = size_t(shape[0]);
            for (size_t r = 0; r < rows; ++r)
                for (size_t c = 0; c < cols; ++c) dst[c * rows + r] = v[r * cols + c];
        } else {
            std::memcpy(dst, v, raw.size());
        }
        t->set_raw_data(std::move(raw));   // little-endian float32, as ONNX's raw_data requires
        if (count) weights += n;
        return name;
    }

    onnx::GraphProto* g_;
    std::map<const float*, std::string> names_;
    std::map<float, std::string> scalars_;
    std::map<std::vector<int64_t>, std::string> int_consts_;
};

// uint8 [N,H,W,C] -> float (pixel/255 - mean) / std, as pixel * scale + shift per channel.
std::string normalize(Graph& g, const NetSpec& s, const std::string& images) {
    std::vector<float> scale(size_t(s.img_c)), shift(size_t(s.img_c));
    for (int c = 0; c < s.img_c; ++c) {
        scale[size_t(c)] = 1.0f / (255.0f * s.in_std[size_t(c)]);
        shift[size_t(c)] = -s.in_mean[size_t(c)] / s.in_std[size_t(c)];
    }
    std::string x = g.op("Cast", {images}, {attr("to", int64_t(onnx::TensorProto::FLOAT))});
    x = g.op("Mul", {x, g.constant("input_scale", {s.img_c}, scale)});
    return g.op("Add", {x, g.constant("input_shift", {s.img_c}, shift)});
}

std::string layernorm(Graph& g, const std::string& x, const float* w, const float* b, int64_t n) {
    return g.op("LayerNormalization", {x, g.weight(w, {n}), g.weight(b, {n})},
                {attr("axis", int64_t(-1)), attr("epsilon", kLnEps)});
}

// x [N,T,in] @ w[out,in]^T + b
std::string linear(Graph& g, const std::string& x, const float* w, const float* b, int out, int in) {
    std::string y = g.op("MatMul", {x, g.weight_t(w, out, in)});
    return b ? g.op("Add", {y, g.weight(b, {out})}) : y;
}

// GELU, tanh approximation: x * 0.5 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3))), the form
// runtimes recognise and fuse into one kernel.
std::string gelu(Graph& g, const std::string& x) {
    std::string t = g.op("Pow", {x, g.scalar(3.0f)});
    t = g.op("Mul", {t, g.scalar(0.044715f)});
    t = g.op("Add", {x, t});
    t = g.op("Mul", {t, g.scalar(0.7978845608f)});
    t = g.op("Tanh", {t});
    t = g.op("Add", {t, g.scalar(1.0f)});
    return g.op("Mul", {g.op("Mul", {x, g.scalar(0.5f)}), t});
}

// One block's multi-head attention on h [N,T,C]: the projection's output [N,T,C].
std::string attention(Graph& g, const ViTConfig& c, const BlockParams& w, int l, const std::string& h) {
    const int hd = c.head_dim(), nh = c.heads_at(l), A = nh * hd, C = c.dim;
    const std::string qkv = linear(g, h, w.qkv_w, w.qkv_b, 3 * A, C);
    std::vector<std::string> qkv3 = g.ops("Split", {qkv, g.ints({A, A, A})}, 3, {attr("axis", int64_t(-1))});
    const std::string heads_shape = g.ints({0, 0, nh, hd});   // 0: keep that dimension
    std::string q = g.op("Reshape", {qkv3[0], heads_shape});
    std::string k = g.op("Reshape", {qkv3[1], heads_shape});
    std::string v = g.op("Reshape", {qkv3[2], heads_shape});
    if (c.qk_norm) {   // LayerNorm over each head's hd values, weights shared by the heads
        q = layernorm(g, q, w.qn_w, w.qn_b, hd);
        k = layernorm(g, k, w.kn_w, w.kn_b, hd);
    }
    q = g.op("Transpose", {q}, {attr("perm", std::vector<int64_t>{0, 2, 1, 3})});   // [N,nh,T,hd]
    k = g.op("Transpose", {k}, {attr("perm", std::vector<int64_t>{0, 2, 3, 1})});   // [N,nh,hd,T]
    v = g.op("Transpose", {v}, {attr("perm", std::vector<int64_t>{0, 2, 1, 3})});   // [N,nh,T,hd]
    std::string s = g.op("Mul", {g.op("MatMul", {q, k}), g.scalar(1.0f / std::sqrt(float(hd)))});
    s = g.op("Softmax", {s}, {attr("axis", int64_t(-1))});
    std::string o = g.op("MatMul", {s, v});                                           // [N,nh,T,hd]
    o = g.op("Transpose", {o}, {attr("perm", std::vector<int64_t>{0, 2, 1, 3})});    // [N,T,nh,hd]
    o = g.op("Reshape", {o, g.ints({0, 0, A})});
    return linear(g, o, w.proj_w, w.proj_b, C, A);
}

// The ViT of ufo's forward pass (nn/vit.cpp) along the full network of task `task`.
std::string vit_graph(Graph& g, const ViT& m, int task, const std::string& images) {
    const ViTConfig& c = m.cfg;
    const ParamPtrs& p = m.p;
    const int ps = c.patch, C = c.dim, P = c.num_patches(), T = c.tokens(), pd = c.patch_dim();
    // Patches in ufo's im2col order: (row in patch, column in patch, channel).
    std::string x = normalize(g, c, images);
    x = g.op("Reshape", {x, g.ints({-1, c.grid_h(), ps, c.grid_w(), ps, c.img_c})});
    x = g.op("Transpose", {x}, {attr("perm", std::vector<int64_t>{0, 1, 3, 2, 4, 5})});
    x = g.op("Reshape", {x, g.ints({-1, P, pd})});
    const std::string emb = linear(g, x, p.patch_w, p.patch_b, C, pd);               // [N,P,C]
    // The class token, broadcast to the batch: Expand to [N,1,C], N read from the input.
    const std::string batch = g.op("Slice", {g.op("Shape", {images}), g.ints({0}), g.ints({1})});
    const std::string cls_shape = g.op("Concat", {batch, g.ints({1, C})}, {attr("axis", int64_t(0))});
    const std::string cls = g.op("Expand", {g.weight(p.cls, {1, 1, C}), cls_shape});
    x = g.op("Concat", {cls, emb}, {attr("axis", int64_t(1))});                       // [N,T,C]
    x = g.op("Add", {x, g.weight(p.pos, {T, C})});

    for (int l = 0; l < c.depth; ++l) {
        const BlockParams& w = p.blocks[size_t(l)];
        const FFNParams& f = w.ffn[0];
        const int H = c.hidden_at(l);
        const std::string h = layernorm(g, x, w.ln1_w, w.ln1_b, C);
        const std::string att = attention(g, c, w, l, h);
        // Sequential: x1 = x + attn(ln1 x); y = x1 + ffn(ln2 x1).
        // Parallel:   y = (x + attn(ln1 x)) + ffn(ln1 x).
        const std::string base = g.op("Add", {x, att});
        const std::string ffn_in = c.parallel_block ? h : layernorm(g, base, w.ln2_w, w.ln2_b, C);
        std::string y = gelu(g, linear(g, ffn_in, f.fc1_w, f.fc1_b, H, C));
        y = linear(g, y, f.fc2_w, f.fc2_b, C, H);
        x = g.op("Add", {base, y});
    }
    // The class token's row, the final LayerNorm and the task's head.
    const std::string zero = g.ints({0});
    x = g.op("Gather", {x, zero}, {attr("axis", int64_t(1))});                        // [N,1,C]
    x = g.op("Reshape", {x, g.ints({-1, C})});                                          // [N,C]
    x = layernorm(g, x, p.lnf_w, p.lnf_b, C);
    const int K = c.tasks[size_t(task)].num_classes;
    const TaskParams& hp = p.heads[size_t(task)];
    return g.op("Gemm", {x, g.weight(hp.w, {K, C}), g.weight(hp.b, {K})}, {attr("transB", int64_t(1))}, "logits");
}

// The CNN of ufo's inference pass (nn/cnn.cpp): BatchNorm with the running statistics.
std::string cnn_graph(Graph& g, const CNN& m, int task, const std::string& images) {
    const CNNConfig& c = m.cfg;
    std::string x = normalize(g, c, images);
    x = g.op("Transpose", {x}, {attr("perm", std::vector<int64_t>{0, 3, 1, 2})});     // NHWC -> NCHW
    int in_c = c.img_c;
    for (size_t i = 0; i < m.layers.size(); ++i) {
        const CnnLayer& l = m.layers[i];
        if (l.type == CnnLayer::Conv) {
            const CnnPtrs::Conv& w = m.p.conv[i];
            const int64_t oc = l.channels;
            x = g.op("Conv", {x, g.weight(w.w, {oc, in_c, 3, 3})},
                     {attr("kernel_shape", std::vector<int64_t>{3, 3}), attr("pads", std::vector<int64_t>{1, 1, 1, 1}),
                      attr("strides", std::vector<int64_t>{l.stride, l.stride})});
            x = g.op("BatchNormalization",
                     {x, g.weight(w.gamma, {oc}), g.weight(w.beta, {oc}), g.weight(w.run_mean, {oc}), g.weight(w.run_var, {oc})},
                     {attr("epsilon", kBnEps)});
            x = g.op("Relu", {x});
            in_c = l.channels;
        } else {
            x = g.op(l.type == CnnLayer::MaxPool ? "MaxPool" : "AveragePool", {x},
                     {attr("kernel_shape", std::vector<int64_t>{2, 2}), attr("strides", std::vector<int64_t>{2, 2})});
        }
    }
    x = g.op("GlobalAveragePool", {x});
    x = g.op("Flatten", {x}, {attr("axis", int64_t(1))});                             // [N,C]
    const int K = c.tasks[size_t(task)].num_classes;
    const CnnPtrs::Head& h = m.p.heads[size_t(task)];
    return g.op("Gemm", {x, g.weight(h.w, {K, in_c}), g.weight(h.b, {K})}, {attr("transB", int64_t(1))}, "logits");
}

void set_shape(onnx::ValueInfoProto* v, const std::string& name, int elem, const std::vector<int64_t>& dims) {
    v->set_name(name);
    onnx::TypeProto_Tensor* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(elem);
    for (int64_t d : dims) {
        auto* dim = t->mutable_shape()->add_dim();
        if (d < 0) dim->set_dim_param("batch");
        else dim->set_dim_value(d);
    }
}

}  // namespace

OnnxModel export_onnx(const Network& m, int task, const OnnxMeta& meta, const std::string& where) {
    const NetSpec& s = m.spec();
    if (task < 0 || task >= int(s.tasks.size())) fail(where, "has no task head to export");
    const auto* vit = dynamic_cast<const ViT*>(&m);
    const auto* cnn = dynamic_cast<const CNN*>(&m);
    if (!vit && !cnn) fail(where, std::string("ufo-export does not know the ") + m.family() + " family");
    if (vit && vit->cfg.ffn_sets != 1)
        fail(where, "has " + std::to_string(vit->cfg.ffn_sets) + " FFN sets per block; extract a task's sub-network first");
    // Protobuf messages stop at 2 GB; the weights are nearly all of it.
    const double bytes = double(m.total_floats()) * sizeof(float);
    if (bytes > 1.9e9)
        fail(where, "is " + std::to_string(int64_t(bytes / 1e6)) + " MB of weights; ONNX files over 2 GB need external "
                    "data files, which ufo-export does not write");

    onnx::ModelProto model;
    model.set_ir_version(onnx::IR_VERSION);
    model.set_producer_name("ufo-export");
    model.set_producer_version(kVersion);
    model.set_doc_string(meta.doc);
    onnx::OperatorSetIdProto* opset = model.add_opset_import();
    opset->set_domain("");
    opset->set_version(kOnnxOpset);
    for (const auto& [k, v] : meta.props) {
        onnx::StringStringEntryProto* e = model.add_metadata_props();
        e->set_key(k);
        e->set_value(v);
    }
    onnx::GraphProto* gp = model.mutable_graph();
    gp->set_name(meta.graph_name);
    Graph g(gp, m);
    const std::string images = "images";
    set_shape(gp->add_input(), images, onnx::TensorProto::UINT8, {-1, s.img_h, s.img_w, s.img_c});
    const std::string logits = vit ? vit_graph(g, *vit, task, images) : cnn_graph(g, *cnn, task, images);
    g.op("Softmax", {logits}, {attr("axis", int64_t(-1))}, "probs");
    const int64_t K = s.tasks[size_t(task)].num_classes;
    set_shape(gp->add_output(), "logits", onnx::TensorProto::FLOAT, {-1, K});
    set_shape(gp->add_output(), "probs", onnx::TensorProto::FLOAT, {-1, K});

    try {
        onnx::checker::check_model(model);
    } catch (const std::exception& e) {
        fail(where, std::string("internal: the exported graph fails ONNX's checker: ") + e.what());
    }
    OnnxModel out;
    if (!model.SerializeToString(&out.bytes)) fail(where, "cannot serialize the ONNX model");
    out.weights = g.weights;
    out.nodes = g.nodes;
    return out;
}

}  // namespace ufo
