// fuzz_checkpoint — load_checkpoint / read_architecture (lib/io/checkpoint.h) on valid HDF5 files
// with hostile contents, generated from the input by h5_plan.h (why not raw bytes: see there).
//
// The unmutated plan is a checkpoint as save_checkpoint writes it (formats/checkpoint.md): a
// small dense, supernet or subnet ViT or a CNN picked by the first bytes, its tensors from
// vit_layout() / cnn_layout(), optionally /train_state. Oracles beyond "no crash": a file the reader accepts must have been
// read as stored (an /arch integer of 2^32+16 must not load as 16), and its input std must be > 0.
#include "io/checkpoint.h"
#include "base/common.h"
#include "fuzz_common.h"
#include "io/h5.h"
#include "h5_plan.h"
#include "nn/cnn.h"
#include "nn/vit.h"

#include <cmath>
#include <cstdint>

namespace {

const char* const kArchInts[] = {"img_h", "img_w", "img_c", "patch", "dim", "depth", "heads",
                                 "mlp_hidden", "qk_norm", "parallel_block", "qkv_bias", "ffn_sets"};

int64_t arch_field(const ufo::ViTConfig& c, const std::string& k) {
    if (k == "img_h") return c.img_h;
    if (k == "img_w") return c.img_w;
    if (k == "img_c") return c.img_c;
    if (k == "patch") return c.patch;
    if (k == "dim") return c.dim;
    if (k == "depth") return c.depth;
    if (k == "heads") return c.heads;
    if (k == "mlp_hidden") return c.mlp_hidden;
    if (k == "qk_norm") return c.qk_norm;
    if (k == "parallel_block") return c.parallel_block;
    if (k == "qkv_bias") return c.qkv_bias;
    return c.ffn_sets;
}

void common_attrs(fuzz::Plan& p, const char* kind, const ufo::Network& m) {
    p.str_attr("/", "format", "ufo-checkpoint");
    p.int_attr("/", "format_version", 1);
    p.str_attr("/", "kind", kind);
    p.str_attr("/", "ufo_version", ufo::kVersion);
    p.str_attr("/", "tool", "ufo-train");
    p.str_attr("/", "command", "ufo-train --preset tiny -o x.h5");
    p.str_attr("/", "created", "2024-01-01T00:00:00Z");
    p.int_attr("/", "num_params", int64_t(m.num_params()));
}

// A small CNN: one to three convolutions (stride 1 or 2) with optional pools between them.
fuzz::Plan cnn_plan(fuzz::Choices& in) {
    ufo::CNNConfig c;
    c.img_c = in.flag() ? 3 : 1;
    c.img_h = 2 + int(in.below(7));
    c.img_w = 2 + int(in.below(7));
    c.in_mean.assign(c.img_c, 0.25f);
    c.in_std.assign(c.img_c, 0.5f);
    c.layers.clear();
    for (int l = 0, n = 1 + int(in.below(3)); l < n; ++l) {
        if (l > 0 && in.flag()) c.layers += in.flag() ? "m," : "a,";
        c.layers += "c" + std::to_string(1 + in.below(4)) + (in.flag() ? "/2," : ",");
    }
    c.layers.pop_back();
    c.tasks = {{"main", 2 + int(in.below(4)), {}, {}}};
    try {
        c.validate("");
    } catch (const ufo::Error&) {   // a pool on a 1-pixel map: drop the pools
        std::string plain;
        for (char ch : c.layers) if (ch != 'm' && ch != 'a') plain += ch;
        c.layers.clear();
        for (size_t i = 0; i < plain.size(); ++i)
            if (!(plain[i] == ',' && (i == 0 || plain[i - 1] == ','))) c.layers += plain[i];
    }
    const ufo::CNN m(c);
    fuzz::Plan p;
    common_attrs(p, "cnn", m);
    p.str_attr("/", "parent", "");
    p.str_attr("/", "parent_checksum", "");
    p.list_attr("/", "tasks", {"main"});
    p.dset("/arch/input_mean", fuzz::DType::F32, {hsize_t(c.img_c)});
    p.dset("/arch/input_std", fuzz::DType::F32, {hsize_t(c.img_c)});
    for (const char* k : {"img_h", "img_w", "img_c"})
        p.int_attr("/arch", k, k[4] == 'h' ? c.img_h : k[4] == 'w' ? c.img_w : c.img_c);
    p.str_attr("/arch", "model", "cnn");
    p.str_attr("/arch", "layers", c.layers);
    p.dbl_attr("/arch", "bn_momentum", 0.1);
    for (const auto& t : m.layout) p.dset("/" + t.name, fuzz::DType::F32, std::vector<hsize_t>(t.shape.begin(), t.shape.end()));
    p.int_attr("/tasks/main", "num_classes", c.tasks[0].num_classes);
    return p;
}

fuzz::Plan checkpoint_plan(fuzz::Choices& in) {
    ufo::ViTConfig c;
    const int kind = int(in.below(5));  // dense, supernet, subnet, cnn, elastic
    if (kind == 3) return cnn_plan(in);
    c.img_c = in.flag() ? 3 : 1;
    c.patch = 1 + int(in.below(4));
    c.img_h = c.patch * (1 + int(in.below(3)));
    c.img_w = c.patch * (1 + int(in.below(3)));
    c.heads = 1 + int(in.below(3));
    c.dim = c.heads * (1 + int(in.below(4)));
    c.depth = 1 + int(in.below(3));
    c.mlp_hidden = 1 + int(in.below(8));
    c.qk_norm = in.flag();
    c.parallel_block = in.flag();
    c.qkv_bias = !in.flag();
    c.in_mean.assign(c.img_c, 0.25f);
    c.in_std.assign(c.img_c, 0.5f);
    const char* names[] = {"alpha", "beta", "gamma"};
    c.tasks.clear();
    if (kind == 1) {
        for (int t = 0, n = 2 + int(in.below(2)); t < n; ++t) c.tasks.push_back({names[t], 2 + int(in.below(4)), {}, {}});
        c.make_supernet();
        for (auto& t : c.tasks)
            for (auto& r : t.route) r = in.flag();
    } else if (kind == 0 || kind == 4 || !in.flag()) {
        c.tasks.push_back({kind == 2 ? "alpha" : "main", 2 + int(in.below(4)), {}, {}});
    }  // else: a shared backbone, no task
    if (kind == 4) {   // an elastic space: ascending choices ending at the model's sizes
        for (int d = 1 + int(in.below(uint64_t(c.depth))); d <= c.depth; ++d) c.elastic.depth.push_back(d);
        for (int h = 1 + int(in.below(uint64_t(c.heads))); h <= c.heads; ++h) c.elastic.heads.push_back(h);
        if (c.mlp_hidden > 1 && in.flag()) c.elastic.hidden.push_back(1 + int(in.below(uint64_t(c.mlp_hidden - 1))));
        c.elastic.hidden.push_back(c.mlp_hidden);
    }
    if (kind == 2 && in.flag())   // a cut-out sub-architecture: widths of its own per block
        for (int l = 0; l < c.depth; ++l) {
            c.block_heads.push_back(1 + int(in.below(uint64_t(c.heads))));
            c.block_hidden.push_back(1 + int(in.below(uint64_t(c.mlp_hidden))));
        }
    for (auto& t : c.tasks)
        if (in.flag())
            for (int k = 0; k < t.num_classes; ++k) t.class_names.push_back("class" + std::to_string(k));
    const bool train_state = in.flag();
    const int zstd = in.flag() ? 3 : 0;
    const ufo::ViT m(c);  // small and valid by construction

    fuzz::Plan p;
    const char* kinds[] = {"dense", "supernet", "subnet", "cnn", "elastic"};
    common_attrs(p, kinds[kind], m);
    p.str_attr("/", "parent", kind == 2 ? "super.h5" : "");
    p.str_attr("/", "parent_checksum", kind == 2 ? "0123456789abcdef" : "");
    std::vector<std::string> tnames;
    for (const auto& t : c.tasks) tnames.push_back(t.name);
    p.list_attr("/", "tasks", tnames);
    p.dset("/arch/input_mean", fuzz::DType::F32, {hsize_t(c.img_c)});
    p.dset("/arch/input_std", fuzz::DType::F32, {hsize_t(c.img_c)});
    for (const char* k : kArchInts) p.int_attr("/arch", k, arch_field(c, k));
    p.str_attr("/arch", "model", "vit");
    for (const auto& [name, v] : {std::pair{"block_heads", &c.block_heads}, {"block_hidden", &c.block_hidden},
                                  {"elastic_depth", &c.elastic.depth}, {"elastic_heads", &c.elastic.heads},
                                  {"elastic_hidden", &c.elastic.hidden}})
        if (!v->empty()) p.dset(std::string("/arch/") + name, fuzz::DType::I32, {hsize_t(v->size())}).values.assign(v->begin(), v->end());
    for (const auto& t : m.layout) {
        auto& d = p.dset("/" + t.name, fuzz::DType::F32, std::vector<hsize_t>(t.shape.begin(), t.shape.end()));
        if (zstd) d.store = fuzz::Store::Zstd, d.zstd_level = zstd;
        if (kind == 2) p.str_attr("/" + t.name, "source", t.name);
    }
    for (const auto& t : c.tasks) {
        const std::string g = "/tasks/" + t.name;
        p.int_attr(g, "num_classes", t.num_classes);
        if (!t.class_names.empty()) p.list_attr(g, "class_names", t.class_names);
        if (c.is_supernet()) p.dset(g + "/route", fuzz::DType::I32, {hsize_t(c.depth)}).modulo = 2;
    }
    if (train_state) {
        const std::string g = "/train_state";
        for (const char* a : {"/adam_m", "/adam_v"}) {
            auto& d = p.dset(g + a, fuzz::DType::F32, {hsize_t(m.params.size())});
            if (zstd) d.store = fuzz::Store::Zstd, d.zstd_level = zstd;
        }
        p.int_attr(g, "step", 7);
        p.int_attr(g, "seed", 1);
        p.dbl_attr(g, "log_loss_sum", 1.5);
        p.int_attr(g, "log_correct", 3);
        p.int_attr(g, "log_count", 8);
        p.int_attr(g, "log_steps", 2);
        p.str_attr(g, "train_options", "{\"lr\":0.001}");
        p.int_attr(g, "routes_frozen", 0);
        for (size_t i = 1; i < c.tasks.size(); ++i) {
            const std::string n = "task" + std::to_string(i) + "_";
            p.dbl_attr(g, n + "log_loss_sum", 0.5);
            p.int_attr(g, n + "log_correct", 1);
            p.int_attr(g, n + "log_count", 4);
            p.int_attr(g, n + "log_steps", 2);
        }
    }
    return p;
}

// What the reader accepted must be what the file says.
void check_arch(const ufo::ViTConfig& c, const std::string& path) {
    ufo::h5::File f = ufo::h5::File::open_read(path);
    for (const char* k : kArchInts) {
        int64_t stored = ufo::h5::get_int(f, "/arch", k);
        const std::string key = k;
        const bool is_bool = key == "qk_norm" || key == "parallel_block" || key == "qkv_bias";
        if (is_bool ? (stored != 0) != (arch_field(c, k) != 0) : stored != arch_field(c, k))
            fuzz::finding(std::string("accepted /arch@") + k + " = " + std::to_string(stored) + " as " +
                          std::to_string(arch_field(c, k)));
    }
    for (float s : c.in_std)
        if (!(s > 0) || !std::isfinite(s)) fuzz::finding("accepted /arch/input_std entry " + std::to_string(s));
    for (float s : c.in_mean)
        if (!std::isfinite(s)) fuzz::finding("accepted /arch/input_mean entry " + std::to_string(s));
    // Per-block widths and an elastic space, when accepted, fit the model they describe.
    for (int l = 0; l < c.depth; ++l)
        if (c.heads_at(l) < 1 || c.heads_at(l) > c.heads || c.hidden_at(l) < 1 || c.hidden_at(l) > c.mlp_hidden)
            fuzz::finding("accepted block " + std::to_string(l) + " widths outside the model's");
    if (c.is_elastic() && (c.elastic.depth.back() != c.depth || c.elastic.heads.back() != c.heads ||
                           c.elastic.hidden.back() != c.mlp_hidden || c.elastic.depth.front() < 1))
        fuzz::finding("accepted an elastic space that does not end at the model's sizes");
    for (const auto& t : c.tasks)
        if (!t.class_names.empty() && int(t.class_names.size()) != t.num_classes)
            fuzz::finding("accepted task " + t.name + " with " + std::to_string(t.class_names.size()) +
                          " class names for " + std::to_string(t.num_classes) + " classes");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    fuzz::hdf5_init();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::Choices in(data, size);
    fuzz::Plan plan = checkpoint_plan(in);
    fuzz::mutate_plan(in, plan);
    const bool want_state = !in.flag();
    const bool via_stdin = in.flag();
    const std::string path = fuzz::scratch("checkpoint.h5");
    try {
        fuzz::write_plan(plan, path);
    } catch (const ufo::Error& e) {
        fuzz::finding(std::string("generator cannot write its file: ") + e.what());
    }
    fuzz::check_hdf5_handles("writing the plan");

    std::string arg = path;
    if (via_stdin) fuzz::stdin_from(path), arg = "-";
    try {
        ufo::ViTConfig c = ufo::read_architecture(arg);
        check_arch(c, path);
    } catch (const ufo::Error& e) {
        fuzz::rejected(e);
    }
    fuzz::check_hdf5_handles("read_architecture");
    if (via_stdin) fuzz::stdin_from(path);
    try {
        ufo::LoadedCheckpoint ck = ufo::load_checkpoint(arg, want_state);
        const auto* vit = dynamic_cast<const ufo::ViT*>(ck.net.get());
        if (vit) check_arch(vit->cfg, path);
        for (float s : ck.net->spec().in_std)
            if (!(s > 0) || !std::isfinite(s)) fuzz::finding("accepted /arch/input_std entry " + std::to_string(s));
        // An accepted network must run: one forward pass of a black image.
        if (!ck.net->spec().tasks.empty()) {
            std::vector<uint8_t> img(ck.net->spec().image_size(), 0);
            auto ws = ck.net->workspace(1, false);
            ufo::Active a;
            if (vit) a = ufo::active_for_task(vit->cfg, 0);
            ck.net->resolve(a);
            ck.net->forward(*ws, img.data(), 1, a);
        }
        if (ck.has_train_state && (ck.state.adam_m.size() != ck.net->params.size() ||
                                   ck.state.adam_v.size() != ck.net->params.size()))
            fuzz::finding("train state moments do not match the parameter count");
    } catch (const ufo::Error& e) {
        fuzz::rejected(e);
    }
    fuzz::check_hdf5_handles("load_checkpoint");
    return 0;
}
