// elastic.cpp — search space, spec text, sampling and importance sorting of elastic ViTs.
#include "nn/elastic.h"

#include "base/common.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <numeric>
#include <sstream>

namespace ufo {

namespace {

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::string cur;
    for (char c : s) {
        if (c == sep) { out.push_back(cur); cur.clear(); }
        else cur += c;
    }
    out.push_back(cur);
    return out;
}

// A whole decimal integer in [lo, hi]; else an error naming `what`.
int parse_int(const std::string& t, const std::string& what, const std::string& where, int lo, int hi) {
    errno = 0;
    char* end = nullptr;
    const long v = std::strtol(t.c_str(), &end, 10);
    if (t.empty() || *end != '\0' || errno || t.find_first_not_of("0123456789") != std::string::npos)
        fail(where, what + ": '" + t + "' is not a whole number");
    if (v < lo || v > hi)
        fail(where, what + ": " + t + " is outside " + std::to_string(lo) + ".." + std::to_string(hi));
    return int(v);
}

std::string join(const std::vector<int>& v) {
    std::string s;
    for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
    return s;
}

void sort_unique(std::vector<int>& v) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
}

}  // namespace

ElasticSpace make_space(const ViTConfig& cfg, const std::string& depths, const std::string& heads,
                        const std::string& mlp_ratios, const std::string& where) {
    ElasticSpace s;
    if (depths.empty())
        for (int d = std::max(1, cfg.depth - 2); d <= cfg.depth; ++d) s.depth.push_back(d);
    else
        for (const auto& t : split(depths, ','))
            s.depth.push_back(parse_int(t, "--elastic-depth", where, 1, cfg.depth));
    if (heads.empty())
        for (int h = 1; h <= cfg.heads; ++h) s.heads.push_back(h);
    else
        for (const auto& t : split(heads, ','))
            s.heads.push_back(parse_int(t, "--elastic-heads", where, 1, cfg.heads));
    if (mlp_ratios.empty()) {
        for (int q : {2, 3, 4}) s.hidden.push_back(std::max(1, (cfg.mlp_hidden * q + 2) / 4));
    } else {
        for (const auto& t : split(mlp_ratios, ',')) {
            char* end = nullptr;
            const double r = std::strtod(t.c_str(), &end);
            if (t.empty() || *end != '\0' || !std::isfinite(r) || r <= 0)
                fail(where, "--elastic-mlp-ratio: '" + t + "' is not a positive number");
            const double h = r * cfg.dim;
            if (h + 0.5 < 1 || h > cfg.mlp_hidden + 0.5)
                fail(where, "--elastic-mlp-ratio: " + t + " x dim " + std::to_string(cfg.dim) + " is outside 1.." +
                                std::to_string(cfg.mlp_hidden) + " hidden units (the model's ratio is " +
                                std::to_string(double(cfg.mlp_hidden) / cfg.dim) + ")");
            s.hidden.push_back(int(std::lround(h)));
        }
    }
    sort_unique(s.depth);
    sort_unique(s.heads);
    sort_unique(s.hidden);
    ViTConfig check = cfg;
    check.elastic = s;
    check.validate(where);
    return s;
}

Active parse_arch(const std::string& text, const ViTConfig& cfg, const std::string& where) {
    const std::string w = where.empty() ? std::string("--arch '") + text + "'" : where + ": --arch '" + text + "'";
    if (text.size() > 65536) fail(where, "--arch: the spec is longer than 65536 characters");
    if (cfg.tasks.size() != 1 || cfg.ffn_sets != 1)
        fail(where, "--arch names a sub-network of a single-task ViT, and this model is a Task-MoE supernet "
                    "(ufo-extract --task first)");
    const ElasticSpace& sp = cfg.elastic;
    const bool elastic = cfg.is_elastic();
    std::string depth_t, heads_t, mlp_t;
    bool seen[3] = {false, false, false};
    std::istringstream in(text);
    std::string tok;
    int n_tokens = 0;
    while (in >> tok) {
        ++n_tokens;
        const auto eq = tok.find('=');
        if (eq == std::string::npos) fail(w, "'" + tok + "' is not KEY=VALUE (keys: depth, heads, mlp)");
        const std::string key = tok.substr(0, eq), val = tok.substr(eq + 1);
        const int k = key == "depth" ? 0 : key == "heads" ? 1 : key == "mlp" ? 2 : -1;
        if (k < 0) fail(w, "unknown key '" + key + "' (keys: depth, heads, mlp)");
        if (seen[k]) fail(w, "'" + key + "' is given twice");
        seen[k] = true;
        (k == 0 ? depth_t : k == 1 ? heads_t : mlp_t) = val;
    }
    if (n_tokens == 0) fail(w, "the spec is empty (e.g. depth=5 heads=3,3,2,2,1 mlp=192,192,144,96,96)");

    Active a;
    a.task = 0;
    a.depth = elastic ? sp.depth.back() : cfg.depth;
    if (seen[0]) {
        a.depth = parse_int(depth_t, "depth", w, 1, 1 << 20);
        if (elastic && !std::binary_search(sp.depth.begin(), sp.depth.end(), a.depth))
            fail(w, "depth " + std::to_string(a.depth) + " is not in the elastic space (depths " + join(sp.depth) + ")");
        if (a.depth > cfg.depth)
            fail(w, "depth " + std::to_string(a.depth) + " is above the model's " + std::to_string(cfg.depth) + " blocks");
    }
    // One list per key: one value per active block, or one value for all of them.
    auto per_block = [&](bool given, const std::string& t, const char* key, const std::vector<int>& choices,
                         auto model_max) {
        std::vector<int> v;
        if (!given) {
            for (int l = 0; l < a.depth; ++l) v.push_back(elastic ? choices.back() : model_max(l));
            return v;
        }
        const auto parts = split(t, ',');
        if (parts.size() != 1 && int(parts.size()) != a.depth)
            fail(w, std::string(key) + " lists " + std::to_string(parts.size()) + " values for depth " +
                        std::to_string(a.depth) + " (give one per block, or one for all)");
        for (int l = 0; l < a.depth; ++l) {
            const int x = parse_int(parts[parts.size() == 1 ? 0 : size_t(l)], key, w, 1, 1 << 24);
            const int hi = elastic ? choices.back() : model_max(l);
            const std::string at = std::string(key) + " " + std::to_string(x) + " in block " + std::to_string(l);
            if (x > hi)
                fail(w, at + " is above the " + (elastic ? "stored maximum " : "model's ") + std::to_string(hi));
            if (elastic && !std::binary_search(choices.begin(), choices.end(), x))
                fail(w, at + " is not one of the space's choices (" + join(choices) + ")");
            v.push_back(x);
        }
        return v;
    };
    a.heads = per_block(seen[1], heads_t, "heads", sp.heads, [&](int l) { return cfg.heads_at(l); });
    a.hidden = per_block(seen[2], mlp_t, "mlp", sp.hidden, [&](int l) { return cfg.hidden_at(l); });
    // Blocks beyond the depth keep the model's sizes, so the Active resolves against any cfg.
    for (int l = a.depth; l < cfg.depth; ++l) {
        a.heads.push_back(cfg.heads_at(l));
        a.hidden.push_back(cfg.hidden_at(l));
    }
    resolve_active(cfg, a);
    return a;
}

std::string format_arch(const Active& a) {
    std::vector<int> h(a.heads.begin(), a.heads.begin() + a.depth), m(a.hidden.begin(), a.hidden.begin() + a.depth);
    return "depth=" + std::to_string(a.depth) + " heads=" + join(h) + " mlp=" + join(m);
}

Active largest_arch(const ViTConfig& cfg) { return active_full(cfg, 0); }

Active smallest_arch(const ViTConfig& cfg) {
    if (!cfg.is_elastic()) return active_full(cfg, 0);
    Active a;
    a.depth = cfg.elastic.depth.front();
    a.heads.assign(size_t(cfg.depth), cfg.elastic.heads.front());
    a.hidden.assign(size_t(cfg.depth), cfg.elastic.hidden.front());
    resolve_active(cfg, a);
    return a;
}

Active sample_arch(const ViTConfig& cfg, Rng& rng) {
    const ElasticSpace& s = cfg.elastic;
    if (s.empty()) fail("", "internal error: sampling needs an elastic model");
    Active a;
    a.depth = s.depth[rng.below(s.depth.size())];
    for (int l = 0; l < cfg.depth; ++l) {
        a.heads.push_back(s.heads[rng.below(s.heads.size())]);
        a.hidden.push_back(s.hidden[rng.below(s.hidden.size())]);
    }
    resolve_active(cfg, a);
    return a;
}

double log10_space_size(const ElasticSpace& s) {
    // sum over depths d of (|heads| * |hidden|)^d, in logs to stay finite for deep models
    const double per_block = std::log10(double(s.heads.size()) * double(s.hidden.size()));
    double mx = -1e300;
    for (int d : s.depth) mx = std::max(mx, d * per_block);
    double sum = 0;
    for (int d : s.depth) sum += std::pow(10.0, d * per_block - mx);
    return mx + std::log10(sum);
}

ViTConfig arch_config(const ViTConfig& cfg, const Active& in) {
    Active a = in;
    resolve_active(cfg, a);
    ViTConfig c = cfg;
    c.elastic = {};
    c.depth = a.depth;
    c.block_heads.assign(a.heads.begin(), a.heads.begin() + a.depth);
    c.block_hidden.assign(a.hidden.begin(), a.hidden.begin() + a.depth);
    // Uniform sizes that equal the nominal ones need no per-block lists.
    if (std::all_of(c.block_heads.begin(), c.block_heads.end(), [&](int h) { return h == c.heads; }))
        c.block_heads.clear();
    if (std::all_of(c.block_hidden.begin(), c.block_hidden.end(), [&](int h) { return h == c.block_hidden[0]; })) {
        c.mlp_hidden = c.block_hidden[0];
        c.block_hidden.clear();
    }
    for (auto& t : c.tasks) t.route.clear();
    c.validate("");
    return c;
}

// ---------------------------------------------------------------- importance sorting

namespace {

// Units of `n` consecutive rows, each `cols` floats: row block u moves to position of perm.
// perm[i] = the old unit that becomes unit i.
void permute_row_units(float* m, int units, int rows_per_unit, int cols, const std::vector<int>& perm) {
    if (!m) return;
    const size_t unit = size_t(rows_per_unit) * cols;
    std::vector<float> old(m, m + unit * units);
    for (int i = 0; i < units; ++i)
        std::copy_n(old.data() + size_t(perm[size_t(i)]) * unit, unit, m + size_t(i) * unit);
}

// Each of `rows` rows (leading dimension ld) has `units` groups of `w` consecutive columns.
void permute_col_units(float* m, int rows, int ld, int units, int w, const std::vector<int>& perm) {
    if (!m) return;
    std::vector<float> old(size_t(units) * w);
    for (int r = 0; r < rows; ++r) {
        float* row = m + size_t(r) * ld;
        std::copy_n(row, old.size(), old.data());
        for (int i = 0; i < units; ++i)
            std::copy_n(old.data() + size_t(perm[size_t(i)]) * w, w, row + size_t(i) * w);
    }
}

// Most important first; ties keep their order, so a sorted network sorts to itself.
std::vector<int> order_by(const std::vector<double>& importance) {
    std::vector<int> p(importance.size());
    std::iota(p.begin(), p.end(), 0);
    std::stable_sort(p.begin(), p.end(), [&](int x, int y) { return importance[size_t(x)] > importance[size_t(y)]; });
    return p;
}

bool identity(const std::vector<int>& p) {
    for (size_t i = 0; i < p.size(); ++i)
        if (p[i] != int(i)) return false;
    return true;
}

}  // namespace

int sort_by_importance(ViT& net, const std::vector<float*>& moments) {
    const ViTConfig& c = net.cfg;
    const int C = c.dim, hd = c.head_dim();
    std::vector<ParamPtrs> bufs{net.p};
    for (float* m : moments) bufs.push_back(net.bind(m));
    int changed = 0;
    for (int l = 0; l < c.depth; ++l) {
        const int NH = c.heads_at(l), A = NH * hd;
        // Heads: L1 norm of each head's columns of proj [C, A].
        std::vector<double> imp(size_t(NH), 0.0);
        const float* proj = net.p.blocks[size_t(l)].proj_w;
        for (int r = 0; r < C; ++r)
            for (int j = 0; j < A; ++j) imp[size_t(j / hd)] += std::fabs(proj[size_t(r) * A + j]);
        const std::vector<int> hp = order_by(imp);
        if (!identity(hp)) {
            ++changed;
            for (auto& b : bufs) {
                BlockParams& w = b.blocks[size_t(l)];
                for (int part = 0; part < 3; ++part) {   // q, k and v rows of the fused projection
                    permute_row_units(w.qkv_w + size_t(part) * A * C, NH, hd, C, hp);
                    if (w.qkv_b) permute_row_units(w.qkv_b + size_t(part) * A, NH, hd, 1, hp);
                }
                permute_col_units(w.proj_w, C, A, NH, hd, hp);
            }
        }
        // Hidden units of every FFN weight set: L1 norm of the unit's column of fc2 [C, H].
        const int H = c.hidden_at(l);
        for (int s = 0; s < c.ffn_sets; ++s) {
            std::vector<double> u(size_t(H), 0.0);
            const float* fc2 = net.p.blocks[size_t(l)].ffn[size_t(s)].fc2_w;
            for (int r = 0; r < C; ++r)
                for (int j = 0; j < H; ++j) u[size_t(j)] += std::fabs(fc2[size_t(r) * H + j]);
            const std::vector<int> up = order_by(u);
            if (identity(up)) continue;
            ++changed;
            for (auto& b : bufs) {
                FFNParams& f = b.blocks[size_t(l)].ffn[size_t(s)];
                permute_row_units(f.fc1_w, H, 1, C, up);
                permute_row_units(f.fc1_b, H, 1, 1, up);
                permute_col_units(f.fc2_w, C, H, H, 1, up);
            }
        }
    }
    return changed;
}

}  // namespace ufo
