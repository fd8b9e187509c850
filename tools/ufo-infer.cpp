// ufo-infer — predictions of a checkpoint on an HDF5 dataset or on image files, with an
// optional accuracy / per-class / confusion-matrix summary (see man/ufo-infer.1).
#include "layers/blas.h"
#include "io/atomic_file.h"
#include "io/checkpoint.h"
#include "tool/cli.h"
#include "base/common.h"
#include "io/dataset.h"
#include "io/image_io.h"
#include "io/predictions.h"
#include "train/infer.h"
#include "nn/elastic.h"
#include "nn/vit.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

namespace po = boost::program_options;
using namespace ufo;

namespace {

const char* kUsage =
    "usage: ufo-infer -m MODEL.h5 [DATA.h5 | IMAGE... | -] [--task T] [--summary | --summary-only]\n"
    "                 [--json] [--probs] [--logits] [-o PRED.h5] [--resize] [-b BATCH] [-t THREADS]\n"
    "Predicts every image of a ufo dataset (labels known) or of PNG/JPEG files and prints one row\n"
    "per image on stdout: TSV with a header, or JSON Lines with --json.\n"
    "'-' reads stdin: an HDF5 dataset, or else a list of image paths, one per line.\n"
    "-o also writes every image's probabilities, logits and prediction to an HDF5 file.";

// Where the images come from and what is known about them.
struct Input {
    std::string name;                    // shown in messages: the dataset path, "<stdin>", ...
    bool is_dataset = false;
    std::vector<std::string> sources;    // image mode: one path per image
    std::vector<uint8_t> images;         // [n,H,W,C] at the model's input size
    std::vector<int32_t> labels;         // empty when unknown
    int64_t n = 0;
};

bool ends_with(const std::string& s, const char* suffix) {
    const size_t k = std::strlen(suffix);
    if (s.size() < k) return false;
    for (size_t i = 0; i < k; ++i)
        if (std::tolower(static_cast<unsigned char>(s[s.size() - k + i])) != suffix[i]) return false;
    return true;
}

bool looks_like_hdf5(const std::string& path) {
    if (ends_with(path, ".h5") || ends_with(path, ".hdf5") || ends_with(path, ".hdf") || ends_with(path, ".he5"))
        return true;
    std::ifstream in(path, std::ios::binary);
    char sig[8] = {};
    static const char kSig[8] = {'\x89', 'H', 'D', 'F', '\r', '\n', '\x1a', '\n'};
    return in.read(sig, 8) && std::memcmp(sig, kSig, 8) == 0;
}


// Dataset labels are used when the dataset has as many classes as the task; they are
// compared by index (a note says so when the class names differ).
void take_dataset(Input& in, Dataset&& ds, const NetSpec& cfg, const TaskInfo& task, const std::string& where) {
    check_fits(cfg, ds, where);
    in.is_dataset = true;
    in.n = ds.n;
    in.images = std::move(ds.images);
    if (ds.num_classes() == task.num_classes) {
        in.labels = std::move(ds.labels);
        if (!task.class_names.empty() && task.class_names != ds.class_names)
            std::fprintf(stderr, "ufo-infer: note: %s names its classes differently from task '%s'; "
                         "labels are compared by index\n", where.c_str(), task.name.c_str());
    } else {
        std::fprintf(stderr, "ufo-infer: note: %s has %d classes, task '%s' has %d; labels are not used\n",
                     where.c_str(), ds.num_classes(), task.name.c_str(), task.num_classes);
    }
}

// Decodes every image first, so that a bad file stops the run before anything is printed.
void take_images(Input& in, const std::vector<std::string>& paths, const NetSpec& cfg, bool resize_ok) {
    const size_t isz = size_t(cfg.img_h) * cfg.img_w * cfg.img_c;
    in.images.reserve(paths.size() * isz);
    for (const auto& p : paths) {
        Image img = load_image(p, cfg.img_c);
        if (img.h != cfg.img_h || img.w != cfg.img_w) {
            if (!resize_ok)
                fail(p, "image is " + std::to_string(img.h) + "x" + std::to_string(img.w) + " but the model takes " +
                            std::to_string(cfg.img_h) + "x" + std::to_string(cfg.img_w) + " (use --resize)");
            img = resize(img, cfg.img_h, cfg.img_w);
        }
        in.images.insert(in.images.end(), img.px.begin(), img.px.end());
    }
    in.sources = paths;
    in.n = int64_t(paths.size());
}

std::vector<std::string> read_path_list(std::FILE* f) {
    std::vector<std::string> paths;
    std::string line;
    int ch;
    auto flush = [&] {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (!line.empty()) paths.push_back(line);
        line.clear();
    };
    while ((ch = std::fgetc(f)) != EOF) {
        if (ch == '\n') flush();
        else line.push_back(char(ch));
    }
    flush();
    if (std::ferror(f)) fail("<stdin>", "read error");
    return paths;
}


// "p_NAME" / "logit_NAME" header cells, one per class, in class order (the index without names).
std::string class_columns(const std::string& prefix, const TaskInfo& task) {
    std::string s;
    for (int k = 0; k < task.num_classes; ++k)
        s += "\t" + prefix + (task.class_names.empty() ? std::to_string(k) : cli::tsv(task.class_names[size_t(k)]));
    return s;
}

// Paths and names need not be UTF-8; invalid bytes become U+FFFD instead of an exception.
std::string dump(const nlohmann::ordered_json& j) {
    return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string fmt6(double v) {
    if (!std::isfinite(v)) return "nan";
    char b[32];
    std::snprintf(b, sizeof b, "%.6f", v);
    return b;
}

void append_cells(std::string& line, const float* v, int K) {
    for (int k = 0; k < K; ++k) line += "\t" + fmt6(v[k]);
}

nlohmann::ordered_json json_array(const float* v, int K) {
    nlohmann::ordered_json a = nlohmann::ordered_json::array();
    for (int k = 0; k < K; ++k) a.push_back(double(v[k]));
    return a;
}

struct Summary {
    int K = 0;
    int64_t n = 0, correct = 0;
    double loss = 0.0;
    std::vector<int64_t> confusion;   // [K,K]: row = true label, column = prediction
    void add(int y, int pred, float p_y) {
        ++n;
        if (pred == y) ++correct;
        loss -= std::log(std::max(p_y, 1e-30f));
        ++confusion[size_t(y) * K + pred];
    }
    int64_t count(int k) const {
        int64_t s = 0;
        for (int j = 0; j < K; ++j) s += confusion[size_t(k) * K + j];
        return s;
    }
};

void print_summary(const Summary& s, const TaskInfo& task, bool json, bool after_rows) {
    const int K = s.K;
    auto name = [&](int k) { return task.class_names.empty() ? std::to_string(k) : task.class_names[size_t(k)]; };
    if (json) {
        nlohmann::ordered_json classes = nlohmann::ordered_json::array(), conf = nlohmann::ordered_json::array();
        for (int k = 0; k < K; ++k) {
            const int64_t c = s.count(k), r = s.confusion[size_t(k) * K + k];
            classes.push_back({{"index", k}, {"name", name(k)}, {"count", c}, {"correct", r},
                               {"accuracy", c ? nlohmann::ordered_json(double(r) / c) : nlohmann::ordered_json(nullptr)}});
            conf.push_back(std::vector<int64_t>(s.confusion.begin() + size_t(k) * K,
                                                s.confusion.begin() + size_t(k + 1) * K));
        }
        nlohmann::ordered_json j = {{"task", task.name}, {"images", s.n}, {"correct", s.correct},
                            {"accuracy", s.n ? double(s.correct) / s.n : 0.0}, {"loss", s.n ? s.loss / s.n : 0.0},
                            {"classes", classes}, {"confusion", conf}};
        std::printf("%s\n", dump(nlohmann::ordered_json{{"summary", j}}).c_str());
        return;
    }
    if (after_rows) std::printf("\n");
    std::printf("metric\tvalue\n");
    std::printf("task\t%s\n", cli::tsv(task.name).c_str());
    std::printf("images\t%lld\n", (long long)s.n);
    std::printf("correct\t%lld\n", (long long)s.correct);
    std::printf("accuracy\t%s\n", fmt6(s.n ? double(s.correct) / s.n : 0.0).c_str());
    std::printf("loss\t%s\n", fmt6(s.n ? s.loss / s.n : 0.0).c_str());
    std::printf("\nclass\tname\tcount\tcorrect\taccuracy\n");
    for (int k = 0; k < K; ++k) {
        const int64_t c = s.count(k), r = s.confusion[size_t(k) * K + k];
        std::printf("%d\t%s\t%lld\t%lld\t%s\n", k, cli::tsv(name(k)).c_str(), (long long)c, (long long)r,
                    fmt6(c ? double(r) / c : NAN).c_str());
    }
    std::printf("\nconfusion");
    for (int k = 0; k < K; ++k) std::printf("\t%d", k);
    std::printf("\n");
    for (int k = 0; k < K; ++k) {
        std::printf("%d", k);
        for (int j = 0; j < K; ++j) std::printf("\t%lld", (long long)s.confusion[size_t(k) * K + j]);
        std::printf("\n");
    }
}

int main_body(int argc, char** argv) {
    std::string model_path, task_name, arch_text, out_path;
    std::vector<std::string> inputs;
    int batch = 256, threads = 0;
    bool json = false, summary = false, summary_only = false, resize_ok = false, want_probs = false,
         want_logits = false;
    po::options_description opts("options");
    opts.add_options()
        ("help,h", "show this help")
        ("model,m", po::value(&model_path)->required(), "checkpoint (ufo-train or later tools)")
        ("input", po::value(&inputs)->multitoken(), "dataset (.h5), image files, or '-'")
        ("task", po::value(&task_name), "task to predict, by name (needed when the model has several)")
        ("arch", po::value(&arch_text),
         "run this sub-architecture of an elastic model ('depth=D heads=H,.. mlp=N,..'), or '-' (stdin)")
        ("summary", po::bool_switch(&summary), "after the rows: accuracy, per-class accuracy, confusion matrix")
        ("summary-only", po::bool_switch(&summary_only), "the summary without the per-image rows")
        ("json", po::bool_switch(&json), "JSON Lines instead of TSV")
        ("probs", po::bool_switch(&want_probs), "every class's probability: columns p_NAME (JSON: \"probs\")")
        ("logits", po::bool_switch(&want_logits), "every class's logit: columns logit_NAME (JSON: \"logits\")")
        ("output,o", po::value(&out_path), "also write the predictions to this HDF5 file (probs, logits, ...)")
        ("resize", po::bool_switch(&resize_ok), "resize image files to the model's input size")
        ("batch,b", po::value(&batch)->default_value(256), "images per forward pass")
        ("threads,t", po::value(&threads)->default_value(0), "threads (0: OMP_NUM_THREADS or all cores)");
    po::positional_options_description pos;
    pos.add("input", -1);
    po::variables_map vm;
    if (!cli::parse(argc, argv, opts, pos, vm, kUsage)) return 0;
    if (inputs.empty()) throw po::error("a dataset, image files or '-' is required");
    if (arch_text == "-" && (model_path == "-" || inputs[0] == "-"))
        throw po::error("--arch - reads stdin, which already carries the model or the input");
    if (batch < 1) throw po::error("option --batch must be positive");
    if (threads < 0) throw po::error("option --threads must not be negative");
    if (inputs.size() > 1 && std::find(inputs.begin(), inputs.end(), "-") != inputs.end())
        throw po::error("'-' must be the only input");
    if ((want_probs || want_logits) && summary_only)
        throw po::error("--probs and --logits add columns to the rows, and --summary-only prints none");
    if (vm.count("output") && out_path.empty()) throw po::error("option --output needs a file name");
    if (out_path == "-")
        throw po::error("-o - is not supported: standard output carries the rows; name a file");
    const bool want_summary = summary || summary_only;
    if (threads > 0) set_threads(threads);

    // An output never replaces an input, and a missing directory fails before any work.
    std::unique_ptr<AtomicPath> out;
    if (!out_path.empty()) {
        std::vector<std::string> read = inputs;
        read.push_back(model_path);
        cli::check_outputs({out_path}, read);
        out = std::make_unique<AtomicPath>(out_path);
    }

    LoadedCheckpoint ck = load_checkpoint(model_path);
    // A model read from stdin cannot be read again, so it gets no checksum.
    const uint64_t model_checksum = out && model_path != "-" ? fnv1a_file(model_path) : 0;
    const Network& m = *ck.net;
    const NetSpec& cfg = m.spec();
    const auto* vit = dynamic_cast<const ViT*>(&m);
    const int t = cfg.choose_task(task_name, vm.count("task") > 0, model_path);
    if (cfg.tasks.empty()) fail(model_path, "has no task head (a shared backbone for new tasks), so it predicts nothing");
    if (vit && vit->cfg.ffn_sets > 1 && !vit->cfg.is_supernet())
        fail(model_path, "has " + std::to_string(vit->cfg.ffn_sets) + " FFN sets per block but is not a Task-MoE supernet");
    const TaskInfo& task = cfg.tasks[size_t(t)];
    const int K = task.num_classes;
    Active active;   // a supernet runs only the task's route; an elastic model its largest or --arch
    active.task = t;
    if (vit) active = active_for_task(vit->cfg, t);
    if (vm.count("arch")) {
        if (!vit) fail(model_path, std::string("--arch names a ViT sub-architecture; this is a ") + m.family());
        if (arch_text == "-") arch_text = cli::read_spec_line();
        active = parse_arch(arch_text, vit->cfg, model_path);
        std::fprintf(stderr, "ufo-infer: %s: %s\n", model_path.c_str(), format_arch(active).c_str());
    }
    m.resolve(active);

    // Input: a dataset (with labels) or images (without).
    Input in;
    if (inputs.size() == 1 && inputs[0] == "-") {
        in.name = "<stdin>";
        int c = std::fgetc(stdin);
        if (c != EOF) std::ungetc(c, stdin);
        if (c == 0x89) {   // the first byte of the HDF5 signature; a path list is text
            take_dataset(in, load_dataset("-"), cfg, task, in.name);
        } else {
            auto paths = read_path_list(stdin);
            if (paths.empty()) fail("<stdin>", "no image paths (expected one per line)");
            take_images(in, paths, cfg, resize_ok);
        }
    } else if (inputs.size() == 1 && looks_like_hdf5(inputs[0])) {
        in.name = inputs[0];
        take_dataset(in, load_dataset(inputs[0]), cfg, task, in.name);
    } else {
        for (const auto& p : inputs)
            if (looks_like_hdf5(p)) fail(p, "is an HDF5 file; give a dataset as the only input");
        in.name = inputs.size() == 1 ? inputs[0] : std::to_string(inputs.size()) + " images";
        take_images(in, inputs, cfg, resize_ok);
    }
    if (out) cli::check_outputs({out_path}, in.sources);   // paths read from stdin, too
    const bool has_labels = !in.labels.empty();
    if (want_summary && !has_labels)
        fail(in.name, in.is_dataset ? "its labels do not match the model's classes, so there is no summary"
                                    : "image files have no labels, so there is no summary (use a dataset)");

    DataParallel dp(m, int(std::min<int64_t>(batch, std::max<int64_t>(in.n, 1))), false);
    dp.pack_weights();
    std::unique_ptr<PredictionsWriter> writer;
    if (out) {
        PredictionsInfo info;
        info.task = task.name;
        info.num_classes = K;
        info.class_names = task.class_names;
        info.model = model_path == "-" ? "" : model_path;
        info.model_checksum = model_checksum;
        if (vm.count("arch")) info.arch = format_arch(active);
        info.input_kind = in.is_dataset ? "dataset" : "images";
        info.input = in.is_dataset ? in.name : inputs[0] == "-" ? "<stdin>" : "";
        info.has_input_checksum = in.is_dataset && inputs[0] != "-";
        if (info.has_input_checksum) info.input_checksum = fnv1a_file(inputs[0]);
        info.tool = "ufo-infer";
        info.command = cli::command_line(argc, argv);
        writer = std::make_unique<PredictionsWriter>(*out, info, in.n, in.labels, in.sources);
    }
    const bool names = !task.class_names.empty();
    const bool rows = !summary_only;
    if (rows && !json) {
        std::printf("index\t%s\tprediction\tprobability%s%s%s\n", in.is_dataset ? "label" : "source",
                    names ? "\tclass_name" : "", want_probs ? class_columns("p_", task).c_str() : "",
                    want_logits ? class_columns("logit_", task).c_str() : "");
    }
    Summary sum;
    sum.K = K;
    sum.confusion.assign(size_t(K) * K, 0);
    std::string line;
    const auto t0 = std::chrono::steady_clock::now();
    predict_batches(m, dp, in.images.data(), in.n, active, [&](int64_t first, int B, const float* probs) {
        if (writer) writer->append(first, B, probs, dp.logits());
        for (int b = 0; b < B; ++b) {
            const int64_t i = first + b;
            const float* p = probs + size_t(b) * K;
            const float* z = dp.logits() + size_t(b) * K;
            const int pred = int(std::max_element(p, p + K) - p);
            const int y = has_labels ? in.labels[size_t(i)] : -1;
            if (has_labels) sum.add(y, pred, p[y]);
            if (!rows) continue;
            if (json) {
                nlohmann::ordered_json j;
                j["index"] = i;
                if (in.is_dataset) j["label"] = has_labels ? nlohmann::ordered_json(y) : nlohmann::ordered_json(nullptr);
                else j["source"] = in.sources[size_t(i)];
                j["prediction"] = pred;
                j["probability"] = double(p[pred]);
                if (names) j["class_name"] = task.class_names[size_t(pred)];
                if (want_probs) j["probs"] = json_array(p, K);
                if (want_logits) j["logits"] = json_array(z, K);
                line = dump(j);
            } else {
                line = std::to_string(i) + "\t";
                if (in.is_dataset) line += has_labels ? std::to_string(y) : "";
                else line += cli::tsv(in.sources[size_t(i)]);
                line += "\t" + std::to_string(pred) + "\t" + fmt6(p[pred]);
                if (names) line += "\t" + cli::tsv(task.class_names[size_t(pred)]);
                if (want_probs) append_cells(line, p, K);
                if (want_logits) append_cells(line, z, K);
            }
            std::printf("%s\n", line.c_str());
        }
    });
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (want_summary) print_summary(sum, task, json, rows);
    if (std::fflush(stdout) != 0 || std::ferror(stdout)) fail("<stdout>", "write error");
    // The file appears only when everything else succeeded.
    if (writer) {
        writer->finish();
        out->commit();
    }
    std::fprintf(stderr, "ufo-infer: %s: task %s, %lld images in %.2f s (%.1f img/s)", in.name.c_str(),
                 task.name.c_str(), (long long)in.n, secs, secs > 0 ? in.n / secs : 0.0);
    if (has_labels) std::fprintf(stderr, ", accuracy %.4f", sum.n ? double(sum.correct) / sum.n : 0.0);
    if (writer) std::fprintf(stderr, ", predictions in %s", out_path.c_str());
    std::fprintf(stderr, "\n");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return cli::run("ufo-infer", [&] { return main_body(argc, argv); });
}
