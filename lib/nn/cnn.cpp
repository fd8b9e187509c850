// cnn.cpp — the CNN family: configuration, declaration, forward and backward.
#include "nn/cnn.h"

#include "base/bounds.h"
#include "base/common.h"
#include "layers/cnn_layers.h"
#include "layers/layers.h"
#include "nn/losses.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

namespace ufo {

namespace {
constexpr int kMaxCnnLayers = 64;
constexpr int kMaxChannelsPerLayer = 4096;
}  // namespace

std::vector<CnnLayer> CNNConfig::parse(const std::string& where) const {
    std::vector<CnnLayer> out;
    std::stringstream ss(layers);
    std::string tok;
    auto bad = [&](const std::string& why) { fail(where, "CNN layers '" + layers + "': " + why); };
    while (std::getline(ss, tok, ',')) {
        CnnLayer l;
        if (tok == "m" || tok == "a") {
            l.type = tok == "m" ? CnnLayer::MaxPool : CnnLayer::AvgPool;
            l.stride = 2;
        } else if (tok.size() >= 2 && tok[0] == 'c') {
            std::string num = tok.substr(1);
            if (num.size() > 2 && num.compare(num.size() - 2, 2, "/2") == 0) {
                l.stride = 2;
                num.resize(num.size() - 2);
            }
            if (num.empty() || num.size() > 4 || num.find_first_not_of("0123456789") != std::string::npos)
                bad("'" + tok + "' is not cN or cN/2");
            l.channels = std::stoi(num);
            if (l.channels < 1 || l.channels > kMaxChannelsPerLayer)
                bad("'" + tok + "': channels must be in 1.." + std::to_string(kMaxChannelsPerLayer));
        } else {
            bad("'" + tok + "' is not a layer (cN, cN/2, m or a)");
        }
        out.push_back(l);
        if (int(out.size()) > kMaxCnnLayers) bad("more than " + std::to_string(kMaxCnnLayers) + " layers");
    }
    if (out.empty() || out[0].type != CnnLayer::Conv) bad("the first layer must be a convolution (cN)");
    return out;
}

void CNNConfig::validate(const std::string& where) const {
    if (img_h <= 0 || img_w <= 0) fail(where, "image shape must be positive");
    if (img_h > bounds::kMaxImageSide || img_w > bounds::kMaxImageSide)
        fail(where, "image side above the limit of " + std::to_string(bounds::kMaxImageSide));
    if (img_c != 1 && img_c != 3) fail(where, "images must have 1 or 3 channels, not " + std::to_string(img_c));
    if (int(in_mean.size()) != img_c || int(in_std.size()) != img_c)
        fail(where, "input normalisation needs one mean and std per channel");
    for (float s : in_std)
        if (!(s > 0) || !std::isfinite(s)) fail(where, "input std must be finite and positive");
    if (int64_t(tasks.size()) > bounds::kMaxTasks) fail(where, "too many tasks");
    for (const auto& t : tasks) {
        if (t.name.empty() || t.name.find_first_of("/,:= \t\n\r\v\f") != std::string::npos)
            fail(where, "task name '" + t.name + "' must be non-empty without / , : = or whitespace");
        if (t.num_classes < 2 || t.num_classes > bounds::kMaxClasses)
            fail(where, "task '" + t.name + "' needs 2.." + std::to_string(bounds::kMaxClasses) + " classes");
    }
    if (!(bn_momentum > 0 && bn_momentum <= 1)) fail(where, "BatchNorm momentum must be in (0,1]");
    int H = img_h, W = img_w;
    int64_t params = 0, C = img_c;
    for (const auto& l : parse(where)) {
        if (l.type == CnnLayer::Conv) {
            H = (H - 1) / l.stride + 1;
            W = (W - 1) / l.stride + 1;
            params += int64_t(l.channels) * C * 9 + 4 * l.channels;
            C = l.channels;
        } else {
            if (H < 2 || W < 2) fail(where, "CNN layers '" + layers + "': a pool on a " + std::to_string(H) + "x" +
                                                std::to_string(W) + " map");
            H = (H - 2) / 2 + 1;
            W = (W - 2) / 2 + 1;
        }
    }
    for (const auto& t : tasks) params += int64_t(t.num_classes) * (C + 1);
    if (params > bounds::kMaxParams) fail(where, "the model would have too many parameters");
    bounds::check_memory(where, "the model's parameters", params * int64_t(sizeof(float)));
}

std::string CNNConfig::describe() const {
    std::ostringstream s;
    s << "CNN " << img_h << "x" << img_w << "x" << img_c << " layers " << layers;
    return s.str();
}

CNNConfig cnn_preset(const std::string& name) {
    CNNConfig c;
    if (name == "tiny") {   // tests: 8x8 images
        c.img_h = c.img_w = 8;
        c.layers = "c8,m,c16";
        return c;
    }
    if (name == "small") {   // under 100K parameters on 28x28x1 (about 72K)
        c.layers = "c24,c24,m,c48,c48,m,c80";
        return c;
    }
    fail("", "unknown CNN preset '" + name + "' (known: tiny, small)");
}

std::vector<std::string> cnn_preset_names() { return {"tiny", "small"}; }

// ---------------------------------------------------------------- network

CNN::CNN(const CNNConfig& c) : cfg(c) {
    cfg.validate("");
    layers = cfg.parse("");
    std::vector<ParamInfo> L;
    ParamBinder b(&L);
    CnnPtrs unused;
    declare(b, unused);
    set_layout(std::move(L), b.total());
    ParamBinder pb(layout, params.data());
    declare(pb, p);
}

CnnShape cnn_shape_after(const CNNConfig& cfg, const std::vector<CnnLayer>& layers, int i) {
    CnnShape s{cfg.img_h, cfg.img_w, cfg.img_c};
    for (int k = 0; k <= i; ++k) {
        const CnnLayer& l = layers[size_t(k)];
        if (l.type == CnnLayer::Conv) {
            s.H = conv2d_out_size(s.H, 3, l.stride, 1);
            s.W = conv2d_out_size(s.W, 3, l.stride, 1);
            s.C = l.channels;
        } else {
            s.H = conv2d_out_size(s.H, 2, 2, 0);
            s.W = conv2d_out_size(s.W, 2, 2, 0);
        }
    }
    return s;
}

// Roles: each convolution layer i is block i: weight (Matrix, part conv), BatchNorm scale and
// shift (Norm), running mean (Statistic unit 0) and variance (Statistic unit 1); the heads are
// per task.
void CNN::declare(ParamBinder& b, CnnPtrs& out) const { declare_cnn(cfg, layers, b, out); }

std::vector<ParamInfo> cnn_layout(const CNNConfig& cfg) {
    std::vector<ParamInfo> L;
    ParamBinder b(&L);
    CnnPtrs unused;
    declare_cnn(cfg, cfg.parse(""), b, unused);
    return L;
}

void declare_cnn(const CNNConfig& cfg, const std::vector<CnnLayer>& layers, ParamBinder& add, CnnPtrs& out) {
    auto shape_after = [&](int i) { return cnn_shape_after(cfg, layers, i); };
    auto role = [](Kind k, Part part, Init init, bool weight, int block, int task = -1, int unit = 0) {
        Role r;
        r.kind = k; r.part = part; r.init = init; r.weight = weight; r.block = block; r.task = task; r.unit = unit;
        return r;
    };
    out.conv.assign(layers.size(), CnnPtrs::Conv{});
    for (size_t i = 0; i < layers.size(); ++i) {
        if (layers[i].type != CnnLayer::Conv) continue;
        const int l = int(i);
        const int64_t OC = layers[i].channels, IC = shape_after(l - 1).C;
        const std::string n = "layers/" + std::to_string(i) + "/";
        CnnPtrs::Conv& c = out.conv[i];
        c.w = add(n + "conv/w", {OC, IC, 3, 3}, role(Kind::Matrix, Part::Conv, Init::HeNormal, true, l));
        c.gamma = add(n + "bn/w", {OC}, role(Kind::Norm, Part::Norm, Init::One, true, l));
        c.beta = add(n + "bn/b", {OC}, role(Kind::Norm, Part::Norm, Init::Zero, false, l));
        c.run_mean = add(n + "bn/running_mean", {OC}, role(Kind::Statistic, Part::Norm, Init::Zero, true, l, -1, 0));
        c.run_var = add(n + "bn/running_var", {OC}, role(Kind::Statistic, Part::Norm, Init::One, true, l, -1, 1));
    }
    const int64_t C = shape_after(int(layers.size()) - 1).C;
    out.heads.assign(cfg.tasks.size(), CnnPtrs::Head{});
    for (size_t t = 0; t < cfg.tasks.size(); ++t) {
        const std::string n = "tasks/" + cfg.tasks[t].name + "/head/";
        const int64_t K = cfg.tasks[t].num_classes;
        out.heads[t].w = add(n + "w", {K, C}, role(Kind::Head, Part::Head, Init::Zero, true, -1, int(t)));
        out.heads[t].b = add(n + "b", {K}, role(Kind::Head, Part::Head, Init::Zero, false, -1, int(t)));
    }
}

std::unique_ptr<Network> CNN::rebuild(const NetSpec& spec) const {
    CNNConfig c = cfg;
    c.tasks = spec.tasks;
    c.in_mean = spec.in_mean;
    c.in_std = spec.in_std;
    return std::make_unique<CNN>(c);
}

bool CNN::same_architecture(const Network& o, std::string* why) const {
    auto* c = dynamic_cast<const CNN*>(&o);
    std::string d;
    if (!c) d = std::string("a ") + o.family() + " network, not a CNN";
    else if (c->cfg.layers != cfg.layers) d = "layers " + cfg.layers + " vs " + c->cfg.layers;
    else if (c->cfg.img_h != cfg.img_h || c->cfg.img_w != cfg.img_w || c->cfg.img_c != cfg.img_c) d = "image shape";
    else if (c->cfg.tasks.size() != cfg.tasks.size()) d = "number of tasks";
    else
        for (size_t t = 0; t < cfg.tasks.size(); ++t)
            if (c->cfg.tasks[t].num_classes != cfg.tasks[t].num_classes) d = "classes of task " + cfg.tasks[t].name;
    if (why) *why = d;
    return d.empty();
}

void CNN::resolve(Active& a) const {
    if (cfg.tasks.empty()) fail("", "the model has no task heads (a shared backbone)");
    if (a.task < 0 || a.task >= int(cfg.tasks.size())) fail("", "task index out of range");
    if (a.mixing() || a.depth > 0 || !a.heads.empty() || !a.hidden.empty())
        fail("", "a CNN has no elastic or routed sub-networks");
}

// ---------------------------------------------------------------- workspace

namespace {
// Sizes and pointers of one CNN workspace, from the one bind().
// Max-pool indices are int32: they come from idx_buf (the base given, or counted when null).
void bind_workspace(Arena& ar, size_t& ints, int32_t* idx_base, CnnActivations& w, const CNN& net, int B,
                    bool training) {
    const CNNConfig& cfg = net.cfg;
    const size_t K = size_t(cfg.max_classes());
    size_t biggest = size_t(B) * cfg.image_size(), scratch = 0;
    w.input = ar.take(size_t(B) * cfg.image_size());
    w.layers.assign(net.layers.size(), CnnActivations::Layer{});
    ints = 0;
    for (size_t i = 0; i < net.layers.size(); ++i) {
        const CnnLayer& l = net.layers[i];
        const CNN::Shape in = net.shape_after(int(i) - 1), s = net.shape_after(int(i));
        auto& la = w.layers[i];
        la.H = s.H; la.W = s.W; la.C = s.C;
        const size_t n = size_t(B) * s.H * s.W * s.C;
        biggest = std::max(biggest, n);
        la.out = ar.take(n);
        if (l.type == CnnLayer::Conv) {
            la.z = ar.take(n);
            la.mean = ar.take(size_t(s.C));
            la.rstd = ar.take(size_t(s.C));
            scratch = std::max(scratch, conv2d_forward_scratch(in.C, s.C, 3));
            if (training)
                scratch = std::max(scratch, conv2d_backward_scratch(B, in.H, in.W, in.C, s.C, 3, l.stride, 1));
        } else if (l.type == CnnLayer::MaxPool) {
            la.idx = idx_base ? idx_base + ints : nullptr;
            ints += n;
        }
    }
    const size_t C = size_t(net.shape_after(int(net.layers.size()) - 1).C);
    w.pooled = ar.take(size_t(B) * C);
    w.logits = ar.take(size_t(B) * K);
    w.probs = ar.take(size_t(B) * K);
    w.scratch = ar.take(scratch);
    w.d_a = w.d_b = w.d_pooled = w.d_logits = nullptr;
    if (training) {
        w.d_a = ar.take(biggest);
        w.d_b = ar.take(biggest);
        w.d_c = ar.take(biggest);
        w.d_pooled = ar.take(size_t(B) * C);
        w.d_logits = ar.take(size_t(B) * K);
    }
}
}  // namespace

std::unique_ptr<Workspace> CNN::workspace(int B, bool training) const {
    auto w = std::make_unique<CnnActivations>();
    w->max_batch = B;
    w->training = training;
    Arena count;
    size_t ints = 0;
    bind_workspace(count, ints, nullptr, *w, *this, B, training);
    const std::string what = "activations for a batch of " + std::to_string(B);
    if (count.used() > (size_t(1) << 60) || ints > (size_t(1) << 60)) fail("", what + " are too large");
    bounds::resize_or_fail(w->buf, int64_t(count.used()), "", what);
    bounds::resize_or_fail(w->idx_buf, int64_t(ints), "", what);
    Arena real(w->buf.data());
    bind_workspace(real, ints, w->idx_buf.data(), *w, *this, B, training);
    return w;
}

// ---------------------------------------------------------------- forward / backward

void CNN::forward(Workspace& ws, const uint8_t* images, int B, const Active& in) const {
    CnnActivations& act = static_cast<CnnActivations&>(ws);
    Active a = in;
    resolve(a);
    if (B > act.max_batch) fail("", "batch larger than the activation buffers");
    normalize_images(act.input, images, long(B) * cfg.img_h * cfg.img_w, cfg.img_c, cfg.in_mean.data(),
                     cfg.in_std.data());
    const float* x = act.input;
    Shape s{cfg.img_h, cfg.img_w, cfg.img_c};
    for (size_t i = 0; i < layers.size(); ++i) {
        const CnnLayer& l = layers[i];
        const auto& la = act.layers[i];
        const int N = B * la.H * la.W;
        if (l.type == CnnLayer::Conv) {
            const CnnPtrs::Conv& c = p.conv[i];
            conv2d_forward(la.z, act.scratch, x, c.w, nullptr, B, s.H, s.W, s.C, la.C, 3, l.stride, 1);
            if (a.train)
                batchnorm_forward_train(la.out, la.mean, la.rstd, la.z, c.gamma, c.beta, N, la.C);
            else
                batchnorm_forward_eval(la.out, la.z, c.gamma, c.beta, c.run_mean, c.run_var, N, la.C);
            relu_forward(la.out, la.out, long(N) * la.C);
        } else if (l.type == CnnLayer::MaxPool) {
            maxpool2d_forward(la.out, la.idx, x, B, s.H, s.W, s.C, 2, 2);
        } else {
            avgpool2d_forward(la.out, x, B, s.H, s.W, s.C, 2, 2);
        }
        x = la.out;
        s = Shape{la.H, la.W, la.C};
    }
    global_avgpool_forward(act.pooled, x, B, s.H, s.W, s.C);
    const int K = cfg.tasks[size_t(a.task)].num_classes;
    const CnnPtrs::Head& h = p.heads[size_t(a.task)];
    matmul_forward(act.logits, K, act.pooled, s.C, h.w, s.C, h.b, B, s.C, K, false);
    softmax_forward(act.probs, act.logits, B, K);
    if (a.train) act.last_batch = B;
}

void CNN::backward(Workspace& ws, int B, const Active& in, float* grads) const {
    CnnActivations& act = static_cast<CnnActivations&>(ws);
    Active a = in;
    resolve(a);
    if (!act.d_a) fail("", "activations were allocated without training buffers");
    if (act.grad_base != grads || act.grad_version != frozen_version()) {
        ParamBinder b(layout, grads, &frozen());
        declare(b, act.grad_ptrs);
        act.grad_base = grads;
        act.grad_version = frozen_version();
    }
    const CnnPtrs& g = act.grad_ptrs;
    const int K = cfg.tasks[size_t(a.task)].num_classes;
    const Shape last = shape_after(int(layers.size()) - 1);
    const CnnPtrs::Head &h = p.heads[size_t(a.task)], &hg = g.heads[size_t(a.task)];
    matmul_backward(act.d_pooled, last.C, hg.w, last.C, hg.b, act.d_logits, K, act.pooled, last.C, h.w, last.C, B,
                    last.C, K, false);
    // d: the gradient of the current layer's output; the two other buffers are free.
    float *d = act.d_a, *free1 = act.d_b, *free2 = act.d_c;
    std::memset(d, 0, sizeof(float) * size_t(B) * last.H * last.W * last.C);
    global_avgpool_backward(d, act.d_pooled, B, last.H, last.W, last.C);
    for (int i = int(layers.size()) - 1; i >= 0; --i) {
        const CnnLayer& l = layers[size_t(i)];
        const auto& la = act.layers[size_t(i)];
        const Shape s = shape_after(i - 1);
        const float* x = i == 0 ? act.input : act.layers[size_t(i) - 1].out;
        const size_t n_in = size_t(B) * s.H * s.W * s.C, n_out = size_t(B) * la.H * la.W * la.C;
        float* dprev = i == 0 ? nullptr : free1;
        if (l.type == CnnLayer::Conv) {
            const CnnPtrs::Conv &c = p.conv[size_t(i)], &cg = g.conv[size_t(i)];
            const int N = B * la.H * la.W;
            float* dy = free1;   // d(BN output), before ReLU's mask
            std::memset(dy, 0, sizeof(float) * n_out);
            relu_backward(dy, d, la.out, long(n_out));
            float* dz = free2;   // d(conv output)
            std::memset(dz, 0, sizeof(float) * n_out);
            batchnorm_backward(dz, cg.gamma, cg.beta, dy, la.z, c.gamma, la.mean, la.rstd, N, la.C);
            dprev = i == 0 ? nullptr : d;   // d is no longer needed
            if (dprev) std::memset(dprev, 0, sizeof(float) * n_in);
            conv2d_backward(dprev, cg.w, nullptr, act.scratch, dz, x, c.w, B, s.H, s.W, s.C, la.C, 3, l.stride, 1);
            // the gradient stays in d's buffer
        } else {
            if (!dprev) fail("", "internal error: a CNN cannot start with a pool");
            std::memset(dprev, 0, sizeof(float) * n_in);
            if (l.type == CnnLayer::MaxPool) maxpool2d_backward(dprev, d, la.idx, B, s.H, s.W, s.C, 2, 2);
            else avgpool2d_backward(dprev, d, B, s.H, s.W, s.C, 2, 2);
            std::swap(d, free1);
        }
    }
}

void CNN::update_statistics(const Workspace& ws) {
    const auto& act = static_cast<const CnnActivations&>(ws);
    if (act.last_batch <= 0) return;
    for (size_t i = 0; i < layers.size(); ++i) {
        if (layers[i].type != CnnLayer::Conv) continue;
        const auto& la = act.layers[i];
        batchnorm_update_running(p.conv[i].run_mean, p.conv[i].run_var, la.mean, la.rstd, act.last_batch * la.H * la.W,
                                 la.C, cfg.bn_momentum);
    }
}

double CNN::forward_flops(const Active& in) const {
    Active a = in;
    resolve(a);
    double f = 0;
    for (size_t i = 0; i < layers.size(); ++i) {
        if (layers[i].type != CnnLayer::Conv) continue;
        const Shape s = shape_after(int(i)), x = shape_after(int(i) - 1);
        f += 2.0 * s.H * s.W * s.C * x.C * 9;
    }
    f += 2.0 * shape_after(int(layers.size()) - 1).C * cfg.tasks[size_t(a.task)].num_classes;
    return f;
}

size_t CNN::num_active_params(const Active& in) const {
    Active a = in;
    resolve(a);
    size_t n = 0;
    for (const auto& t : layout)
        if (t.role.trained() && (t.role.task < 0 || t.role.task == a.task)) n += t.size;
    return n;
}

}  // namespace ufo
