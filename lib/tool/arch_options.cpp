// arch_options.cpp — architecture flags shared by the tools.
#include "tool/arch_options.h"

#include "base/bounds.h"
#include "tool/cli.h"
#include "base/common.h"
#include "nn/elastic.h"

#include <cstdio>

namespace ufo {

namespace po = boost::program_options;

void add_arch_options(po::options_description& opts, bool with_arch) {
    po::options_description a("Architecture");
    a.add_options()("family", po::value<std::string>()->default_value("vit"), "vit | cnn: the network family");
    if (with_arch)
        a.add_options()("arch", po::value<std::string>(),
                        "ViT sub-architecture 'depth=D heads=H,.. mlp=N,..' (per block; see ufo(7)); 'vit' or 'cnn': --family");
    a.add_options()
        ("preset", po::value<std::string>()->default_value("ref"),
         "ViT: tiny | small | ref (reference ViT: 28x28x1, patch 4, dim 192, depth 6); CNN: tiny | small (default)")
        ("img", po::value<std::string>(), "input shape HxWxC (default: the dataset's, else the preset's)")
        ("patch", po::value<int>(), "patch size (must divide H and W)")
        ("dim", po::value<int>(), "embedding dimension")
        ("depth", po::value<int>(), "number of blocks")
        ("heads", po::value<int>(), "attention heads (dim must be divisible)")
        ("mlp-ratio", po::value<double>(), "FFN hidden size as a multiple of dim")
        ("mlp-hidden", po::value<int>(), "FFN hidden size (overrides --mlp-ratio)")
        ("classes", po::value<int>(), "number of classes (default: the dataset's)")
        ("qk-norm", po::bool_switch(), "LayerNorm on queries and keys (ViT-22B)")
        ("parallel-block", po::bool_switch(), "y = x + Attn(LN(x)) + MLP(LN(x)) (ViT-22B)")
        ("no-qkv-bias", po::bool_switch(), "no bias in the fused qkv projection (ViT-22B)")
        ("layers", po::value<std::string>(), "CNN layers, e.g. c24,c24,m,c48,c48,m,c80 (cN conv, cN/2 stride 2, m/a pool)");
    opts.add(a);
}

namespace {
bool is_family(const std::string& s) { return s == "vit" || s == "cnn"; }
}  // namespace

std::string arch_spec(const po::variables_map& vm) {
    if (!vm.count("arch") || is_family(vm["arch"].as<std::string>())) return "";
    const std::string s = vm["arch"].as<std::string>();
    if (s.find('=') == std::string::npos)
        throw UsageError("option --arch: '" + s + "' is neither a family (vit, cnn) nor a sub-architecture "
                         "(depth=D heads=H,... mlp=N,...)");
    return s;
}

bool arch_flags_given(const po::variables_map& vm, bool count_spec) {
    for (const char* k : {"img", "patch", "dim", "depth", "heads", "mlp-ratio", "mlp-hidden", "classes", "layers"})
        if (vm.count(k)) return true;
    if (vm.count("family") && !vm["family"].defaulted()) return true;
    if (vm.count("arch") && (count_spec || is_family(vm["arch"].as<std::string>()))) return true;
    for (const char* k : {"qk-norm", "parallel-block", "no-qkv-bias"})
        if (vm.count(k) && vm[k].as<bool>()) return true;
    return !vm["preset"].defaulted();
}

// Flag values are usage errors (exit 2) when they cannot describe a model at all; whether the
// model fits the data is checked later, against the data.
namespace {
// --img HxWxC into spec (usage error when malformed).
void img_option(const po::variables_map& vm, NetSpec& c) {
    if (!vm.count("img")) return;
    int h = 0, w = 0, ch = 0;
    char tail = 0;
    const std::string s = vm["img"].as<std::string>();
    if (std::sscanf(s.c_str(), "%dx%dx%d%c", &h, &w, &ch, &tail) != 3 || h <= 0 || w <= 0 || h > bounds::kMaxImageSide ||
        w > bounds::kMaxImageSide || (ch != 1 && ch != 3))
        throw UsageError("option --img: '" + s + "' is not HxWxC with sides 1.." + std::to_string(bounds::kMaxImageSide) +
                         " and C 1 or 3");
    c.img_h = h; c.img_w = w; c.img_c = ch;
    c.in_mean.assign(ch, 0.5f);
    c.in_std.assign(ch, 0.5f);
}
}  // namespace

std::string arch_family(const po::variables_map& vm) {
    const std::string f = vm.count("family") ? vm["family"].as<std::string>() : "vit";
    if (!is_family(f)) throw UsageError("option --family: '" + f + "' is not vit or cnn");
    (void)arch_spec(vm);   // a malformed --arch is a usage error here too
    if (vm.count("arch") && is_family(vm["arch"].as<std::string>())) {   // the older spelling of --family
        const std::string a = vm["arch"].as<std::string>();
        if (vm.count("family") && !vm["family"].defaulted() && a != f)
            throw UsageError("options --family " + f + " and --arch " + a + " disagree");
        return a;
    }
    return f;
}

CNNConfig cnn_arch_from_options(const po::variables_map& vm) {
    for (const char* k : {"patch", "dim", "depth", "heads", "mlp-ratio", "mlp-hidden"})
        if (vm.count(k)) throw UsageError(std::string("option --") + k + " applies to --family vit, not cnn");
    for (const char* k : {"qk-norm", "parallel-block", "no-qkv-bias"})
        if (vm.count(k) && vm[k].as<bool>()) throw UsageError(std::string("option --") + k + " applies to --family vit, not cnn");
    if (!arch_spec(vm).empty()) throw UsageError("option --arch: a sub-architecture applies to ViTs, not --family cnn");
    CNNConfig c;
    try {
        c = cnn_preset(vm["preset"].defaulted() ? "small" : vm["preset"].as<std::string>());
    } catch (const Error& e) {
        throw UsageError(std::string("option --preset: ") + e.what());
    }
    img_option(vm, c);
    if (vm.count("layers")) c.layers = vm["layers"].as<std::string>();
    try {
        c.parse("");
    } catch (const Error& e) {
        throw UsageError(std::string("option --layers: ") + e.what());
    }
    if (vm.count("classes")) {
        const int k = vm["classes"].as<int>();
        if (k < 2 || k > bounds::kMaxClasses) throw UsageError("option --classes: " + std::to_string(k) + " is outside 2.." +
                                                               std::to_string(bounds::kMaxClasses));
        c.tasks[0].num_classes = k;
    }
    return c;
}

std::unique_ptr<Network> network_from_options(const po::variables_map& vm, const NetSpec* data, const std::string& where) {
    auto fit = [&](NetSpec& c) {
        if (!data) return;
        if (!vm.count("img")) { c.img_h = data->img_h; c.img_w = data->img_w; c.img_c = data->img_c; }
        c.tasks = data->tasks;
        c.in_mean = data->in_mean;
        c.in_std = data->in_std;
    };
    if (arch_family(vm) == "cnn") {
        CNNConfig c = cnn_arch_from_options(vm);
        fit(c);
        c.validate(where);
        if (c.tasks.size() > 1) fail(where, "a CNN has one task; multi-task supernets are ViTs");
        return std::make_unique<CNN>(c);
    }
    ViTConfig c = arch_from_options(vm);
    fit(c);
    c.ffn_sets = 1;
    if (c.tasks.size() > 1) {
        if (!arch_spec(vm).empty()) fail(where, "--arch names a sub-architecture of a one-task ViT, not of a supernet");
        c.make_supernet();
    }
    c.validate(where);
    return std::make_unique<ViT>(c);
}

ViTConfig arch_from_options(const po::variables_map& vm) {
    if (vm.count("layers")) throw UsageError("option --layers applies to --family cnn");
    ViTConfig c;
    try {
        c = preset(vm["preset"].as<std::string>());
    } catch (const Error& e) {
        throw UsageError(std::string("option --preset: ") + e.what());
    }
    auto in_range = [&](const char* opt, int64_t hi, int64_t lo = 1) {
        if (!vm.count(opt)) return;
        const int v = vm[opt].as<int>();
        if (v < lo || v > hi)
            throw UsageError("option --" + std::string(opt) + ": " + std::to_string(v) + " is outside " +
                             std::to_string(lo) + ".." + std::to_string(hi));
    };
    in_range("patch", bounds::kMaxImageSide);
    in_range("dim", bounds::kMaxDim);
    in_range("depth", bounds::kMaxDepth);
    in_range("heads", bounds::kMaxHeads);
    in_range("mlp-hidden", bounds::kMaxMlpHidden);
    in_range("classes", bounds::kMaxClasses, 2);
    if (vm.count("mlp-ratio")) {
        const double r = vm["mlp-ratio"].as<double>();
        const int dim = vm.count("dim") ? vm["dim"].as<int>() : c.dim;
        if (!(r > 0) || r * dim + 0.5 < 1 || r * dim > double(bounds::kMaxMlpHidden))
            throw UsageError("option --mlp-ratio: " + std::to_string(r) + " times dim " + std::to_string(dim) +
                             " is not a hidden size in 1.." + std::to_string(bounds::kMaxMlpHidden));
    }
    img_option(vm, c);
    if (vm.count("patch")) c.patch = vm["patch"].as<int>();
    if (vm.count("dim")) c.dim = vm["dim"].as<int>();
    if (vm.count("depth")) c.depth = vm["depth"].as<int>();
    if (vm.count("heads")) c.heads = vm["heads"].as<int>();
    if (vm.count("mlp-ratio")) c.mlp_hidden = int(vm["mlp-ratio"].as<double>() * c.dim + 0.5);
    else if (vm.count("dim")) c.mlp_hidden = 4 * c.dim;
    if (vm.count("mlp-hidden")) c.mlp_hidden = vm["mlp-hidden"].as<int>();
    if (vm.count("classes")) c.tasks[0].num_classes = vm["classes"].as<int>();
    if (vm.count("qk-norm") && vm["qk-norm"].as<bool>()) c.qk_norm = true;
    if (vm.count("parallel-block") && vm["parallel-block"].as<bool>()) c.parallel_block = true;
    if (vm.count("no-qkv-bias") && vm["no-qkv-bias"].as<bool>()) c.qkv_bias = false;
    if (c.dim % c.heads)
        throw UsageError("dim " + std::to_string(c.dim) + " is not divisible by " + std::to_string(c.heads) + " heads");
    // A sub-architecture of the model the flags describe (e.g. to train it alone): per-block
    // heads and FFN widths; the image shape and tasks are fitted later and do not affect it.
    const std::string spec = arch_spec(vm);
    if (!spec.empty()) {
        try {
            c.validate("");
            c = arch_config(c, parse_arch(spec, c, ""));
        } catch (const UsageError&) {
            throw;
        } catch (const Error& e) {
            throw UsageError(std::string("option ") + e.what());
        }
    }
    return c;   // validated by the caller, which knows the data it must fit
}

}  // namespace ufo
