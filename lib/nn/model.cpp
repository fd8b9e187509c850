// model.cpp — ViT configuration, parameter layout, forward and backward.
#include "nn/model.h"

#include "base/bounds.h"

#include "base/common.h"
#include "layers/layers.h"
#include "base/rng.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

namespace ufo {

// ---------------------------------------------------------------- configuration

void ViTConfig::validate(const std::string& where) const {
    auto bad = [&](const std::string& what) { fail(where, what); };
    if (img_h <= 0 || img_w <= 0 || img_c <= 0) bad("image shape must be positive");
    if (img_c != 1 && img_c != 3) bad("images must have 1 or 3 channels, not " + std::to_string(img_c));
    if (patch <= 0) bad("patch size must be positive");
    if (img_h % patch || img_w % patch)
        bad("patch size " + std::to_string(patch) + " does not divide the image " +
            std::to_string(img_h) + "x" + std::to_string(img_w));
    if (dim <= 0 || depth <= 0 || heads <= 0 || mlp_hidden <= 0)
        bad("dim, depth, heads and mlp hidden size must be positive");
    auto limit = [&](const char* what, int64_t v, int64_t hi) {
        if (v > hi) bad(std::string(what) + " " + std::to_string(v) + " is above the limit of " + std::to_string(hi));
    };
    limit("image height", img_h, bounds::kMaxImageSide);
    limit("image width", img_w, bounds::kMaxImageSide);
    limit("dim", dim, bounds::kMaxDim);
    limit("depth", depth, bounds::kMaxDepth);
    limit("heads", heads, bounds::kMaxHeads);
    limit("mlp hidden size", mlp_hidden, bounds::kMaxMlpHidden);
    limit("number of tasks", int64_t(tasks.size()), bounds::kMaxTasks);
    limit("FFN weight sets", ffn_sets, bounds::kMaxTasks + 1);
    if (dim % heads) bad("dim " + std::to_string(dim) + " is not divisible by " + std::to_string(heads) + " heads");
    if (ffn_sets < 1) bad("at least one FFN weight set is needed");
    for (size_t i = 0; i < tasks.size(); ++i)
        for (size_t j = 0; j < i; ++j)
            if (tasks[i].name == tasks[j].name) bad("task '" + tasks[i].name + "' appears twice");
    for (const auto& t : tasks) {
        if (t.name.empty() || t.name.find_first_of("/,:= \t\n\r\v\f") != std::string::npos)
            bad("task name '" + t.name + "' must be non-empty without / , : = or whitespace");
        // FFN weight sets are stored as blocks/<l>/ffn/<shared|task|setN>: keep the names apart.
        if (t.name == "shared" || (t.name.size() > 3 && t.name.rfind("set", 0) == 0 &&
                                   t.name.find_first_not_of("0123456789", 3) == std::string::npos))
            bad("task name '" + t.name + "' is reserved for FFN weight sets");
        if (is_supernet()) {
            if (int(t.route.size()) != depth)
                bad("task '" + t.name + "' has a route of " + std::to_string(t.route.size()) + " blocks, the model " +
                    std::to_string(depth));
            for (int r : t.route)
                if (r != 0 && r != 1) bad("task '" + t.name + "' has a route entry other than 0 (shared) or 1 (own)");
        }
        if (t.num_classes < 2) bad("task '" + t.name + "' needs at least 2 classes");
        if (!t.class_names.empty() && int(t.class_names.size()) != t.num_classes)
            bad("task '" + t.name + "' has " + std::to_string(t.class_names.size()) +
                " class names for " + std::to_string(t.num_classes) + " classes");
    }
    if (int(in_mean.size()) != img_c || int(in_std.size()) != img_c)
        bad("input normalisation needs one mean and std per channel");
    for (float s : in_std)
        if (!(s > 0) || !std::isfinite(s)) bad("input std must be finite and positive");
    for (float m : in_mean)
        if (!std::isfinite(m)) bad("input mean must be finite");
    for (const auto& t : tasks) limit("number of classes", t.num_classes, bounds::kMaxClasses);
    limit("tokens per image", int64_t(img_h / patch) * (img_w / patch) + 1, bounds::kMaxTokens);
    // The parameter count in 64 bits, from the shapes param_layout will hand out (plus its
    // 16-float alignment per tensor), before anything is allocated.
    const int64_t C = dim, H = mlp_hidden, T = int64_t(img_h / patch) * (img_w / patch) + 1;
    int64_t total = C * patch * patch * img_c + 2 * C + T * C + 2 * C + 16 * 4;
    const int64_t block = 2 * C + 3 * C * C + 3 * C + 4 * (C / heads) + C * C + 3 * C + 16 * 12 +
                          int64_t(ffn_sets) * (2 * H * C + H + C + 16 * 4);
    total += int64_t(depth) * block;
    for (const auto& t : tasks) total += int64_t(t.num_classes) * (C + 1) + 2 * int64_t(depth) + 16 * 3;
    if (total > bounds::kMaxParams)
        bad("the model would have " + std::to_string(total) + " parameters, above the limit of " +
            std::to_string(bounds::kMaxParams));
    bounds::check_memory(where, "the model's parameters", total * int64_t(sizeof(float)));
}

bool ViTConfig::same_architecture(const ViTConfig& o, std::string* why) const {
    std::ostringstream d;
    auto cmp = [&](const char* name, long a, long b) {
        if (a != b) d << (d.tellp() ? ", " : "") << name << " " << a << " vs " << b;
    };
    cmp("img_h", img_h, o.img_h); cmp("img_w", img_w, o.img_w); cmp("img_c", img_c, o.img_c);
    cmp("patch", patch, o.patch); cmp("dim", dim, o.dim); cmp("depth", depth, o.depth);
    cmp("heads", heads, o.heads); cmp("mlp_hidden", mlp_hidden, o.mlp_hidden);
    cmp("qk_norm", qk_norm, o.qk_norm); cmp("parallel_block", parallel_block, o.parallel_block);
    cmp("qkv_bias", qkv_bias, o.qkv_bias); cmp("ffn_sets", ffn_sets, o.ffn_sets);
    cmp("tasks", long(tasks.size()), long(o.tasks.size()));
    for (size_t t = 0; t < std::min(tasks.size(), o.tasks.size()); ++t)
        cmp(("classes of task " + tasks[t].name).c_str(), tasks[t].num_classes, o.tasks[t].num_classes);
    if (why) *why = d.str();
    return d.str().empty();
}

std::string ViTConfig::describe() const {
    std::ostringstream s;
    s << "ViT " << img_h << "x" << img_w << "x" << img_c << " patch " << patch << " dim " << dim
      << " depth " << depth << " heads " << heads << " mlp " << mlp_hidden;
    if (qk_norm) s << " qk-norm";
    if (parallel_block) s << " parallel-block";
    if (!qkv_bias) s << " no-qkv-bias";
    return s.str();
}

int ViTConfig::task_index(const std::string& name, const std::string& where) const {
    std::string all;
    for (size_t i = 0; i < tasks.size(); ++i) {
        if (tasks[i].name == name) return int(i);
        all += (i ? ", " : "") + tasks[i].name;
    }
    if (tasks.empty()) fail(where, "has no task heads (a shared backbone), so no task " + name);
    fail(where, "no task " + name + " (tasks: " + all + ")");
}

void ViTConfig::make_supernet() {
    ffn_sets = int(tasks.size()) + 1;
    for (auto& t : tasks) t.route.assign(depth, 0);
}

ViTConfig preset(const std::string& name) {
    ViTConfig c;
    if (name == "ref") return c;  // the reference model: 28x28x1, patch 4, dim 192, depth 6, 3 heads, MLP x4
    if (name == "tiny") {
        c.img_h = c.img_w = 8; c.patch = 4; c.dim = 16; c.depth = 2; c.heads = 2; c.mlp_hidden = 32;
        return c;
    }
    if (name == "small") {   // the accuracy recipe for 28x28 data on a 2-core machine
        c.patch = 4; c.dim = 96; c.depth = 6; c.heads = 3; c.mlp_hidden = 192;
        return c;
    }
    fail("", "unknown preset '" + name + "' (known: tiny, small, ref)");
}

std::vector<std::string> preset_names() { return {"tiny", "small", "ref"}; }

Active Active::full(const ViTConfig& cfg, int task) {
    Active a;
    a.task = task;
    a.resolve(cfg);
    return a;
}

Active Active::for_task(const ViTConfig& cfg, int task) {
    Active a;
    a.task = task;
    if (cfg.is_supernet() && task >= 0 && task < int(cfg.tasks.size())) {
        a.ffn_set.resize(cfg.depth);
        for (int l = 0; l < cfg.depth; ++l) a.ffn_set[l] = cfg.tasks[task].route[l] ? task + 1 : 0;
    }
    a.resolve(cfg);
    return a;
}

void Active::resolve(const ViTConfig& cfg) {
    if (depth < 0) depth = cfg.depth;
    if (depth < 1 || depth > cfg.depth) fail("", "active depth out of range");
    if (cfg.tasks.empty()) fail("", "the model has no task heads (a shared backbone)");
    if (task < 0 || task >= int(cfg.tasks.size())) fail("", "task index out of range");
    if (gates && !cfg.is_supernet()) fail("", "FFN mixing needs a Task-MoE supernet");
    if (heads.empty()) heads.assign(cfg.depth, cfg.heads);
    if (hidden.empty()) hidden.assign(cfg.depth, cfg.mlp_hidden);
    if (ffn_set.empty()) ffn_set.assign(cfg.depth, 0);
    if (int(heads.size()) < depth || int(hidden.size()) < depth || int(ffn_set.size()) < depth)
        fail("", "active configuration lists fewer entries than the active depth");
    for (int l = 0; l < depth; ++l) {
        if (heads[l] < 1 || heads[l] > cfg.heads) fail("", "active heads out of range");
        if (hidden[l] < 1 || hidden[l] > cfg.mlp_hidden) fail("", "active hidden units out of range");
        if (ffn_set[l] < 0 || ffn_set[l] >= cfg.ffn_sets) fail("", "FFN weight set out of range");
    }
}

// ---------------------------------------------------------------- parameters

static std::string ffn_set_name(const ViTConfig& cfg, int s) {
    if (s == 0) return "shared";
    if (cfg.ffn_sets == int(cfg.tasks.size()) + 1) return cfg.tasks[s - 1].name;
    return "set" + std::to_string(s);
}

std::vector<ParamInfo> param_layout(const ViTConfig& cfg) {
    std::vector<ParamInfo> L;
    size_t off = 0;
    auto add = [&](std::string name, std::vector<int64_t> shape, bool decay) {
        size_t n = 1;
        for (auto d : shape) n *= size_t(d);
        L.push_back(ParamInfo{std::move(name), std::move(shape), off, n, decay});
        off += (n + 15) / 16 * 16;   // 64-byte aligned tensors
    };
    const int64_t C = cfg.dim, H = cfg.mlp_hidden, hd = cfg.head_dim();
    add("embed/patch/w", {C, cfg.patch_dim()}, true);
    add("embed/patch/b", {C}, false);
    add("embed/cls", {C}, false);
    add("embed/pos", {cfg.tokens(), C}, false);
    for (int l = 0; l < cfg.depth; ++l) {
        std::string b = "blocks/" + std::to_string(l) + "/";
        add(b + "ln1/w", {C}, false);
        add(b + "ln1/b", {C}, false);
        add(b + "attn/qkv/w", {3 * C, C}, true);
        if (cfg.qkv_bias) add(b + "attn/qkv/b", {3 * C}, false);
        if (cfg.qk_norm) {
            add(b + "attn/q_norm/w", {hd}, false);
            add(b + "attn/q_norm/b", {hd}, false);
            add(b + "attn/k_norm/w", {hd}, false);
            add(b + "attn/k_norm/b", {hd}, false);
        }
        add(b + "attn/proj/w", {C, C}, true);
        add(b + "attn/proj/b", {C}, false);
        if (!cfg.parallel_block) {
            add(b + "ln2/w", {C}, false);
            add(b + "ln2/b", {C}, false);
        }
        for (int s = 0; s < cfg.ffn_sets; ++s) {
            std::string f = b + "ffn/" + ffn_set_name(cfg, s) + "/";
            add(f + "fc1/w", {H, C}, true);
            add(f + "fc1/b", {H}, false);
            add(f + "fc2/w", {C, H}, true);
            add(f + "fc2/b", {C}, false);
        }
    }
    add("norm/w", {C}, false);
    add("norm/b", {C}, false);
    for (const auto& t : cfg.tasks) {
        add("tasks/" + t.name + "/head/w", {t.num_classes, C}, true);
        add("tasks/" + t.name + "/head/b", {t.num_classes}, false);
        if (cfg.is_supernet()) add("tasks/" + t.name + "/router", {cfg.depth, 2}, false);
    }
    return L;
}

static size_t layout_total(const std::vector<ParamInfo>& L) {
    return L.empty() ? 0 : (L.back().offset + L.back().size + 15) / 16 * 16;
}

ParamPtrs param_ptrs(const ViTConfig& cfg, const std::vector<ParamInfo>& L, float* base) {
    size_t i = 0;
    auto next = [&]() { return base + L.at(i++).offset; };
    ParamPtrs p{};
    p.patch_w = next(); p.patch_b = next(); p.cls = next(); p.pos = next();
    p.blocks.resize(cfg.depth);
    for (auto& b : p.blocks) {
        b = BlockParams{};
        b.ln1_w = next(); b.ln1_b = next();
        b.qkv_w = next(); b.qkv_b = cfg.qkv_bias ? next() : nullptr;
        if (cfg.qk_norm) { b.qn_w = next(); b.qn_b = next(); b.kn_w = next(); b.kn_b = next(); }
        b.proj_w = next(); b.proj_b = next();
        if (!cfg.parallel_block) { b.ln2_w = next(); b.ln2_b = next(); }
        b.ffn.resize(cfg.ffn_sets);
        for (auto& f : b.ffn) { f.fc1_w = next(); f.fc1_b = next(); f.fc2_w = next(); f.fc2_b = next(); }
    }
    p.lnf_w = next(); p.lnf_b = next();
    p.heads.resize(cfg.tasks.size());
    for (auto& h : p.heads) {
        h.w = next(); h.b = next();
        h.router = cfg.is_supernet() ? next() : nullptr;
    }
    return p;
}

Model::Model(const ViTConfig& c) : cfg(c) {
    cfg.validate("");
    layout = param_layout(cfg);
    params.assign(layout_total(layout), 0.0f);
    p = param_ptrs(cfg, layout, params.data());
}

void Model::enable_grads() {
    if (grads.size() != params.size()) {
        grads.assign(params.size(), 0.0f);
        g = param_ptrs(cfg, layout, grads.data());
    }
}

void Model::zero_grads() {
    enable_grads();
    std::fill(grads.begin(), grads.end(), 0.0f);
}

// Initialisation after "Better plain ViT baselines" (Beyer et al. 2022) and MAE: Xavier-uniform
// matrices, a zero head, and position embeddings that start as 2-D sine-cosine codes of the patch
// grid (still learned). Starting from tiny random positions leaves a ViT blind to where a patch is
// for hundreds of steps, which small datasets cannot afford.
void Model::init_weights(uint64_t seed) {
    Rng rng(seed);
    auto ends_with = [](const std::string& s, const char* suf) {
        size_t n = std::strlen(suf);
        return s.size() >= n && s.compare(s.size() - n, n, suf) == 0;
    };
    for (const auto& t : layout) {
        float* w = params.data() + t.offset;
        const bool is_head = t.name.rfind("tasks/", 0) == 0;
        if (t.decay && !is_head) {            // [out, in] matrix: Xavier uniform
            const double limit = std::sqrt(6.0 / double(t.shape[0] + t.shape[1]));
            for (size_t i = 0; i < t.size; ++i) w[i] = float(limit * (2.0 * rng.uniform() - 1.0));
        } else if (ends_with(t.name, "embed/cls")) {
            for (size_t i = 0; i < t.size; ++i) w[i] = 0.02f * rng.normal();
        } else if (ends_with(t.name, "embed/pos")) {
            sincos_position_init(w);
        } else if (ends_with(t.name, "/w") && !t.decay) {   // norm scales
            std::fill(w, w + t.size, 1.0f);
        } else {                              // biases, norm shifts, the head
            std::fill(w, w + t.size, 0.0f);
        }
    }
}

// pos [T,C]: row 0 (class token) zero; patch (y,x) gets sin/cos of y on the first C/2 channels
// and of x on the rest, at C/4 geometric frequencies each (channels beyond 4*(C/4) stay zero).
void Model::sincos_position_init(float* pos) const {
    const int C = cfg.dim, q = C / 4, gw = cfg.grid_w();
    std::fill(pos, pos + size_t(cfg.tokens()) * C, 0.0f);
    for (int p = 0; p < cfg.num_patches(); ++p) {
        float* row = pos + size_t(p + 1) * C;
        const double coord[2] = {double(p / gw), double(p % gw)};
        for (int a = 0; a < 2; ++a)
            for (int i = 0; i < q; ++i) {
                const double omega = 1.0 / std::pow(10000.0, double(i) / std::max(1, q));
                row[a * 2 * q + i] = float(std::sin(coord[a] * omega));
                row[a * 2 * q + q + i] = float(std::cos(coord[a] * omega));
            }
    }
}

size_t Model::num_params() const {
    size_t n = 0;
    for (const auto& t : layout) n += t.size;
    return n;
}

size_t Model::num_active_params(const Active& in) const {
    Active a = in;
    a.resolve(cfg);
    const size_t C = cfg.dim, hd = cfg.head_dim();
    size_t n = C * cfg.patch_dim() + C + C + size_t(cfg.tokens()) * C;
    for (int l = 0; l < a.depth; ++l) {
        size_t A = a.heads[l] * hd, H = a.hidden[l];
        n += 2 * C + 3 * A * C + (cfg.qkv_bias ? 3 * A : 0) + (cfg.qk_norm ? 4 * hd : 0);
        n += A * C + C + (cfg.parallel_block ? 0 : 2 * C);
        n += H * C + H + C * H + C;
    }
    n += 2 * C + size_t(cfg.tasks[a.task].num_classes) * (C + 1);
    return n;
}

double Model::forward_flops(const Active& in) const {
    Active a = in;
    a.resolve(cfg);
    const double T = cfg.tokens(), C = cfg.dim, hd = cfg.head_dim();
    double f = 2.0 * cfg.num_patches() * cfg.patch_dim() * C;
    for (int l = 0; l < a.depth; ++l) {
        double A = a.heads[l] * hd, H = a.hidden[l];
        f += 2 * T * C * 3 * A;       // qkv
        f += 2 * 2 * T * T * A;       // q k^T and att v
        f += 2 * T * A * C;           // proj
        f += 2 * 2 * T * C * H;       // fc1, fc2
    }
    f += 2 * C * cfg.tasks[a.task].num_classes;
    return f;
}

// ---------------------------------------------------------------- activations

void Activations::allocate(const ViTConfig& cfg, int B, bool training) {
    max_batch = B;
    const size_t T = cfg.tokens(), C = cfg.dim, H = cfg.mlp_hidden, NH = cfg.heads;
    const size_t N = size_t(B) * T, P = cfg.num_patches();
    size_t K = 0;
    for (const auto& t : cfg.tasks) K = std::max<size_t>(K, t.num_classes);
    // Inference keeps one block's activations and ping-pongs the residual stream.
    const int stored_blocks = training ? cfg.depth : 1;
    const int stored_res = training ? cfg.depth + 1 : 2;
    const size_t block_size = N * C + 2 * N + N * 3 * C + (cfg.qk_norm ? 2 * N * C + 4 * N * NH : 0) +
                              size_t(B) * NH * T * T + N * C + N * C + N * C + 2 * N + 2 * N * H;
    size_t total = size_t(B) * P * cfg.patch_dim() + size_t(B) * P * C + stored_res * N * C +
                   stored_blocks * block_size + B * C * 2 + 2 * B + 2 * B * K;
    const bool mixing = training && cfg.ffn_sets > 1;
    if (mixing) total += stored_blocks * (2 * N * H + 2 * N * C) + N * C + size_t(cfg.depth) * B * 2;
    if (training)
        total += N * C * 2 + N * 3 * C + 2 * N * C + N * C + 2 * N * H + 3 * B * C + B * K + B * P * C;
    // Bounded by ViTConfig::validate's limits, so `total` cannot wrap; the batch size is the
    // caller's, and a size the machine cannot hold is an error, not a crash.
    const std::string what = "activations for a batch of " + std::to_string(B);
    if (total > (size_t(1) << 60)) fail("", what + " are too large");
    bounds::resize_or_fail(buf, int64_t(total), "", what);
    std::fill(buf.begin(), buf.end(), 0.0f);
    float* cur = buf.data();
    auto take = [&](size_t n) { float* r = cur; cur += n; return r; };
    patches = take(size_t(B) * P * cfg.patch_dim());
    emb = take(size_t(B) * P * C);
    std::vector<float*> r(stored_res);
    for (auto& x : r) x = take(N * C);
    res.resize(cfg.depth + 1);
    for (int l = 0; l <= cfg.depth; ++l) res[l] = r[training ? l : l % 2];
    std::vector<Block> bl(stored_blocks);
    for (auto& b : bl) {
        b.ln1 = take(N * C); b.ln1_mean = take(N); b.ln1_rstd = take(N);
        b.qkv = take(N * 3 * C);
        if (cfg.qk_norm) {
            b.qn = take(N * C); b.kn = take(N * C);
            b.qn_mean = take(N * NH); b.qn_rstd = take(N * NH); b.kn_mean = take(N * NH); b.kn_rstd = take(N * NH);
        } else {
            b.qn = b.kn = b.qn_mean = b.qn_rstd = b.kn_mean = b.kn_rstd = nullptr;
        }
        b.att = take(size_t(B) * NH * T * T);
        b.atty = take(N * C);
        b.x1 = take(N * C);
        b.ln2 = take(N * C); b.ln2_mean = take(N); b.ln2_rstd = take(N);
        b.fc1 = take(N * H); b.gelu = take(N * H);
        if (mixing) {
            b.fc1_own = take(N * H); b.gelu_own = take(N * H);
            b.expert_out[0] = take(N * C); b.expert_out[1] = take(N * C);
        } else {
            b.fc1_own = b.gelu_own = b.expert_out[0] = b.expert_out[1] = nullptr;
        }
    }
    blocks.resize(cfg.depth);
    for (int l = 0; l < cfg.depth; ++l) blocks[l] = bl[training ? l : 0];
    cls_in = take(B * C);
    lnf = take(B * C); lnf_mean = take(B); lnf_rstd = take(B);
    logits = take(B * K); probs = take(B * K);
    if (training) {
        d_res = take(N * C); d_ln = take(N * C); d_qkv = take(N * 3 * C);
        d_qn = take(N * C); d_kn = take(N * C); d_atty = take(N * C);
        d_fc1 = take(N * H); d_gelu = take(N * H);
        d_cls = take(B * C); d_lnf = take(B * C); d_emb = take(size_t(B) * P * C);
        d_logits = take(B * K);
    } else {
        d_res = d_ln = d_qkv = d_qn = d_kn = d_atty = d_fc1 = d_gelu = nullptr;
        d_cls = d_lnf = d_emb = d_logits = nullptr;
    }
    if (mixing) {
        d_mix = take(N * C);
        d_gates = take(size_t(cfg.depth) * B * 2);
    } else {
        d_mix = d_gates = nullptr;
    }
    if (size_t(cur - buf.data()) > buf.size()) fail("", "internal error: activation buffer overflow");
}

// ---------------------------------------------------------------- forward

void Model::forward(Activations& act, const uint8_t* images, int B, const Active& in) const {
    Active a = in;
    a.resolve(cfg);
    if (B > act.max_batch) fail("", "batch larger than the activation buffers");
    const int T = cfg.tokens(), C = cfg.dim, P = cfg.num_patches(), pd = cfg.patch_dim();
    const int ps = cfg.patch, gw = cfg.grid_w(), ch = cfg.img_c, hd = cfg.head_dim();
    const int N = B * T;

    // im2col with normalisation: patches[b, p, (ky*ps + kx)*ch + c]
    float scale[3], shift[3];
    for (int c = 0; c < ch; ++c) {
        scale[c] = 1.0f / (255.0f * cfg.in_std[c]);
        shift[c] = -cfg.in_mean[c] / cfg.in_std[c];
    }
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; ++b) {
        const uint8_t* img = images + size_t(b) * cfg.img_h * cfg.img_w * ch;
        for (int p = 0; p < P; ++p) {
            int py = p / gw, px = p % gw;
            float* dst = act.patches + (size_t(b) * P + p) * pd;
            for (int ky = 0; ky < ps; ++ky) {
                const uint8_t* src = img + (size_t(py * ps + ky) * cfg.img_w + px * ps) * ch;
                for (int i = 0; i < ps * ch; ++i) dst[ky * ps * ch + i] = src[i] * scale[i % ch] + shift[i % ch];
            }
        }
    }
    matmul_forward(act.emb, C, act.patches, pd, p.patch_w, pd, p.patch_b, B * P, pd, C, false);
    float* x0 = act.res[0];
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; ++b) {
        float* xb = x0 + size_t(b) * T * C;
        for (int c = 0; c < C; ++c) xb[c] = p.cls[c] + p.pos[c];
        for (int t = 1; t < T; ++t) {
            const float* e = act.emb + (size_t(b) * P + t - 1) * C;
            for (int c = 0; c < C; ++c) xb[size_t(t) * C + c] = e[c] + p.pos[size_t(t) * C + c];
        }
    }

    for (int l = 0; l < a.depth; ++l) {
        const BlockParams& w = p.blocks[l];
        const FFNParams& f = w.ffn[a.ffn_set[l]];
        const Activations::Block& s = act.blocks[l];
        const float* x = act.res[l];
        float* y = act.res[l + 1];
        const int nh = a.heads[l], A = nh * hd, H = a.hidden[l];

        layernorm_forward(s.ln1, s.ln1_mean, s.ln1_rstd, x, C, w.ln1_w, w.ln1_b, N, 1, C);
        if (A == C) {
            matmul_forward(s.qkv, 3 * A, s.ln1, C, w.qkv_w, C, w.qkv_b, N, C, 3 * C, false);
        } else {   // the first nh heads of q, k and v: three row slices of the fused weight
            for (int part = 0; part < 3; ++part)
                matmul_forward(s.qkv + part * A, 3 * A, s.ln1, C, w.qkv_w + size_t(part) * C * C, C,
                               w.qkv_b ? w.qkv_b + part * C : nullptr, N, C, A, false);
        }
        const float *q = s.qkv, *k = s.qkv + A;
        int ldq = 3 * A, ldk = 3 * A;
        if (cfg.qk_norm) {
            layernorm_forward(s.qn, s.qn_mean, s.qn_rstd, s.qkv, 3 * A, w.qn_w, w.qn_b, N, nh, hd);
            layernorm_forward(s.kn, s.kn_mean, s.kn_rstd, s.qkv + A, 3 * A, w.kn_w, w.kn_b, N, nh, hd);
            q = s.qn; k = s.kn; ldq = ldk = A;
        }
        attention_forward(s.atty, s.att, q, ldq, k, ldk, s.qkv + 2 * A, 3 * A, B, T, nh, hd);

        const float* ffn_in;
        float* ffn_out;
        if (cfg.parallel_block) {
            std::memcpy(y, x, sizeof(float) * size_t(N) * C);
            matmul_forward(y, C, s.atty, A, w.proj_w, C, w.proj_b, N, A, C, true);
            ffn_in = s.ln1;
            ffn_out = y;
        } else {
            std::memcpy(s.x1, x, sizeof(float) * size_t(N) * C);
            matmul_forward(s.x1, C, s.atty, A, w.proj_w, C, w.proj_b, N, A, C, true);
            layernorm_forward(s.ln2, s.ln2_mean, s.ln2_rstd, s.x1, C, w.ln2_w, w.ln2_b, N, 1, C);
            std::memcpy(y, s.x1, sizeof(float) * size_t(N) * C);
            ffn_in = s.ln2;
            ffn_out = y;
        }
        if (!a.gates) {
            matmul_forward(s.fc1, H, ffn_in, C, f.fc1_w, C, f.fc1_b, N, C, H, false);
            gelu_forward(s.gelu, s.fc1, long(N) * H);
            matmul_forward(ffn_out, C, s.gelu, H, f.fc2_w, cfg.mlp_hidden, f.fc2_b, N, H, C, true);
            continue;
        }
        // Task-MoE mixing: out[b] += gate[b][0] * shared(in[b]) + gate[b][1] * own(in[b])
        if (!s.fc1_own) fail("", "FFN mixing needs activations allocated for training");
        for (int e = 0; e < 2; ++e) {
            const FFNParams& fe = w.ffn[e == 0 ? 0 : a.task + 1];
            float* fc1 = e == 0 ? s.fc1 : s.fc1_own;
            float* gl = e == 0 ? s.gelu : s.gelu_own;
            matmul_forward(fc1, H, ffn_in, C, fe.fc1_w, C, fe.fc1_b, N, C, H, false);
            gelu_forward(gl, fc1, long(N) * H);
            matmul_forward(s.expert_out[e], C, gl, H, fe.fc2_w, cfg.mlp_hidden, fe.fc2_b, N, H, C, false);
        }
        const float* gate = a.gates + size_t(l) * B * 2;   // [B,2]
#pragma omp parallel for schedule(static)
        for (int b = 0; b < B; ++b) {
            const float g0 = gate[2 * b], g1 = gate[2 * b + 1];
            const size_t o = size_t(b) * T * C;
            for (size_t i = 0; i < size_t(T) * C; ++i)
                ffn_out[o + i] += g0 * s.expert_out[0][o + i] + g1 * s.expert_out[1][o + i];
        }
    }

    const float* xl = act.res[a.depth];
    for (int b = 0; b < B; ++b) std::memcpy(act.cls_in + size_t(b) * C, xl + size_t(b) * T * C, sizeof(float) * C);
    layernorm_forward(act.lnf, act.lnf_mean, act.lnf_rstd, act.cls_in, C, p.lnf_w, p.lnf_b, B, 1, C);
    const int K = cfg.tasks[a.task].num_classes;
    const TaskParams& hp = p.heads[a.task];
    matmul_forward(act.logits, K, act.lnf, C, hp.w, C, hp.b, B, C, K, false);
    for (int b = 0; b < B; ++b) {
        const float* z = act.logits + size_t(b) * K;
        float* pr = act.probs + size_t(b) * K;
        float mx = *std::max_element(z, z + K), sum = 0.0f;
        for (int i = 0; i < K; ++i) sum += (pr[i] = std::exp(z[i] - mx));
        for (int i = 0; i < K; ++i) pr[i] /= sum;
    }
}

float Model::loss(Activations& act, const int32_t* labels, int B, int K, float smoothing, bool grad,
                  float loss_scale, int* correct) const {
    double total = 0.0;
    int right = 0;
    const float off = smoothing / K, on = 1.0f - smoothing + off;
    for (int b = 0; b < B; ++b) {
        const float* pr = act.probs + size_t(b) * K;
        const int y = labels[b];
        double l = 0.0;
        for (int i = 0; i < K; ++i) {
            float q = i == y ? on : off;
            if (q > 0) l -= q * std::log(std::max(pr[i], 1e-30f));
        }
        total += l;
        if (int(std::max_element(pr, pr + K) - pr) == y) ++right;
        if (grad) {
            float* d = act.d_logits + size_t(b) * K;
            for (int i = 0; i < K; ++i) d[i] = (pr[i] - (i == y ? on : off)) * loss_scale / B;
        }
    }
    if (correct) *correct = right;
    return float(total / B);
}

// ---------------------------------------------------------------- backward

void Model::backward(Activations& act, int B, const Active& a) {
    enable_grads();
    backward(act, B, a, g);
}

void Model::backward(Activations& act, int B, const Active& in, const ParamPtrs& g) const {
    Active a = in;
    a.resolve(cfg);
    if (!act.d_res) fail("", "activations were allocated without training buffers");
    const int T = cfg.tokens(), C = cfg.dim, P = cfg.num_patches(), pd = cfg.patch_dim(), hd = cfg.head_dim();
    const int N = B * T, K = cfg.tasks[a.task].num_classes;

    const TaskParams &hp = p.heads[a.task], &hg = g.heads[a.task];
    matmul_backward(act.d_lnf, C, hg.w, C, hg.b, act.d_logits, K, act.lnf, C, hp.w, C, B, C, K, false);
    std::memset(act.d_cls, 0, sizeof(float) * size_t(B) * C);
    layernorm_backward(act.d_cls, C, g.lnf_w, g.lnf_b, act.d_lnf, act.cls_in, C, p.lnf_w, act.lnf_mean,
                       act.lnf_rstd, B, 1, C);
    std::memset(act.d_res, 0, sizeof(float) * size_t(N) * C);
    for (int b = 0; b < B; ++b) std::memcpy(act.d_res + size_t(b) * T * C, act.d_cls + size_t(b) * C, sizeof(float) * C);

    for (int l = a.depth - 1; l >= 0; --l) {
        const BlockParams& w = p.blocks[l];
        const BlockParams& gw = g.blocks[l];
        const FFNParams& f = w.ffn[a.ffn_set[l]];
        const FFNParams& gf = gw.ffn[a.ffn_set[l]];
        const Activations::Block& s = act.blocks[l];
        const float* x = act.res[l];
        const int nh = a.heads[l], A = nh * hd, H = a.hidden[l];

        // FFN: out += fc2(gelu(fc1(in)))
        const float* ffn_in = cfg.parallel_block ? s.ln1 : s.ln2;
        if (!a.gates) {
            matmul_backward(act.d_gelu, H, gf.fc2_w, cfg.mlp_hidden, gf.fc2_b, act.d_res, C, s.gelu, H, f.fc2_w,
                            cfg.mlp_hidden, N, H, C, false);
            gelu_backward(act.d_fc1, act.d_gelu, s.fc1, long(N) * H);
            matmul_backward(act.d_ln, C, gf.fc1_w, C, gf.fc1_b, act.d_fc1, H, ffn_in, C, f.fc1_w, C, N, C, H, false);
        } else {
            // d gate[b][e] = <d out[b], expert_e(in[b])>; expert e sees gate[b][e] * d out[b].
            const float* gate = a.gates + size_t(l) * B * 2;
            float* dgate = act.d_gates + size_t(l) * B * 2;
            for (int e = 0; e < 2; ++e) {
                const int set = e == 0 ? 0 : a.task + 1;
                const FFNParams& fe = w.ffn[set];
                const FFNParams& ge = gw.ffn[set];
                const float* eo = s.expert_out[e];
#pragma omp parallel for schedule(static)
                for (int b = 0; b < B; ++b) {
                    const size_t o = size_t(b) * T * C;
                    double dot = 0.0;
                    for (size_t i = 0; i < size_t(T) * C; ++i) {
                        dot += double(act.d_res[o + i]) * eo[o + i];
                        act.d_mix[o + i] = gate[2 * b + e] * act.d_res[o + i];
                    }
                    dgate[2 * b + e] = float(dot);
                }
                matmul_backward(act.d_gelu, H, ge.fc2_w, cfg.mlp_hidden, ge.fc2_b, act.d_mix, C,
                                e == 0 ? s.gelu : s.gelu_own, H, fe.fc2_w, cfg.mlp_hidden, N, H, C, false);
                gelu_backward(act.d_fc1, act.d_gelu, e == 0 ? s.fc1 : s.fc1_own, long(N) * H);
                matmul_backward(act.d_ln, C, ge.fc1_w, C, ge.fc1_b, act.d_fc1, H, ffn_in, C, fe.fc1_w, C, N, C, H,
                                e > 0);
            }
        }
        if (!cfg.parallel_block)   // d_res becomes d(x1)
            layernorm_backward(act.d_res, C, gw.ln2_w, gw.ln2_b, act.d_ln, s.x1, C, w.ln2_w, s.ln2_mean,
                               s.ln2_rstd, N, 1, C);

        // attention: out += proj(attention(qkv(ln1(x))))
        matmul_backward(act.d_atty, A, gw.proj_w, C, gw.proj_b, act.d_res, C, s.atty, A, w.proj_w, C, N, A, C,
                        false);
        std::memset(act.d_qkv, 0, sizeof(float) * size_t(N) * 3 * A);
        const float* v = s.qkv + 2 * A;
        if (cfg.qk_norm) {
            std::memset(act.d_qn, 0, sizeof(float) * size_t(N) * A);
            std::memset(act.d_kn, 0, sizeof(float) * size_t(N) * A);
            attention_backward(act.d_qn, A, act.d_kn, A, act.d_qkv + 2 * A, 3 * A, act.d_atty, s.qn, A, s.kn, A,
                               v, 3 * A, s.att, B, T, nh, hd);
            layernorm_backward(act.d_qkv, 3 * A, gw.qn_w, gw.qn_b, act.d_qn, s.qkv, 3 * A, w.qn_w, s.qn_mean,
                               s.qn_rstd, N, nh, hd);
            layernorm_backward(act.d_qkv + A, 3 * A, gw.kn_w, gw.kn_b, act.d_kn, s.qkv + A, 3 * A, w.kn_w,
                               s.kn_mean, s.kn_rstd, N, nh, hd);
        } else {
            attention_backward(act.d_qkv, 3 * A, act.d_qkv + A, 3 * A, act.d_qkv + 2 * A, 3 * A, act.d_atty,
                               s.qkv, 3 * A, s.qkv + A, 3 * A, v, 3 * A, s.att, B, T, nh, hd);
        }
        // In a parallel block d_ln already holds the FFN's share of d(ln1).
        const bool acc = cfg.parallel_block;
        if (A == C) {
            matmul_backward(act.d_ln, C, gw.qkv_w, C, gw.qkv_b, act.d_qkv, 3 * C, s.ln1, C, w.qkv_w, C, N, C,
                            3 * C, acc);
        } else {
            for (int part = 0; part < 3; ++part)
                matmul_backward(act.d_ln, C, gw.qkv_w + size_t(part) * C * C, C,
                                gw.qkv_b ? gw.qkv_b + part * C : nullptr, act.d_qkv + part * A, 3 * A, s.ln1, C,
                                w.qkv_w + size_t(part) * C * C, C, N, C, A, acc || part > 0);
        }
        layernorm_backward(act.d_res, C, gw.ln1_w, gw.ln1_b, act.d_ln, x, C, w.ln1_w, s.ln1_mean, s.ln1_rstd,
                           N, 1, C);
    }

    // embeddings: x0[b,t] = (t == 0 ? cls : emb[b,t-1]) + pos[t]
    colsum_accumulate(g.pos, act.d_res, T * C, B, T * C);
    colsum_accumulate(g.cls, act.d_res, T * C, B, C);
    for (int b = 0; b < B; ++b)
        std::memcpy(act.d_emb + size_t(b) * P * C, act.d_res + (size_t(b) * T + 1) * C, sizeof(float) * size_t(P) * C);
    matmul_backward(nullptr, 0, g.patch_w, pd, g.patch_b, act.d_emb, C, act.patches, pd, p.patch_w, pd, B * P, pd,
                    C, false);
}

}  // namespace ufo
