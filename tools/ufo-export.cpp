// ufo-export — a checkpoint as an ONNX model for deployment runtimes (see man/ufo-export.1).
#include "base/common.h"
#include "export/onnx_model.h"
#include "io/atomic_file.h"
#include "io/checkpoint.h"
#include "nn/elastic.h"
#include "nn/extract.h"
#include "nn/vit.h"
#include "tool/cli.h"

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

namespace po = boost::program_options;
using namespace ufo;

namespace {

const char* kUsage =
    "usage: ufo-export MODEL.h5|- [--task T] [--arch 'depth=D heads=H,.. mlp=N,..'|-] -o OUT.onnx|- [--json]\n"
    "Writes one task of a checkpoint as an ONNX model (opset 17, standard operators only) for ONNX\n"
    "Runtime, TensorRT, OpenVINO and other deployment runtimes. The model takes input 'images',\n"
    "uint8 [batch,H,W,C] (the pixels ufo-infer reads, normalised inside the graph), and returns\n"
    "'logits' and 'probs', float [batch,K]. A supernet is exported along task T's route; --arch\n"
    "exports a sub-architecture of an elastic model (or of any ViT). Prints one summary row on\n"
    "stdout (TSV with a header, or JSON with --json) unless the model itself goes to stdout.";

std::string joined(const std::vector<float>& v) {
    std::string s;
    for (size_t i = 0; i < v.size(); ++i) {
        char b[32];
        std::snprintf(b, sizeof b, "%s%.9g", i ? "," : "", double(v[i]));
        s += b;
    }
    return s;
}

int main_body(int argc, char** argv) {
    std::string model_path, task_name, arch_text, out_path;
    bool json = false;
    po::options_description opts("options");
    opts.add_options()
        ("help,h", "show this help")
        ("model", po::value(&model_path), "checkpoint (any kind ufo-infer runs), or '-' for stdin")
        ("task", po::value(&task_name), "the task to export (needed when the model has several)")
        ("arch", po::value(&arch_text), "export this sub-architecture ('depth=D heads=H,.. mlp=N,..'), or '-' (stdin)")
        ("output,o", po::value(&out_path)->required(), "the ONNX file to write, or '-' for stdout")
        ("json", po::bool_switch(&json), "print the summary as one JSON object instead of TSV");
    po::positional_options_description pos;
    pos.add("model", 1);
    po::variables_map vm;
    if (!cli::parse(argc, argv, opts, pos, vm, kUsage)) return 0;
    if (model_path.empty()) throw po::error("a model checkpoint is required");
    if (out_path.empty()) throw po::error("option --output needs a file name or '-'");
    if (arch_text == "-" && model_path == "-") throw po::error("the model and the --arch spec cannot both come from stdin");
    if (out_path == "-" && isatty(STDOUT_FILENO))
        throw po::error("-o - writes a binary ONNX model, and standard output is a terminal; redirect it or name a file");
    cli::check_outputs({out_path}, {model_path});
    AtomicPath out(out_path);   // fails now on a missing or read-only directory

    const bool from_stdin = model_path == "-";
    const std::string where = from_stdin ? "<stdin>" : model_path;
    const uint64_t checksum = from_stdin ? 0 : fnv1a_file(model_path);
    if (arch_text == "-") arch_text = cli::read_spec_line();
    LoadedCheckpoint ck = load_checkpoint(model_path);
    const Network* net = ck.net.get();
    const NetSpec& spec = net->spec();
    if (spec.tasks.empty()) fail(where, "has no task head (a shared backbone for new tasks), so there is nothing to export");
    int task = spec.choose_task(task_name, vm.count("task") > 0, where);
    const TaskInfo info = spec.tasks[size_t(task)];

    // A supernet is cut along the task's route, and a sub-architecture out of what remains:
    // the exporter writes plain networks only.
    std::unique_ptr<ViT> cut;
    if (const auto* vit = dynamic_cast<const ViT*>(net)) {
        if (vit->cfg.ffn_sets > 1) {
            if (!vit->cfg.is_supernet())
                fail(where, "has " + std::to_string(vit->cfg.ffn_sets) + " FFN sets per block but is not a Task-MoE supernet");
            cut = extract_task(*vit, task, nullptr);
            net = cut.get();
            task = 0;
        }
    }
    std::string arch;
    if (vm.count("arch")) {
        const auto* vit = dynamic_cast<const ViT*>(net);
        if (!vit) fail(where, std::string("--arch names a ViT sub-architecture; this is a ") + net->family());
        const Active a = parse_arch(arch_text, vit->cfg, where);
        arch = format_arch(a);
        std::unique_ptr<ViT> sub = extract_arch(*vit, a, nullptr);
        cut = std::move(sub);
        net = cut.get();
        task = 0;
    }

    OnnxMeta meta;
    meta.graph_name = info.name;
    meta.doc = std::string("ufo ") + net->family() + ", task " + info.name + ": " + net->describe();
    nlohmann::json names = nlohmann::json::array();
    for (int k = 0; k < info.num_classes; ++k)
        names.push_back(info.class_names.empty() ? std::to_string(k) : info.class_names[size_t(k)]);
    const NetSpec& s = net->spec();
    auto& p = meta.props;
    p.emplace_back("ufo.version", kVersion);
    p.emplace_back("ufo.family", net->family());
    p.emplace_back("ufo.task", info.name);
    p.emplace_back("ufo.class_names", names.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    p.emplace_back("ufo.input", "images: uint8 [batch," + std::to_string(s.img_h) + "," + std::to_string(s.img_w) + "," +
                                    std::to_string(s.img_c) + "] (NHWC pixels 0..255), normalised in the graph as "
                                    "(pixel/255 - mean) / std");
    p.emplace_back("ufo.mean", joined(s.in_mean));
    p.emplace_back("ufo.std", joined(s.in_std));
    p.emplace_back("ufo.source", from_stdin ? "" : model_path);
    p.emplace_back("ufo.source_kind", ck.kind);
    if (!from_stdin) p.emplace_back("ufo.source_checksum", hex64(checksum));   // FNV-1a 64 of the file
    if (!arch.empty()) p.emplace_back("ufo.arch", arch);
    p.emplace_back("ufo.command", cli::command_line(argc, argv));

    const OnnxModel model = export_onnx(*net, task, meta, where);
    {
        std::ofstream f(out.tmp(), std::ios::binary | std::ios::trunc);
        f.write(model.bytes.data(), std::streamsize(model.bytes.size()));
        f.close();
        if (!f) fail(out_path == "-" ? "<stdout>" : out_path, "write error");
    }
    out.commit();

    const double mflops = net->forward_flops(Active{}) * 1e-6;
    if (out_path != "-") {
        if (json) {
            nlohmann::ordered_json j = {{"task", info.name}, {"family", net->family()}, {"arch", arch},
                                        {"params", net->num_params()}, {"mflops", mflops}, {"opset", kOnnxOpset},
                                        {"nodes", model.nodes}, {"bytes", model.bytes.size()}, {"output", out_path}};
            std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace).c_str());
        } else {
            std::printf("task\tfamily\tarch\tparams\tmflops\topset\tnodes\tbytes\toutput\n");
            std::printf("%s\t%s\t%s\t%zu\t%.4f\t%d\t%d\t%zu\t%s\n", cli::tsv(info.name).c_str(), net->family(),
                        arch.c_str(), net->num_params(), mflops, kOnnxOpset, model.nodes, model.bytes.size(),
                        cli::tsv(out_path).c_str());
        }
        if (std::fflush(stdout) != 0 || std::ferror(stdout)) fail("<stdout>", "write error");
    }
    std::fprintf(stderr, "ufo-export: wrote %s (task %s, %zu parameters, %d nodes, opset %d)\n",
                 out_path == "-" ? "<stdout>" : out_path.c_str(), info.name.c_str(), net->num_params(), model.nodes,
                 kOnnxOpset);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return cli::run("ufo-export", [&] { return main_body(argc, argv); });
}
