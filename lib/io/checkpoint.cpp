// checkpoint.cpp — HDF5 checkpoint writer and validating reader (formats/checkpoint.md).
#include "io/checkpoint.h"
#include "nn/cnn.h"

#include "io/atomic_file.h"
#include "base/common.h"
#include "io/h5.h"
#include "base/bounds.h"

#include <cmath>
#include <cstdlib>
#include <ctime>
#include <cstdio>

namespace ufo {

namespace {

constexpr const char* kFormat = "ufo-checkpoint";
constexpr int64_t kFormatVersion = 1;

std::vector<hsize_t> hshape(const std::vector<int64_t>& s) { return {s.begin(), s.end()}; }

// What every network writes: the task list, the image shape, the input normalisation and
// the family (/arch@model).
void write_spec(h5::File& f, const NetSpec& c, const std::string& model) {
    const std::string a = "/arch";
    h5::set_attr(f, "/", "tasks", [&] {
        std::vector<std::string> n;
        for (const auto& t : c.tasks) n.push_back(t.name);
        return n;
    }());
    // Create /arch by writing its normalisation tensors first, then the scalars as attributes.
    h5::write_f32(f, a + "/input_mean", c.in_mean.data(), {hsize_t(c.img_c)}, 0);
    h5::write_f32(f, a + "/input_std", c.in_std.data(), {hsize_t(c.img_c)}, 0);
    for (const auto& [k, v] : {std::pair<const char*, int64_t>{"img_h", c.img_h}, {"img_w", c.img_w}, {"img_c", c.img_c}})
        h5::set_attr(f, a, k, v);
    h5::set_attr(f, a, "model", model);
}

void write_arch(h5::File& f, const ViTConfig& c) {
    write_spec(f, c, "vit");
    const std::pair<const char*, int64_t> ints[] = {
        {"patch", c.patch}, {"dim", c.dim}, {"depth", c.depth}, {"heads", c.heads}, {"mlp_hidden", c.mlp_hidden},
        {"qk_norm", c.qk_norm}, {"parallel_block", c.parallel_block}, {"qkv_bias", c.qkv_bias},
        {"ffn_sets", c.ffn_sets}};
    for (const auto& [k, v] : ints) h5::set_attr(f, "/arch", k, v);
    // Arrays of ints are small datasets; each is present only when it says something.
    auto ints_dataset = [&](const char* name, const std::vector<int>& v) {
        if (v.empty()) return;
        std::vector<int32_t> x(v.begin(), v.end());
        h5::write_i32(f, std::string("/arch/") + name, x.data(), {hsize_t(x.size())}, 0);
    };
    ints_dataset("block_heads", c.block_heads);
    ints_dataset("block_hidden", c.block_hidden);
    ints_dataset("elastic_depth", c.elastic.depth);
    ints_dataset("elastic_heads", c.elastic.heads);
    ints_dataset("elastic_hidden", c.elastic.hidden);
}

// /tasks/<t>@num_classes and @class_names (and /tasks/<t>/route of a supernet).
void write_tasks(h5::File& f, const NetSpec& c, bool routes) {
    for (const auto& t : c.tasks) {
        const std::string g = "/tasks/" + t.name;
        h5::make_group(f, g);
        h5::set_attr(f, g, "num_classes", int64_t(t.num_classes));
        if (!t.class_names.empty()) h5::set_attr(f, g, "class_names", t.class_names);
        if (routes) {
            std::vector<int32_t> r(t.route.begin(), t.route.end());
            h5::write_i32(f, g + "/route", r.data(), {hsize_t(r.size())}, 0);
        }
    }
}

// An optional 1-D int dataset of at most `max_len` entries in 1..hi (checked before and after
// reading, so a hostile file cannot size an allocation or smuggle a value in).
std::vector<int> read_ints(const h5::File& f, const std::string& d, int64_t max_len, int64_t hi) {
    if (!h5::exists(f, d)) return {};
    const auto sh = h5::shape(f, d);
    if (sh.size() != 1 || sh[0] < 1 || int64_t(sh[0]) > max_len)
        fail(f.path(), d + " has shape " + h5::shape_str(sh) + ", expected 1 to " + std::to_string(max_len) + " entries");
    std::vector<int32_t> x(sh[0]);
    h5::read_i32(f, d, x.data(), sh);
    for (size_t i = 0; i < x.size(); ++i)
        if (x[i] < 1 || x[i] > hi)
            fail(f.path(), d + "[" + std::to_string(i) + "] is " + std::to_string(x[i]) + ", outside 1.." + std::to_string(hi));
    return {x.begin(), x.end()};
}

void write_arch(h5::File& f, const CNNConfig& c) {
    write_spec(f, c, "cnn");
    h5::set_attr(f, "/arch", "layers", c.layers);
    h5::set_attr(f, "/arch", "bn_momentum", double(c.bn_momentum));
}

// Every number is range-checked as a 64-bit value before it is narrowed to int (so 2^32+x
// cannot load as x) and before anything is sized from it (limits.h); ViTConfig::validate then
// checks the combination.
void read_spec(const h5::File& f, NetSpec& c) {
    const std::string a = "/arch";
    if (!h5::exists(f, a)) fail(f.path(), "missing group /arch (architecture)");
    auto gi = [&](const char* k, int64_t hi) { return int(h5::get_int_in(f, a, k, 1, hi)); };
    c.img_h = gi("img_h", bounds::kMaxImageSide); c.img_w = gi("img_w", bounds::kMaxImageSide);
    c.img_c = gi("img_c", bounds::kMaxChannels);
    if (c.img_c != 1 && c.img_c != 3) fail(f.path(), "/arch@img_c must be 1 or 3");
    c.in_mean.assign(c.img_c, 0.0f);
    c.in_std.assign(c.img_c, 1.0f);
    h5::read_f32(f, a + "/input_mean", c.in_mean.data(), {hsize_t(c.img_c)});
    h5::read_f32(f, a + "/input_std", c.in_std.data(), {hsize_t(c.img_c)});
    for (int i = 0; i < c.img_c; ++i) {
        if (!std::isfinite(c.in_mean[size_t(i)]))
            fail(f.path(), "/arch/input_mean[" + std::to_string(i) + "] is not a finite number");
        if (!std::isfinite(c.in_std[size_t(i)]) || !(c.in_std[size_t(i)] > 0))
            fail(f.path(), "/arch/input_std[" + std::to_string(i) + "] is not a finite positive number");
    }
    c.tasks.clear();
    const auto names = h5::get_strs(f, "/", "tasks");
    // No tasks is a shared backbone (ufo-extract --shared).
    if (int64_t(names.size()) > bounds::kMaxTasks)
        fail(f.path(), "attribute /@tasks lists " + std::to_string(names.size()) + " tasks, more than the limit of " +
                           std::to_string(bounds::kMaxTasks));
    for (const auto& name : names) {
        TaskInfo t;
        t.name = name;
        if (name.empty() || name.find('/') != std::string::npos)
            fail(f.path(), "attribute /@tasks holds an invalid task name '" + name + "'");
        const std::string g = "/tasks/" + name;
        t.num_classes = int(h5::get_int_in(f, g, "num_classes", 2, bounds::kMaxClasses));
        if (h5::has_attr(f, g, "class_names")) t.class_names = h5::get_strs(f, g, "class_names");
        c.tasks.push_back(std::move(t));
    }
}

// Every number is range-checked as a 64-bit value before it is narrowed to int (so 2^32+x
// cannot load as x) and before anything is sized from it (bounds.h); validate then checks
// the combination.
ViTConfig read_arch(const h5::File& f) {
    ViTConfig c;
    read_spec(f, c);
    const std::string a = "/arch";
    auto gi = [&](const char* k, int64_t hi) { return int(h5::get_int_in(f, a, k, 1, hi)); };
    c.patch = gi("patch", bounds::kMaxImageSide);
    c.dim = gi("dim", bounds::kMaxDim); c.depth = gi("depth", bounds::kMaxDepth);
    c.heads = gi("heads", bounds::kMaxHeads); c.mlp_hidden = gi("mlp_hidden", bounds::kMaxMlpHidden);
    c.qk_norm = h5::get_bool(f, a, "qk_norm");
    c.parallel_block = h5::get_bool(f, a, "parallel_block");
    c.qkv_bias = h5::get_bool(f, a, "qkv_bias");
    c.ffn_sets = gi("ffn_sets", bounds::kMaxTasks + 1);
    c.block_heads = read_ints(f, a + "/block_heads", c.depth, c.heads);
    c.block_hidden = read_ints(f, a + "/block_hidden", c.depth, c.mlp_hidden);
    c.elastic.depth = read_ints(f, a + "/elastic_depth", c.depth, c.depth);
    c.elastic.heads = read_ints(f, a + "/elastic_heads", c.heads, c.heads);
    c.elastic.hidden = read_ints(f, a + "/elastic_hidden", c.mlp_hidden, c.mlp_hidden);
    const bool any = !c.elastic.depth.empty() || !c.elastic.heads.empty() || !c.elastic.hidden.empty();
    if (any && (c.elastic.depth.empty() || c.elastic.heads.empty() || c.elastic.hidden.empty()))
        fail(f.path(), "an elastic space needs /arch/elastic_depth, /arch/elastic_heads and /arch/elastic_hidden");
    if (c.is_supernet())
        for (auto& t : c.tasks) {
            const std::string d = "/tasks/" + t.name + "/route";
            if (!h5::exists(f, d)) fail(f.path(), "missing route table " + d + " of a supernet");
            std::vector<int32_t> r(c.depth);
            h5::read_i32(f, d, r.data(), {hsize_t(c.depth)});
            t.route.assign(r.begin(), r.end());
        }
    c.validate(f.path());
    return c;
}

CNNConfig read_cnn_arch(const h5::File& f) {
    CNNConfig c;
    read_spec(f, c);
    c.layers = h5::get_str(f, "/arch", "layers");
    if (c.layers.size() > 4096) fail(f.path(), "/arch@layers is longer than 4096 characters");
    const double m = h5::get_double(f, "/arch", "bn_momentum");
    if (!(m > 0 && m <= 1)) fail(f.path(), "/arch@bn_momentum must be in (0,1]");
    c.bn_momentum = float(m);
    c.validate(f.path());
    return c;
}

// The file's kind must describe its architecture: a dense model or a subnet has one FFN set
// per block, no router and at most one task (none: a shared backbone); a supernet is a
// Task-MoE one (several tasks, FFN sets = tasks + 1).
void check_kind(const h5::File& f, const std::string& kind, const ViTConfig& c) {
    if (kind == "supernet" && !c.is_supernet())
        fail(f.path(), "kind is supernet, but the architecture is not a Task-MoE supernet (" +
                           std::to_string(c.tasks.size()) + " tasks, " + std::to_string(c.ffn_sets) + " FFN sets)");
    if ((kind == "elastic") != c.is_elastic())
        fail(f.path(), "kind is " + kind + (c.is_elastic() ? ", but the architecture has an elastic space"
                                                           : ", but the architecture has no elastic space"));
    if (kind != "supernet" && (c.ffn_sets != 1 || c.tasks.size() > 1))
        fail(f.path(), "kind is " + kind + ", but the architecture has " + std::to_string(c.tasks.size()) +
                           " tasks and " + std::to_string(c.ffn_sets) + " FFN sets (expected at most 1 and 1)");
}

void check_finite(const h5::File& f, const std::string& tensor, const float* x, size_t n, bool non_negative = false) {
    for (size_t i = 0; i < n; ++i)
        if (!std::isfinite(x[i]) || (non_negative && x[i] < 0))
            fail(f.path(), tensor + "[" + std::to_string(i) + "] is " + std::to_string(x[i]) + ", not a finite" +
                               (non_negative ? " non-negative" : "") + " number");
}

void check_format(const h5::File& f) {
    if (!h5::has_attr(f, "/", "format") || h5::get_str(f, "/", "format") != kFormat) {
        std::string got = h5::has_attr(f, "/", "format") ? h5::get_str(f, "/", "format") : "none";
        fail(f.path(), "not a ufo checkpoint (format=" + got + ")");
    }
    int64_t v = h5::get_int(f, "/", "format_version");
    if (v != kFormatVersion)
        fail(f.path(), "checkpoint format version " + std::to_string(v) + " is not supported (this ufo reads " +
                           std::to_string(kFormatVersion) + ")");
}

}  // namespace

std::string kind_phrase(const std::string& kind) {
    const bool vowel = !kind.empty() && std::string("aeiou").find(kind[0]) != std::string::npos;
    return (vowel ? "an " : "a ") + kind + " checkpoint";
}

void write_vit_arch(h5::File& f, const ViTConfig& c) {
    write_arch(f, c);
    write_tasks(f, c, c.is_supernet());
}
ViTConfig read_vit_arch(const h5::File& f) { return read_arch(f); }

ViTConfig read_architecture(const std::string& path) {
    h5::File f = h5::File::open_read(path);
    check_format(f);
    return read_arch(f);
}

ViT& LoadedCheckpoint::vit() const {
    auto* v = dynamic_cast<ViT*>(net.get());
    if (!v) fail(path, std::string("is a ") + (net ? net->family() : "empty") + " checkpoint, not a ViT");
    return *v;
}

LoadedCheckpoint load_checkpoint(const std::string& path, bool want_train_state) {
    h5::File f = h5::File::open_read(path);
    check_format(f);
    LoadedCheckpoint ck;
    ck.path = path;
    ck.kind = h5::get_str(f, "/", "kind");
    if (ck.kind != "dense" && ck.kind != "supernet" && ck.kind != "subnet" && ck.kind != "elastic" && ck.kind != "cnn")
        fail(f.path(), "checkpoint kind '" + ck.kind + "' is not known (dense, supernet, subnet, elastic, cnn)");
    // Files written before the CNN family carry no /arch@model: they are ViTs.
    const std::string model = h5::has_attr(f, "/arch", "model") ? h5::get_str(f, "/arch", "model") : "vit";
    if (model != (ck.kind == "cnn" ? "cnn" : "vit"))
        fail(f.path(), "kind is " + ck.kind + " but /arch@model is '" + model + "'");
    ViTConfig cfg;
    CNNConfig cnn_cfg;
    std::vector<ParamInfo> layout;
    if (model == "vit") {
        cfg = read_arch(f);
        check_kind(f, ck.kind, cfg);
        layout = vit_layout(cfg);
    } else {
        cnn_cfg = read_cnn_arch(f);
        layout = cnn_layout(cnn_cfg);
    }
    // Every tensor is present, of its architecture's shape and stored in full before the
    // model's memory is allocated: a file cannot make ufo allocate more than it holds.
    for (const auto& t : layout) {
        const std::string d = "/" + t.name;
        if (!h5::exists(f, d)) fail(f.path(), "missing tensor " + d + " required by its architecture");
        const auto have = h5::shape(f, d);
        if (have != hshape(t.shape))
            fail(f.path(), d + " has shape " + h5::shape_str(have) + ", expected " + h5::shape_str(hshape(t.shape)));
        h5::check_stored(f, d);
    }
    if (model == "vit") ck.net = std::make_unique<ViT>(cfg);
    else ck.net = std::make_unique<CNN>(cnn_cfg);
    Network& m = *ck.net;
    for (const auto& t : m.layout) {
        const std::string d = "/" + t.name;
        if (!h5::exists(f, d)) fail(f.path(), "missing tensor " + d + " required by its architecture");
        h5::read_f32(f, d, m.params.data() + t.offset, hshape(t.shape));
        // A BatchNorm running variance below 0 would make inference take a square root of
        // a negative number.
        const bool variance = t.role.kind == Kind::Statistic && t.role.unit == 1;
        check_finite(f, d, m.params.data() + t.offset, t.size, variance);
    }
    auto gs = [&](const char* k) { return h5::has_attr(f, "/", k) ? h5::get_str(f, "/", k) : std::string(); };
    ck.provenance.tool = gs("tool");
    ck.provenance.command = gs("command");
    ck.provenance.parent = gs("parent");
    ck.provenance.parent_arch = gs("parent_arch");
    if (want_train_state && h5::exists(f, "/train_state")) {
        ck.has_train_state = true;
        TrainState& s = ck.state;
        const std::string g = "/train_state";
        // The trainer checks step against the length of the run it resumes.
        s.step = uint64_t(h5::get_int_in(f, g, "step", 0, bounds::kMaxSteps));
        s.seed = uint64_t(h5::get_int(f, g, "seed"));
        auto count = [&](const std::string& k) { return h5::get_int_in(f, g, k, 0, INT64_MAX); };
        auto sum = [&](const std::string& k) {
            const double v = h5::get_double(f, g, k);
            if (!std::isfinite(v)) fail(f.path(), "attribute " + g + "@" + k + " is not a finite number");
            return v;
        };
        s.log_loss_sum = sum("log_loss_sum");
        s.log_correct = count("log_correct");
        s.log_count = count("log_count");
        s.log_steps = count("log_steps");
        s.train_options = h5::get_str(f, g, "train_options");
        s.routes_frozen = h5::has_attr(f, g, "routes_frozen") && h5::get_bool(f, g, "routes_frozen");
        for (size_t i = 1; i < m.spec().tasks.size(); ++i) {
            const std::string n = "task" + std::to_string(i) + "_";
            if (!h5::has_attr(f, g, n + "log_loss_sum")) break;
            s.task_logs.push_back({sum(n + "log_loss_sum"), count(n + "log_correct"), count(n + "log_count"),
                                   count(n + "log_steps")});
        }
        s.adam_m.assign(m.params.size(), 0.0f);
        s.adam_v.assign(m.params.size(), 0.0f);
        h5::read_f32(f, g + "/adam_m", s.adam_m.data(), {hsize_t(m.params.size())});
        h5::read_f32(f, g + "/adam_v", s.adam_v.data(), {hsize_t(m.params.size())});
        check_finite(f, g + "/adam_m", s.adam_m.data(), s.adam_m.size());
        check_finite(f, g + "/adam_v", s.adam_v.data(), s.adam_v.size(), true);
    }
    return ck;
}

void save_checkpoint(const std::string& path, const std::string& kind, const Network& m, const Provenance& prov,
                     const TrainState* state, int zstd_level) {
    AtomicPath out(path);
    {
        h5::File f = h5::File::create(out.tmp(), path);
        h5::set_attr(f, "/", "format", std::string(kFormat));
        h5::set_attr(f, "/", "format_version", kFormatVersion);
        h5::set_attr(f, "/", "kind", kind);
        h5::set_attr(f, "/", "ufo_version", std::string(kVersion));
        h5::set_attr(f, "/", "tool", prov.tool);
        h5::set_attr(f, "/", "command", prov.command);
        h5::set_attr(f, "/", "created", utc_now());
        h5::set_attr(f, "/", "parent", prov.parent);
        h5::set_attr(f, "/", "parent_checksum", prov.parent.empty() ? std::string() : hex64(prov.parent_checksum));
        if (!prov.parent_arch.empty()) h5::set_attr(f, "/", "parent_arch", prov.parent_arch);
        for (const auto& [name, value] : prov.attrs) h5::set_attr(f, "/", name, value);
        h5::set_attr(f, "/", "num_params", int64_t(m.num_params()));
        const auto* vit = dynamic_cast<const ViT*>(&m);
        if (vit) write_arch(f, vit->cfg);
        else if (auto* cnn = dynamic_cast<const CNN*>(&m)) write_arch(f, cnn->cfg);
        else fail(path, std::string("internal error: no checkpoint format for a ") + m.family() + " network");
        for (const auto& t : m.layout)
            h5::write_f32(f, "/" + t.name, m.params.data() + t.offset, hshape(t.shape), zstd_level);
        write_tasks(f, m.spec(), vit && vit->cfg.is_supernet());
        for (const auto& [name, src] : prov.sources) h5::set_attr(f, "/" + name, "source", src);
        if (state) {
            const std::string g = "/train_state";
            h5::write_f32(f, g + "/adam_m", state->adam_m.data(), {hsize_t(state->adam_m.size())}, zstd_level);
            h5::write_f32(f, g + "/adam_v", state->adam_v.data(), {hsize_t(state->adam_v.size())}, zstd_level);
            h5::set_attr(f, g, "step", int64_t(state->step));
            h5::set_attr(f, g, "seed", int64_t(state->seed));
            h5::set_attr(f, g, "log_loss_sum", state->log_loss_sum);
            h5::set_attr(f, g, "log_correct", int64_t(state->log_correct));
            h5::set_attr(f, g, "log_count", int64_t(state->log_count));
            h5::set_attr(f, g, "log_steps", int64_t(state->log_steps));
            h5::set_attr(f, g, "train_options", state->train_options);
            h5::set_attr(f, g, "routes_frozen", int64_t(state->routes_frozen));
            for (size_t i = 0; i < state->task_logs.size(); ++i) {
                const std::string n = "task" + std::to_string(i + 1) + "_";
                const auto& l = state->task_logs[i];
                h5::set_attr(f, g, n + "log_loss_sum", l.loss_sum);
                h5::set_attr(f, g, n + "log_correct", l.correct);
                h5::set_attr(f, g, n + "log_count", l.count);
                h5::set_attr(f, g, n + "log_steps", l.steps);
            }
        }
        f.close();
    }
    out.commit();
}

}  // namespace ufo
