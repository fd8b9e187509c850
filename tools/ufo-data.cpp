// ufo-data — import, split and inspect ufo dataset files (man/ufo-data.1).
#include "io/atomic_file.h"
#include "tool/cli.h"
#include "base/common.h"
#include "io/dataset.h"
#include "io/image_io.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <set>

namespace po = boost::program_options;
using namespace ufo;

namespace {

const char* kUsage =
    "usage: ufo-data <command> [options]\n"
    "\n"
    "commands:\n"
    "  import-idx IMAGES LABELS -o OUT.h5     MNIST-style IDX files (.gz or plain)\n"
    "  import-grid SHEET.png --cell N --per-class K -o OUT.h5\n"
    "                                         one image of equal cells, classes in runs of K\n"
    "  import-folder DIR -o OUT.h5            DIR/<class>/*.{png,jpg,jpeg}\n"
    "  split IN.h5 (--fractions F,F[,F] | --count A,B[,C]) -o A.h5 -o B.h5 [-o C.h5]\n"
    "                                         stratified, deterministic given --seed\n"
    "  info IN.h5 [--json]                    count, shape, classes, per-class counts\n"
    "\n"
    "'-' reads stdin / writes stdout. 'ufo-data <command> --help' shows each command's options.";

[[noreturn]] void usage_error(const std::string& msg) { throw po::error(msg); }

struct Common {
    std::string output, resize, classes;
    int zstd = 3, channels = 0;
};

void add_output(po::options_description& o, Common& c) {
    o.add_options()
        ("output,o", po::value(&c.output)->required(), "output dataset file ('-' = stdout)")
        ("resize", po::value(&c.resize), "resize every image to HxW (e.g. 28x28)")
        ("zstd", po::value(&c.zstd)->default_value(3), "zstd level 1..22 for filter 32015; 0 = uncompressed");
}

void check_zstd(int level) {
    if (level < 0 || level > 22) usage_error("--zstd must be between 0 and 22");
}

void check_channels(int c) {
    if (c != 0 && c != 1 && c != 3) usage_error("--channels must be 1 or 3");
}

std::pair<int, int> parse_hw(const std::string& s) {
    auto x = s.find('x');
    try {
        if (x == std::string::npos) throw std::invalid_argument(s);
        size_t a = 0, b = 0;
        int h = std::stoi(s.substr(0, x), &a), w = std::stoi(s.substr(x + 1), &b);
        if (a != x || b != s.size() - x - 1 || h <= 0 || w <= 0) throw std::invalid_argument(s);
        return {h, w};
    } catch (const std::exception&) {
        usage_error("--resize '" + s + "' is not HxW (e.g. 28x28)");
    }
}

std::vector<std::string> class_list(const std::string& s) {
    if (s.empty()) return {};
    auto names = cli::split(s, ',');
    std::set<std::string> seen;
    for (const auto& n : names) {
        if (n.empty()) usage_error("--classes has an empty name");
        if (!seen.insert(n).second) usage_error("--classes names '" + n + "' twice");
    }
    return names;
}

// Fails now, before any slow work, if the output could not be written.
void probe_output(const std::string& path) { AtomicPath probe(path); }

void finish(Dataset& ds, const Common& c, const std::string& cmdline) {
    if (!c.resize.empty()) {
        auto [h, w] = parse_hw(c.resize);
        resize_dataset(ds, h, w);
    }
    save_dataset(ds, c.output, cmdline, c.zstd);
    std::fprintf(stderr, "ufo-data: wrote %s (%lld images %dx%dx%d, %d classes)\n",
                 c.output == "-" ? "<stdout>" : c.output.c_str(), (long long)ds.n, ds.h, ds.w, ds.c,
                 ds.num_classes());
}

bool parse_sub(int argc, char** argv, po::options_description& opts, const po::positional_options_description& pos,
               po::variables_map& vm, const std::string& usage) {
    opts.add_options()("help,h", "show this help");
    return cli::parse(argc, argv, opts, pos, vm, usage);
}

int cmd_import_idx(int argc, char** argv, const std::string& cmdline) {
    Common c;
    std::string images, labels;
    po::options_description o("options");
    o.add_options()
        ("images", po::value(&images)->required(), "IDX images file (idx3 uint8)")
        ("labels", po::value(&labels)->required(), "IDX labels file (idx1 uint8)")
        ("classes", po::value(&c.classes), "comma-separated class names (default 0..max label)");
    add_output(o, c);
    po::positional_options_description pos;
    pos.add("images", 1).add("labels", 1);
    po::variables_map vm;
    if (!parse_sub(argc, argv, o, pos, vm, "usage: ufo-data import-idx IMAGES LABELS -o OUT.h5 [options]")) return 0;
    check_zstd(c.zstd);
    if (!c.resize.empty()) parse_hw(c.resize);
    cli::check_outputs({c.output}, {images, labels});
    probe_output(c.output);
    Dataset ds = import_idx(images, labels, class_list(c.classes));
    finish(ds, c, cmdline);
    return 0;
}

int cmd_import_grid(int argc, char** argv, const std::string& cmdline) {
    Common c;
    std::string sheet;
    int cell = 0, per_class = 0;
    po::options_description o("options");
    o.add_options()
        ("sheet", po::value(&sheet)->required(), "PNG or JPEG sheet of equal square cells")
        ("cell", po::value(&cell)->required(), "cell size in pixels")
        ("per-class", po::value(&per_class)->required(), "consecutive cells per class (row-major)")
        ("classes", po::value(&c.classes), "comma-separated class names (default 0..K-1)")
        ("channels", po::value(&c.channels)->default_value(0), "1 (gray) or 3 (RGB); 0 = as stored");
    add_output(o, c);
    po::positional_options_description pos;
    pos.add("sheet", 1);
    po::variables_map vm;
    if (!parse_sub(argc, argv, o, pos, vm, "usage: ufo-data import-grid SHEET --cell N --per-class K -o OUT.h5 [options]"))
        return 0;
    check_zstd(c.zstd);
    check_channels(c.channels);
    if (cell <= 0 || per_class <= 0) usage_error("--cell and --per-class must be positive");
    if (!c.resize.empty()) parse_hw(c.resize);
    cli::check_outputs({c.output}, {sheet});
    probe_output(c.output);
    Dataset ds = import_grid(sheet, cell, per_class, c.channels, class_list(c.classes));
    finish(ds, c, cmdline);
    return 0;
}

int cmd_import_folder(int argc, char** argv, const std::string& cmdline) {
    Common c;
    std::string dir;
    po::options_description o("options");
    o.add_options()
        ("dir", po::value(&dir)->required(), "directory with one sub-directory per class")
        ("channels", po::value(&c.channels)->default_value(0), "1 (gray) or 3 (RGB); 0 = as the first image");
    add_output(o, c);
    po::positional_options_description pos;
    pos.add("dir", 1);
    po::variables_map vm;
    if (!parse_sub(argc, argv, o, pos, vm, "usage: ufo-data import-folder DIR -o OUT.h5 [options]")) return 0;
    check_zstd(c.zstd);
    check_channels(c.channels);
    int h = 0, w = 0;
    if (!c.resize.empty()) std::tie(h, w) = parse_hw(c.resize);
    cli::check_outputs({c.output}, {dir});
    probe_output(c.output);
    Dataset ds = import_folder(dir, c.channels, h, w);
    c.resize.clear();  // already applied per image
    finish(ds, c, cmdline);
    return 0;
}

int cmd_split(int argc, char** argv, const std::string& cmdline) {
    std::string input, fractions, counts;
    std::vector<std::string> outputs;
    std::string seed_arg;
    int zstd = 3;
    po::options_description o("options");
    o.add_options()
        ("input", po::value(&input)->required(), "dataset to split ('-' = stdin)")
        ("fractions", po::value(&fractions), "2 or 3 fractions summing to 1, e.g. 0.8,0.1,0.1")
        ("count", po::value(&counts), "exact part sizes instead, e.g. 4000,1000")
        ("seed", po::value(&seed_arg)->default_value("0"), "shuffle seed")
        ("output,o", po::value(&outputs)->required(), "one output per part, in order (repeat -o)")
        ("zstd", po::value(&zstd)->default_value(3), "zstd level 1..22; 0 = uncompressed");
    po::positional_options_description pos;
    pos.add("input", 1);
    po::variables_map vm;
    if (!parse_sub(argc, argv, o, pos, vm,
                   "usage: ufo-data split IN.h5 (--fractions F,F[,F] | --count A,B[,C]) [--seed S] -o A.h5 -o B.h5 [-o C.h5]"))
        return 0;
    check_zstd(zstd);
    const uint64_t seed = cli::seed(seed_arg);
    if (fractions.empty() == counts.empty()) usage_error("give exactly one of --fractions and --count");
    std::vector<double> fr;
    std::vector<int64_t> cn;
    if (!fractions.empty()) {
        for (const auto& tok : cli::split(fractions, ',')) {
            size_t used = 0;
            double v = 0;
            try { v = std::stod(tok, &used); } catch (const std::exception&) { used = 0; }
            if (used == 0 || used != tok.size() || !(v > 0 && v <= 1)) usage_error("--fractions: '" + tok + "' is not a number in (0,1]");
            fr.push_back(v);
        }
    } else {
        for (int v : cli::int_list("count", counts)) cn.push_back(v);
    }
    double sum = 0;
    for (double f : fr) sum += f;
    if (!fr.empty() && std::fabs(sum - 1.0) > 1e-6) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%g", sum);
        usage_error(std::string("--fractions must sum to 1, not ") + buf);
    }
    size_t parts = fr.empty() ? cn.size() : fr.size();
    if (parts < 2 || parts > 3) usage_error("split makes 2 or 3 parts, not " + std::to_string(parts));
    if (outputs.size() != parts)
        usage_error(std::to_string(parts) + " parts need " + std::to_string(parts) + " -o outputs, got " + std::to_string(outputs.size()));
    std::set<std::string> distinct(outputs.begin(), outputs.end());
    if (distinct.size() != outputs.size()) usage_error("the -o outputs must be distinct");
    cli::check_outputs(outputs, {input});
    for (const auto& out : outputs) probe_output(out);

    Dataset ds = load_dataset(input);
    const std::string shown = input == "-" ? "<stdin>" : input;
    std::vector<std::vector<int64_t>> idx;
    try {
        idx = fr.empty() ? split_counts(ds.labels, ds.num_classes(), cn, seed)
                         : split_fractions(ds.labels, ds.num_classes(), fr, seed);
    } catch (const Error& e) {
        fail(shown, e.what());
    }
    for (size_t k = 0; k < parts; ++k)
        if (idx[k].empty()) fail(shown, "split part " + std::to_string(k + 1) + " would be empty (" + std::to_string(ds.n) + " samples)");
    // All parts are written to temp files first and renamed into place only when every one
    // succeeded: a failure (e.g. a full disk) leaves none of the outputs.
    std::vector<std::unique_ptr<AtomicPath>> out;
    std::vector<int64_t> sizes;
    for (size_t k = 0; k < parts; ++k) {
        Dataset part = subset(ds, idx[k]);
        part.source = "split " + std::to_string(k + 1) + "/" + std::to_string(parts) + " of " + shown + " (seed " +
                      std::to_string(seed) + "); " + ds.source;
        out.push_back(std::make_unique<AtomicPath>(outputs[k]));
        write_dataset(part, *out.back(), cmdline, zstd);
        sizes.push_back(part.n);
    }
    for (size_t k = 0; k < parts; ++k) {
        out[k]->commit();
        std::fprintf(stderr, "ufo-data: wrote %s (%lld images)\n", outputs[k] == "-" ? "<stdout>" : outputs[k].c_str(),
                     (long long)sizes[k]);
    }
    return 0;
}

// TSV/JSON values stay on one line.
std::string one_line(std::string s) {
    for (auto& ch : s)
        if (ch == '\t' || ch == '\n' || ch == '\r') ch = ' ';
    return s;
}

int cmd_info(int argc, char** argv) {
    std::string input;
    bool json = false;
    po::options_description o("options");
    o.add_options()
        ("input", po::value(&input)->required(), "dataset file ('-' = stdin)")
        ("json", po::bool_switch(&json), "one JSON object instead of key/value TSV");
    po::positional_options_description pos;
    pos.add("input", 1);
    po::variables_map vm;
    if (!parse_sub(argc, argv, o, pos, vm,
                   "usage: ufo-data info IN.h5 [--json]\n\n"
                   "TSV output: header 'key<TAB>value', then file, format_version, count, height, width,\n"
                   "channels, shape (HxWxC), num_classes, source, and class.<i>.name / class.<i>.count per class."))
        return 0;
    Dataset ds = load_dataset(input, true);
    auto counts = class_counts(ds);
    const std::string file = input == "-" ? "<stdin>" : input;
    const std::string shape = std::to_string(ds.h) + "x" + std::to_string(ds.w) + "x" + std::to_string(ds.c);
    if (json) {
        nlohmann::json j;
        j["file"] = file;
        j["format"] = kDatasetFormat;
        j["format_version"] = kDatasetVersion;
        j["count"] = ds.n;
        j["height"] = ds.h;
        j["width"] = ds.w;
        j["channels"] = ds.c;
        j["shape"] = shape;
        j["num_classes"] = ds.num_classes();
        j["source"] = ds.source;
        j["classes"] = nlohmann::json::array();
        for (int k = 0; k < ds.num_classes(); ++k)
            j["classes"].push_back({{"index", k}, {"name", ds.class_names[size_t(k)]}, {"count", counts[size_t(k)]}});
        std::cout << j.dump() << "\n";
    } else {
        std::cout << "key\tvalue\n"
                  << "file\t" << one_line(file) << "\n"
                  << "format_version\t" << kDatasetVersion << "\n"
                  << "count\t" << ds.n << "\n"
                  << "height\t" << ds.h << "\n"
                  << "width\t" << ds.w << "\n"
                  << "channels\t" << ds.c << "\n"
                  << "shape\t" << shape << "\n"
                  << "num_classes\t" << ds.num_classes() << "\n"
                  << "source\t" << one_line(ds.source) << "\n";
        for (int k = 0; k < ds.num_classes(); ++k)
            std::cout << "class." << k << ".name\t" << one_line(ds.class_names[size_t(k)]) << "\n"
                      << "class." << k << ".count\t" << counts[size_t(k)] << "\n";
    }
    std::cout.flush();
    if (!std::cout) fail("<stdout>", "write error");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return cli::run("ufo-data", [&]() -> int {
        if (argc < 2) usage_error("missing command");
        const std::string cmd = argv[1];
        const std::string cmdline = cli::command_line(argc, argv);
        if (cmd == "--help" || cmd == "-h" || cmd == "help") {
            std::cout << kUsage << std::endl;
            return 0;
        }
        if (cmd == "--version") {
            std::cout << "ufo-data " << kVersion << std::endl;
            return 0;
        }
        if (cmd == "import-idx") return cmd_import_idx(argc - 1, argv + 1, cmdline);
        if (cmd == "import-grid") return cmd_import_grid(argc - 1, argv + 1, cmdline);
        if (cmd == "import-folder") return cmd_import_folder(argc - 1, argv + 1, cmdline);
        if (cmd == "split") return cmd_split(argc - 1, argv + 1, cmdline);
        if (cmd == "info") return cmd_info(argc - 1, argv + 1);
        usage_error("unknown command '" + cmd + "'");
    });
}
