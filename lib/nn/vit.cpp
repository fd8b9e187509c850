// vit.cpp — ViT configuration, parameter declaration, forward and backward.
#include "nn/vit.h"

#include "layers/vit_kernels.h"
#include "nn/losses.h"
#include "nn/router.h"

#include "base/bounds.h"

#include "base/common.h"
#include "layers/fused_attention.h"
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
    for (const auto& [what, v, hi] : {std::tuple{"heads", &block_heads, heads}, std::tuple{"hidden units", &block_hidden, mlp_hidden}}) {
        if (v->empty()) continue;
        if (int(v->size()) != depth)
            bad("per-block " + std::string(what) + " list " + std::to_string(v->size()) + " blocks, the model " +
                std::to_string(depth));
        for (size_t l = 0; l < v->size(); ++l)
            if ((*v)[l] < 1 || (*v)[l] > hi)
                bad("block " + std::to_string(l) + " has " + std::to_string((*v)[l]) + " " + what + ", outside 1.." +
                    std::to_string(hi));
    }
    if (is_elastic()) {
        if (tasks.size() != 1 || ffn_sets != 1) bad("an elastic model has one task and one FFN per block");
        if (!block_heads.empty() || !block_hidden.empty())
            bad("an elastic model has the same heads and FFN width in every block");
        for (const auto& [what, v, hi] : {std::tuple{"depth", &elastic.depth, depth}, std::tuple{"heads", &elastic.heads, heads},
                                          std::tuple{"FFN width", &elastic.hidden, mlp_hidden}}) {
            if (v->empty()) bad(std::string("the elastic ") + what + " choices are empty");
            for (size_t i = 0; i < v->size(); ++i)
                if ((*v)[i] < 1 || (*v)[i] > hi || (i > 0 && (*v)[i] <= (*v)[i - 1]))
                    bad(std::string("the elastic ") + what + " choices must be ascending, distinct and in 1.." +
                        std::to_string(hi));
            if (v->back() != hi)
                bad(std::string("the largest elastic ") + what + " choice is " + std::to_string(v->back()) +
                    ", not the model's " + std::to_string(hi) + " (the largest sub-network is the whole model)");
        }
    }
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
    // The parameter count in 64 bits, from the declaration itself (its table of shapes is small:
    // the limits above bound it), before anything is allocated.
    int64_t total = 0;
    for (const auto& t : vit_layout(*this)) {
        int64_t n = 1;
        for (auto d : t.shape)
            if (!bounds::mul(n, d, &n)) bad("the model's size overflows");
        total += (n + 15) / 16 * 16;
    }
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
    for (int l = 0; l < std::min(depth, o.depth); ++l) {
        cmp(("heads of block " + std::to_string(l)).c_str(), heads_at(l), o.heads_at(l));
        cmp(("FFN width of block " + std::to_string(l)).c_str(), hidden_at(l), o.hidden_at(l));
    }
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
    auto list = [&](const std::vector<int>& v) {
        for (size_t i = 0; i < v.size(); ++i) s << (i ? "," : "") << v[i];
    };
    if (!block_heads.empty()) { s << " block-heads "; list(block_heads); }
    if (!block_hidden.empty()) { s << " block-mlp "; list(block_hidden); }
    if (is_elastic()) {
        s << " elastic depth "; list(elastic.depth);
        s << " heads "; list(elastic.heads);
        s << " mlp "; list(elastic.hidden);
    }
    return s.str();
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

Active active_full(const ViTConfig& cfg, int task) {
    Active a;
    a.task = task;
    resolve_active(cfg, a);
    return a;
}

Active active_for_task(const ViTConfig& cfg, int task) {
    Active a;
    a.task = task;
    if (cfg.is_supernet() && task >= 0 && task < int(cfg.tasks.size())) {
        a.ffn_set.resize(cfg.depth);
        for (int l = 0; l < cfg.depth; ++l) a.ffn_set[l] = cfg.tasks[task].route[l] ? task + 1 : 0;
    }
    resolve_active(cfg, a);
    return a;
}

void resolve_active(const ViTConfig& cfg, Active& a) {
    if (a.depth < 0) a.depth = cfg.depth;
    if (a.depth < 1 || a.depth > cfg.depth) fail("", "active depth out of range");
    if (cfg.tasks.empty()) fail("", "the model has no task heads (a shared backbone)");
    if (a.task < 0 || a.task >= int(cfg.tasks.size())) fail("", "task index out of range");
    if (a.mixing() && !cfg.is_supernet()) fail("", "FFN mixing needs a Task-MoE supernet");
    if (a.heads.empty())
        for (int l = 0; l < cfg.depth; ++l) a.heads.push_back(cfg.heads_at(l));
    if (a.hidden.empty())
        for (int l = 0; l < cfg.depth; ++l) a.hidden.push_back(cfg.hidden_at(l));
    if (a.ffn_set.empty()) a.ffn_set.assign(cfg.depth, 0);
    if (int(a.heads.size()) < a.depth || int(a.hidden.size()) < a.depth || int(a.ffn_set.size()) < a.depth)
        fail("", "active configuration lists fewer entries than the active depth");
    for (int l = 0; l < a.depth; ++l) {
        if (a.heads[l] < 1 || a.heads[l] > cfg.heads_at(l)) fail("", "active heads out of range");
        if (a.hidden[l] < 1 || a.hidden[l] > cfg.hidden_at(l)) fail("", "active hidden units out of range");
        if (a.ffn_set[l] < 0 || a.ffn_set[l] >= cfg.ffn_sets) fail("", "FFN weight set out of range");
    }
}

// ---------------------------------------------------------------- parameters

static std::string ffn_set_name(const ViTConfig& cfg, int s) {
    if (s == 0) return "shared";
    if (cfg.ffn_sets == int(cfg.tasks.size()) + 1) return cfg.tasks[s - 1].name;
    return "set" + std::to_string(s);
}

// The ViT's tensors, in checkpoint order. Roles say what each tensor is; names are only
// where it lives in the file.
void declare_vit(const ViTConfig& cfg, ParamBinder& add, ParamPtrs& p) {
    const int64_t C = cfg.dim, hd = cfg.head_dim();
    // unit tells apart tensors of the same kind in one place: embed patch 0, class token 1,
    // positions 2; ln1 0, ln2 1; qkv 0, proj 1, q-norm 2, k-norm 3; fc1 0, fc2 1.
    auto role = [](Kind k, Part part, Init init, bool weight = true, int block = -1, int set = -1, int task = -1,
                   int unit = 0) {
        Role r;
        r.kind = k; r.part = part; r.init = init; r.weight = weight; r.block = block; r.ffn_set = set; r.task = task;
        r.unit = unit;
        return r;
    };
    p = ParamPtrs{};
    p.patch_w = add("embed/patch/w", {C, cfg.patch_dim()}, role(Kind::Matrix, Part::Embed, Init::XavierUniform));
    p.patch_b = add("embed/patch/b", {C}, role(Kind::Bias, Part::Embed, Init::Zero));
    p.cls = add("embed/cls", {C}, role(Kind::Embedding, Part::Embed, Init::Normal002, true, -1, -1, -1, 1));
    p.pos = add("embed/pos", {cfg.tokens(), C}, role(Kind::Embedding, Part::Embed, Init::Custom, true, -1, -1, -1, 2));
    p.blocks.resize(cfg.depth);
    for (int l = 0; l < cfg.depth; ++l) {
        BlockParams& bp = p.blocks[l];
        bp = BlockParams{};
        const int64_t A = cfg.heads_at(l) * hd, H = cfg.hidden_at(l);   // this block's widths
        const std::string b = "blocks/" + std::to_string(l) + "/";
        // LayerNorm scale or shift of width C (ln1, ln2) or hd (QK-norm, part of attention).
        auto norm = [&](const std::string& n, bool w, int unit, Part part = Part::Norm) {
            return add(b + n, {part == Part::Attn ? hd : C},
                       role(Kind::Norm, part, w ? Init::One : Init::Zero, w, l, -1, -1, unit));
        };
        bp.ln1_w = norm("ln1/w", true, 0); bp.ln1_b = norm("ln1/b", false, 0);
        bp.qkv_w = add(b + "attn/qkv/w", {3 * A, C}, role(Kind::Matrix, Part::Attn, Init::XavierUniform, true, l));
        if (cfg.qkv_bias) bp.qkv_b = add(b + "attn/qkv/b", {3 * A}, role(Kind::Bias, Part::Attn, Init::Zero, false, l));
        if (cfg.qk_norm) {   // QK-norm belongs to attention: its scales have head-dim shape
            bp.qn_w = norm("attn/q_norm/w", true, 2, Part::Attn); bp.qn_b = norm("attn/q_norm/b", false, 2, Part::Attn);
            bp.kn_w = norm("attn/k_norm/w", true, 3, Part::Attn); bp.kn_b = norm("attn/k_norm/b", false, 3, Part::Attn);
        }
        bp.proj_w = add(b + "attn/proj/w", {C, A}, role(Kind::Matrix, Part::Attn, Init::XavierUniform, true, l, -1, -1, 1));
        bp.proj_b = add(b + "attn/proj/b", {C}, role(Kind::Bias, Part::Attn, Init::Zero, false, l, -1, -1, 1));
        if (!cfg.parallel_block) { bp.ln2_w = norm("ln2/w", true, 1); bp.ln2_b = norm("ln2/b", false, 1); }
        bp.ffn.resize(cfg.ffn_sets);
        for (int s = 0; s < cfg.ffn_sets; ++s) {
            const std::string f = b + "ffn/" + ffn_set_name(cfg, s) + "/";
            const int owner = cfg.is_supernet() && s > 0 ? s - 1 : -1;
            FFNParams& fp = bp.ffn[s];
            fp.fc1_w = add(f + "fc1/w", {H, C}, role(Kind::Matrix, Part::Ffn, Init::XavierUniform, true, l, s, owner));
            fp.fc1_b = add(f + "fc1/b", {H}, role(Kind::Bias, Part::Ffn, Init::Zero, false, l, s, owner));
            fp.fc2_w = add(f + "fc2/w", {C, H}, role(Kind::Matrix, Part::Ffn, Init::XavierUniform, true, l, s, owner, 1));
            fp.fc2_b = add(f + "fc2/b", {C}, role(Kind::Bias, Part::Ffn, Init::Zero, false, l, s, owner, 1));
        }
    }
    p.lnf_w = add("norm/w", {C}, role(Kind::Norm, Part::Norm, Init::One));
    p.lnf_b = add("norm/b", {C}, role(Kind::Norm, Part::Norm, Init::Zero, false));
    p.heads.resize(cfg.tasks.size());
    for (size_t t = 0; t < cfg.tasks.size(); ++t) {
        const std::string n = "tasks/" + cfg.tasks[t].name + "/";
        const int64_t K = cfg.tasks[t].num_classes;
        p.heads[t].w = add(n + "head/w", {K, C}, role(Kind::Head, Part::Head, Init::Zero, true, -1, -1, int(t)));
        p.heads[t].b = add(n + "head/b", {K}, role(Kind::Head, Part::Head, Init::Zero, false, -1, -1, int(t)));
        p.heads[t].router = cfg.is_supernet()
                                ? add(n + "router", {cfg.depth, 2}, role(Kind::Router, Part::Router, Init::Zero, true,
                                                                         -1, -1, int(t)))
                                : nullptr;
    }
}

std::vector<ParamInfo> vit_layout(const ViTConfig& cfg, size_t* total) {
    std::vector<ParamInfo> L;
    ParamBinder b(&L);
    ParamPtrs unused;
    declare_vit(cfg, b, unused);
    if (total) *total = b.total();
    return L;
}

ViT::ViT(const ViTConfig& c) : cfg(c) {
    cfg.validate("");
    size_t total = 0;
    auto L = vit_layout(cfg, &total);
    set_layout(std::move(L), total);
    p = bind(params.data());
}

ParamPtrs ViT::bind(float* base, const std::vector<char>* skip) const {
    ParamBinder b(layout, base, skip);
    ParamPtrs out;
    declare_vit(cfg, b, out);
    return out;
}

// Initialisation after "Better plain ViT baselines" (Beyer et al. 2022) and MAE: Xavier-uniform
// matrices, a zero head, and position embeddings that start as 2-D sine-cosine codes of the patch
// grid (still learned). Starting from tiny random positions leaves a ViT blind to where a patch is
// for hundreds of steps, which small datasets cannot afford. The roles carry the rules; the
// positions are the one custom case.
// pos [T,C]: row 0 (class token) zero; patch (y,x) gets sin/cos of y on the first C/2 channels
// and of x on the rest, at C/4 geometric frequencies each (channels beyond 4*(C/4) stay zero).
void ViT::init_custom(const ParamInfo& info, float* pos) const {
    if (info.role.kind != Kind::Embedding) Network::init_custom(info, pos);
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

size_t ViT::num_active_params(const Active& in) const {
    Active a = in;
    resolve_active(cfg, a);
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

// Images whose block activations at inference (ln1, ln2, qkv, attention output, two residual
// rows, fc1 and GELU outputs) take about 6 MiB. Measured on the 2-core development machine at
// one thread: the small preset (230 KB per image: 27 images) ran 3,177 img/s at batch 32 and
// 2,443 at batch 256 in one pass; the reference ViT (614 KB: 10 images) 632 at batch 8 or 16
// and 607 at batch 256.
int ViT::inference_chunk() const {
    const double per_image = 4.0 * cfg.tokens() * (5.0 * cfg.dim + 3.0 * cfg.heads * cfg.head_dim() + 2.0 * cfg.mlp_hidden);
    return int(std::clamp((6 << 20) / per_image, 1.0, 4096.0));
}

double ViT::forward_flops(const Active& in) const {
    Active a = in;
    resolve_active(cfg, a);
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

// Inference keeps one block's activations and ping-pongs the residual stream; training keeps
// every block's, and the attention probabilities the backward pass needs (inference keeps
// them only where the fused attention kernel cannot run). Mixing buffers exist only when
// training a Task-MoE supernet.
void Activations::bind(Arena& ar, const ViTConfig& cfg, int B, bool training) {
    const size_t T = cfg.tokens(), C = cfg.dim, H = cfg.mlp_hidden, NH = cfg.heads;
    const size_t N = size_t(B) * T, P = cfg.num_patches(), K = size_t(cfg.max_classes());
    const bool mixing = training && cfg.ffn_sets > 1;
    const int stored_blocks = training ? cfg.depth : 1;
    const int stored_res = training ? cfg.depth + 1 : 2;
    auto take = [&](size_t n) { return ar.take(n); };
    patches = take(size_t(B) * P * cfg.patch_dim());
    emb = take(size_t(B) * P * C);
    std::vector<float*> r(stored_res);
    for (auto& x : r) x = take(N * C);
    res.resize(cfg.depth + 1);
    for (int l = 0; l <= cfg.depth; ++l) res[l] = r[training ? l : l % 2];
    const bool keep_att = training || !attention_fused_supported(int(T));
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
        b.att = keep_att ? take(size_t(B) * NH * T * T) : nullptr;
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
    qkv_w_part = take(3 * C * C); qkv_b_part = take(3 * C);
    cls_in = take(B * C);
    lnf = take(B * C); lnf_mean = take(B); lnf_rstd = take(B);
    logits = take(B * K); probs = take(B * K);
    d_res = d_ln = d_qkv = d_qn = d_kn = d_atty = d_fc1 = d_gelu = nullptr;
    d_cls = d_lnf = d_emb = d_logits = d_mix = gates = soft = d_gates = nullptr;
    if (training) {
        d_res = take(N * C); d_ln = take(N * C); d_qkv = take(N * 3 * C);
        d_qn = take(N * C); d_kn = take(N * C); d_atty = take(N * C);
        d_fc1 = take(N * H); d_gelu = take(N * H);
        d_cls = take(B * C); d_lnf = take(B * C); d_emb = take(size_t(B) * P * C);
        d_logits = take(B * K);
    }
    if (mixing) {
        d_mix = take(N * C);
        const size_t G = size_t(cfg.depth) * B * 2;
        gates = take(G); soft = take(G); d_gates = take(G);
    }
}

void Activations::allocate(const ViTConfig& cfg, int B, bool training) {
    max_batch = B;
    this->training = training;
    Arena count;
    bind(count, cfg, B, training);
    // Sizes are bounded by ViTConfig::validate's limits, so the count cannot wrap; the batch
    // size is the caller's, and a size the machine cannot hold is an error, not a crash.
    const std::string what = "activations for a batch of " + std::to_string(B);
    if (count.used() > (size_t(1) << 60)) fail("", what + " are too large");
    bounds::resize_or_fail(buf, int64_t(count.used()), "", what);
    std::fill(buf.begin(), buf.end(), 0.0f);
    Arena real(buf.data());
    bind(real, cfg, B, training);
    grad_base = nullptr;
}

std::unique_ptr<Network> ViT::rebuild(const NetSpec& spec) const {
    ViTConfig c = cfg;
    c.tasks = spec.tasks;
    c.in_mean = spec.in_mean;
    c.in_std = spec.in_std;
    c.ffn_sets = 1;
    c.elastic = {};   // a new run trains the whole network unless it asks for an elastic one
    if (c.tasks.size() > 1) c.make_supernet();
    return std::make_unique<ViT>(c);
}

bool ViT::same_architecture(const Network& o, std::string* why) const {
    auto* v = dynamic_cast<const ViT*>(&o);
    if (!v) {
        if (why) *why = std::string("a ") + o.family() + " network, not a ViT";
        return false;
    }
    return cfg.same_architecture(v->cfg, why);
}

std::unique_ptr<Workspace> ViT::workspace(int max_batch, bool training) const {
    auto ws = std::make_unique<Activations>();
    ws->allocate(cfg, max_batch, training);
    return ws;
}

// ---------------------------------------------------------------- forward

void ViT::forward(Workspace& ws, const uint8_t* images, int B, const Active& in) const {
    Activations& act = static_cast<Activations&>(ws);
    Active a = in;
    resolve_active(cfg, a);
    if (B > act.max_batch) fail("", "batch larger than the activation buffers");
    const int T = cfg.tokens(), C = cfg.dim, P = cfg.num_patches(), pd = cfg.patch_dim(), hd = cfg.head_dim();
    const int N = B * T;
    // A fixed model's products run with packed weights when the caller asked for them
    // (DataParallel::pack_weights); else, and for weights gathered per call, the plain kernel.
    auto linear = [&](float* out, int ldo, const float* inp, int ldi, const float* w, int ldw, const float* b, int n,
                      int ic, int oc, bool accumulate) {
        if (act.packed) act.packed->forward(out, ldo, inp, ldi, w, ldw, b, n, ic, oc, accumulate);
        else matmul_forward(out, ldo, inp, ldi, w, ldw, b, n, ic, oc, accumulate);
    };

    float scale[4], shift[4];
    for (int c = 0; c < cfg.img_c; ++c) {
        scale[c] = 1.0f / (255.0f * cfg.in_std[c]);
        shift[c] = -cfg.in_mean[c] / cfg.in_std[c];
    }
    patchify_forward(act.patches, images, B, cfg.img_h, cfg.img_w, cfg.img_c, cfg.patch, scale, shift);
    linear(act.emb, C, act.patches, pd, p.patch_w, pd, p.patch_b, B * P, pd, C, false);
    tokens_forward(act.res[0], act.emb, p.cls, p.pos, B, T, C);

    // Task-MoE gates [depth,B,2]: drawn from the task's router, or given by the caller.
    const float* gates = a.gates;
    if (a.routing.on) {
        if (!act.gates) fail("", "FFN mixing needs activations allocated for training");
        const auto& r = a.routing;
        router_forward(act.gates, act.soft, p.heads[a.task].router, cfg.depth, B, r.tau, r.hard, r.per_sample, r.seed,
                       r.step, a.task, a.first_sample);
        gates = act.gates;
    }

    for (int l = 0; l < a.depth; ++l) {
        const BlockParams& w = p.blocks[l];
        const FFNParams& f = w.ffn[a.ffn_set[l]];
        const Activations::Block& s = act.blocks[l];
        const float* x = act.res[l];
        float* y = act.res[l + 1];
        const int nh = a.heads[l], A = nh * hd, H = a.hidden[l];
        const int Af = cfg.heads_at(l) * hd, Hf = cfg.hidden_at(l);   // the block's stored widths

        layernorm_forward(s.ln1, s.ln1_mean, s.ln1_rstd, x, C, w.ln1_w, w.ln1_b, N, 1, C);
        if (A == Af) {
            linear(s.qkv, 3 * A, s.ln1, C, w.qkv_w, C, w.qkv_b, N, C, 3 * Af, false);
        } else {   // the first nh heads of q, k and v, gathered into one weight: one product
            qkv_rows_gather(act.qkv_w_part, act.qkv_b_part, w.qkv_w, w.qkv_b, Af, A, C);
            matmul_forward(s.qkv, 3 * A, s.ln1, C, act.qkv_w_part, C, w.qkv_b ? act.qkv_b_part : nullptr, N, C,
                           3 * A, false);
        }
        const float *q = s.qkv, *k = s.qkv + A;
        int ldq = 3 * A, ldk = 3 * A;
        if (cfg.qk_norm) {
            layernorm_forward(s.qn, s.qn_mean, s.qn_rstd, s.qkv, 3 * A, w.qn_w, w.qn_b, N, nh, hd);
            layernorm_forward(s.kn, s.kn_mean, s.kn_rstd, s.qkv + A, 3 * A, w.kn_w, w.kn_b, N, nh, hd);
            q = s.qn; k = s.kn; ldq = ldk = A;
        }
        if (s.att) attention_forward(s.atty, s.att, q, ldq, k, ldk, s.qkv + 2 * A, 3 * A, B, T, nh, hd);
        else attention_fused_forward(s.atty, q, ldq, k, ldk, s.qkv + 2 * A, 3 * A, B, T, nh, hd);

        const float* ffn_in;
        // res_out = res_in + proj(attn): with packed weights the add is the product's post-op.
        float* proj_out = cfg.parallel_block ? y : s.x1;
        if (act.packed) {
            act.packed->forward_residual(proj_out, C, x, C, s.atty, A, w.proj_w, Af, w.proj_b, N, A, C);
        } else {
            std::memcpy(proj_out, x, sizeof(float) * size_t(N) * C);
            matmul_forward(proj_out, C, s.atty, A, w.proj_w, Af, w.proj_b, N, A, C, true);
        }
        if (cfg.parallel_block) {   // y = x + proj(attn) + ffn(ln1)
            ffn_in = s.ln1;
        } else {                    // x1 = x + proj(attn); y = x1 + ffn(ln2(x1))
            layernorm_forward(s.ln2, s.ln2_mean, s.ln2_rstd, s.x1, C, w.ln2_w, w.ln2_b, N, 1, C);
            ffn_in = s.ln2;
        }
        if (!gates) {
            // gelu(fc1): one pass with packed weights (the GELU is the product's post-op); the
            // pre-activation s.fc1 is kept only by the plain path, for the backward pass.
            if (act.packed) {
                act.packed->forward_gelu(s.gelu, H, ffn_in, C, f.fc1_w, C, f.fc1_b, N, C, H);
            } else {
                matmul_forward(s.fc1, H, ffn_in, C, f.fc1_w, C, f.fc1_b, N, C, H, false);
                gelu_forward(s.gelu, s.fc1, long(N) * H);
            }
            // y = x1 + fc2(gelu), or y += fc2(gelu) in a parallel block
            if (cfg.parallel_block) {
                linear(y, C, s.gelu, H, f.fc2_w, Hf, f.fc2_b, N, H, C, true);
            } else if (act.packed) {
                act.packed->forward_residual(y, C, s.x1, C, s.gelu, H, f.fc2_w, Hf, f.fc2_b, N, H, C);
            } else {
                std::memcpy(y, s.x1, sizeof(float) * size_t(N) * C);
                matmul_forward(y, C, s.gelu, H, f.fc2_w, Hf, f.fc2_b, N, H, C, true);
            }
            continue;
        }
        if (!cfg.parallel_block) std::memcpy(y, s.x1, sizeof(float) * size_t(N) * C);
        // Task-MoE mixing: y[b] += gate[b][0] * shared(in[b]) + gate[b][1] * own(in[b])
        if (!s.fc1_own) fail("", "FFN mixing needs activations allocated for training");
        for (int e = 0; e < 2; ++e) {
            const FFNParams& fe = w.ffn[e == 0 ? 0 : a.task + 1];
            float* fc1 = e == 0 ? s.fc1 : s.fc1_own;
            float* gl = e == 0 ? s.gelu : s.gelu_own;
            matmul_forward(fc1, H, ffn_in, C, fe.fc1_w, C, fe.fc1_b, N, C, H, false);
            gelu_forward(gl, fc1, long(N) * H);
            matmul_forward(s.expert_out[e], C, gl, H, fe.fc2_w, Hf, fe.fc2_b, N, H, C, false);
        }
        moe_mix_forward(y, s.expert_out[0], s.expert_out[1], gates + size_t(l) * B * 2, B, long(T) * C);
    }

    cls_gather_forward(act.cls_in, act.res[a.depth], B, T, C);
    layernorm_forward(act.lnf, act.lnf_mean, act.lnf_rstd, act.cls_in, C, p.lnf_w, p.lnf_b, B, 1, C);
    const int K = cfg.tasks[a.task].num_classes;
    const TaskParams& hp = p.heads[a.task];
    linear(act.logits, K, act.lnf, C, hp.w, C, hp.b, B, C, K, false);
    softmax_forward(act.probs, act.logits, B, K);
}

// ---------------------------------------------------------------- backward

void ViT::backward(Workspace& ws, int B, const Active& in, float* grads) const {
    Activations& act = static_cast<Activations&>(ws);
    Active a = in;
    resolve_active(cfg, a);
    if (!act.d_res) fail("", "activations were allocated without training buffers");
    if (act.grad_base != grads || act.grad_version != frozen_version()) {
        act.grad_ptrs = bind(grads, &frozen());
        act.grad_base = grads;
        act.grad_version = frozen_version();
    }
    const ParamPtrs& g = act.grad_ptrs;
    const int T = cfg.tokens(), C = cfg.dim, P = cfg.num_patches(), pd = cfg.patch_dim(), hd = cfg.head_dim();
    const int N = B * T, K = cfg.tasks[a.task].num_classes;
    const float* gates = a.routing.on ? act.gates : a.gates;

    const TaskParams &hp = p.heads[a.task], &hg = g.heads[a.task];
    matmul_backward(act.d_lnf, C, hg.w, C, hg.b, act.d_logits, K, act.lnf, C, hp.w, C, B, C, K, false);
    std::memset(act.d_cls, 0, sizeof(float) * size_t(B) * C);
    layernorm_backward(act.d_cls, C, g.lnf_w, g.lnf_b, act.d_lnf, act.cls_in, C, p.lnf_w, act.lnf_mean,
                       act.lnf_rstd, B, 1, C);
    cls_gather_backward(act.d_res, act.d_cls, B, T, C);

    for (int l = a.depth - 1; l >= 0; --l) {
        const BlockParams& w = p.blocks[l];
        const BlockParams& gw = g.blocks[l];
        const FFNParams& f = w.ffn[a.ffn_set[l]];
        const FFNParams& gf = gw.ffn[a.ffn_set[l]];
        const Activations::Block& s = act.blocks[l];
        const float* x = act.res[l];
        const int nh = a.heads[l], A = nh * hd, H = a.hidden[l];
        const int Af = cfg.heads_at(l) * hd, Hf = cfg.hidden_at(l);   // the block's stored widths

        // FFN: out += fc2(gelu(fc1(in)))
        const float* ffn_in = cfg.parallel_block ? s.ln1 : s.ln2;
        if (!gates) {
            matmul_backward(act.d_gelu, H, gf.fc2_w, Hf, gf.fc2_b, act.d_res, C, s.gelu, H, f.fc2_w,
                            Hf, N, H, C, false);
            gelu_backward(act.d_fc1, act.d_gelu, s.fc1, long(N) * H);
            matmul_backward(act.d_ln, C, gf.fc1_w, C, gf.fc1_b, act.d_fc1, H, ffn_in, C, f.fc1_w, C, N, C, H, false);
        } else {
            // d gate[b][e] = <d out[b], expert_e(in[b])>; expert e sees gate[b][e] * d out[b].
            for (int e = 0; e < 2; ++e) {
                const int set = e == 0 ? 0 : a.task + 1;
                const FFNParams& fe = w.ffn[set];
                const FFNParams& ge = gw.ffn[set];
                moe_mix_backward(act.d_mix, act.d_gates + size_t(l) * B * 2, act.d_res, s.expert_out[e],
                                 gates + size_t(l) * B * 2, e, B, long(T) * C);
                matmul_backward(act.d_gelu, H, ge.fc2_w, Hf, ge.fc2_b, act.d_mix, C,
                                e == 0 ? s.gelu : s.gelu_own, H, fe.fc2_w, Hf, N, H, C, false);
                gelu_backward(act.d_fc1, act.d_gelu, e == 0 ? s.fc1 : s.fc1_own, long(N) * H);
                matmul_backward(act.d_ln, C, ge.fc1_w, C, ge.fc1_b, act.d_fc1, H, ffn_in, C, fe.fc1_w, C, N, C, H,
                                e > 0);
            }
        }
        if (!cfg.parallel_block)   // d_res becomes d(x1)
            layernorm_backward(act.d_res, C, gw.ln2_w, gw.ln2_b, act.d_ln, s.x1, C, w.ln2_w, s.ln2_mean,
                               s.ln2_rstd, N, 1, C);

        // attention: out += proj(attention(qkv(ln1(x))))
        matmul_backward(act.d_atty, A, gw.proj_w, Af, gw.proj_b, act.d_res, C, s.atty, A, w.proj_w, Af, N, A, C,
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
        if (A == Af) {
            matmul_backward(act.d_ln, C, gw.qkv_w, C, gw.qkv_b, act.d_qkv, 3 * A, s.ln1, C, w.qkv_w, C, N, C,
                            3 * A, acc);
        } else {
            for (int part = 0; part < 3; ++part)
                matmul_backward(act.d_ln, C, gw.qkv_w ? gw.qkv_w + size_t(part) * Af * C : nullptr, C,
                                gw.qkv_b ? gw.qkv_b + part * Af : nullptr, act.d_qkv + part * A, 3 * A, s.ln1, C,
                                w.qkv_w + size_t(part) * Af * C, C, N, C, A, acc || part > 0);
        }
        layernorm_backward(act.d_res, C, gw.ln1_w, gw.ln1_b, act.d_ln, x, C, w.ln1_w, s.ln1_mean, s.ln1_rstd,
                           N, 1, C);
    }

    // The router's gradient (straight-through: through the soft gates) when it drew them.
    if (a.routing.on && g.heads[a.task].router)
        router_backward(g.heads[a.task].router, act.d_gates, act.soft, cfg.depth, B, a.routing.tau);

    // embeddings: x0[b,t] = (t == 0 ? cls : emb[b,t-1]) + pos[t]
    const bool embed_frozen = !g.patch_w && !g.patch_b;
    tokens_backward(embed_frozen ? nullptr : act.d_emb, g.cls, g.pos, act.d_res, B, T, C);
    if (!embed_frozen)
        matmul_backward(nullptr, 0, g.patch_w, pd, g.patch_b, act.d_emb, C, act.patches, pd, p.patch_w, pd, B * P,
                        pd, C, false);
}

}  // namespace ufo
