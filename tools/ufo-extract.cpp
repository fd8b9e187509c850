// ufo-extract — cuts a standalone checkpoint (kind "subnet") out of a Task-MoE supernet (one
// task's sub-network along its route, or the shared branch) or out of an elastic model (a
// sub-architecture given as a spec) (see man/ufo-extract.1).
#include "io/atomic_file.h"
#include "io/checkpoint.h"
#include "tool/cli.h"
#include "base/common.h"
#include "nn/elastic.h"
#include "nn/extract.h"
#include "nn/vit.h"
#include "io/routes.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

namespace po = boost::program_options;
using namespace ufo;

namespace {

const char* kUsage =
    "usage: ufo-extract SUPERNET.h5 (--task T | --shared) [--routes FILE|-] -o OUT.h5 [--json]\n"
    "       ufo-extract ELASTIC.h5 --arch 'depth=D heads=H,.. mlp=N,..'|- -o OUT.h5 [--json]\n"
    "Writes a standalone checkpoint (kind subnet) holding only what task T uses along its route\n"
    "(embeddings, attention, the chosen FFN per block, the final norm and T's head), or with\n"
    "--shared every block's shared FFN and no task head. Each tensor records its supernet source.\n"
    "SUPERNET may be '-' (stdin); a route table (--routes) replaces the stored routes first.\n"
    "--arch cuts a sub-architecture out of an elastic model (or any one-task ViT) into a dense\n"
    "checkpoint with smaller tensors; '--arch -' reads the spec from the first line of stdin.\n"
    "Prints one summary row on stdout: TSV with a header, or one JSON object with --json.";


std::string route_text(const std::vector<int>& route) {
    std::string s;
    for (size_t l = 0; l < route.size(); ++l) s += std::string(l ? "," : "") + (route[l] ? "own" : "shared");
    return s;
}

// --arch: the sub-architecture as a dense checkpoint; one summary row.
int extract_by_arch(LoadedCheckpoint& ck, const std::string& where, uint64_t checksum, const std::string& text,
                    const std::string& out_path, bool json, const std::string& command) {
    const ViT& model = ck.vit();
    const Active a = parse_arch(text, model.cfg, where);
    const std::string spec = format_arch(a);
    Provenance prov;
    prov.tool = "ufo-extract";
    prov.command = command;
    prov.parent = where == "<stdin>" ? "" : where;
    prov.parent_checksum = checksum;
    prov.parent_arch = spec;
    std::unique_ptr<ViT> sub = extract_arch(model, a, &prov.sources);
    save_checkpoint(out_path, "subnet", *sub, prov, nullptr);
    const size_t m = model.num_params(), n = sub->num_params();
    const double flops = sub->forward_flops(active_full(sub->cfg));
    if (json) {
        nlohmann::ordered_json j = {{"arch", spec}, {"model_params", m}, {"subnet_params", n},
                                    {"subnet_mflops", flops * 1e-6}, {"output", out_path}};
        std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace).c_str());
    } else {
        std::printf("arch\tmodel_params\tsubnet_params\tsubnet_mflops\toutput\n");
        std::printf("%s\t%zu\t%zu\t%.4f\t%s\n", spec.c_str(), m, n, flops * 1e-6, cli::tsv(out_path).c_str());
    }
    if (std::fflush(stdout) != 0 || std::ferror(stdout)) fail("<stdout>", "write error");
    std::fprintf(stderr, "ufo-extract: wrote %s (%s, %zu of %zu parameters)\n", out_path.c_str(), spec.c_str(), n, m);
    return 0;
}

int main_body(int argc, char** argv) {
    std::string super_path, task_name, routes_path, out_path, arch_text;
    bool shared = false, json = false;
    po::options_description opts("options");
    opts.add_options()
        ("help,h", "show this help")
        ("supernet", po::value(&super_path), "Task-MoE supernet checkpoint, or '-' for stdin")
        ("task", po::value(&task_name), "extract this task's sub-network along its route")
        ("shared", po::bool_switch(&shared), "extract the shared branch (every shared FFN, no task head)")
        ("arch", po::value(&arch_text), "extract this sub-architecture of an elastic model, or '-' (stdin)")
        ("routes", po::value(&routes_path), "route table (task<TAB>layer<TAB>path) to apply first, or '-'")
        ("output,o", po::value(&out_path)->required(), "output checkpoint (.h5)")
        ("json", po::bool_switch(&json), "print the summary as one JSON object instead of TSV");
    po::positional_options_description pos;
    pos.add("supernet", 1);
    po::variables_map vm;
    if (!cli::parse(argc, argv, opts, pos, vm, kUsage)) return 0;
    if (super_path.empty()) throw po::error("a supernet checkpoint is required");
    const bool by_arch = vm.count("arch") > 0;
    if (int(vm.count("task") > 0) + int(shared) + int(by_arch) != 1)
        throw po::error("give exactly one of --task T, --shared and --arch SPEC");
    if (by_arch && !routes_path.empty()) throw po::error("--routes applies to --task and --shared, not --arch");
    if (by_arch && arch_text == "-" && super_path == "-")
        throw po::error("the model and the --arch spec cannot both come from stdin");
    if (out_path == "-")
        throw po::error("-o - is not supported: an HDF5 checkpoint cannot be written to stdout; name a file");
    if (super_path == "-" && routes_path == "-")
        throw po::error("the supernet and the route table cannot both come from stdin");
    // Fail on a missing output directory before the (possibly large) supernet is read;
    // save_checkpoint checks again when it writes.
    cli::check_outputs({out_path}, {super_path, routes_path});
    { AtomicPath probe(out_path); }

    // The checksum is taken before loading: a file cannot be read twice from stdin.
    const bool from_stdin = super_path == "-";
    const std::string where = from_stdin ? "<stdin>" : super_path;
    const uint64_t checksum = from_stdin ? 0 : fnv1a_file(super_path);
    if (by_arch && arch_text == "-") arch_text = cli::read_spec_line();
    LoadedCheckpoint ck = load_checkpoint(super_path);
    ViT& super = ck.vit();
    if (by_arch) return extract_by_arch(ck, where, checksum, arch_text, out_path, json, cli::command_line(argc, argv));
    if (!super.cfg.is_supernet())
        fail(where, "is " + kind_phrase(ck.kind) + ", not a Task-MoE supernet");
    if (!routes_path.empty()) {
        const RouteTable table = read_route_table(routes_path);
        apply_route_table(super.cfg, table, routes_path == "-" ? "<stdin>" : routes_path);
    }

    Provenance prov;
    prov.tool = "ufo-extract";
    prov.command = cli::command_line(argc, argv);
    // A supernet piped in has no path to record; parent stays empty so that no checksum is
    // claimed for bytes that cannot be re-read.
    prov.parent = from_stdin ? "" : super_path;
    prov.parent_checksum = checksum;

    std::unique_ptr<ViT> sub;
    std::string label;
    std::vector<int> route;
    if (shared) {
        sub = extract_shared(super, &prov.sources);
        label = "shared";
        route.assign(size_t(super.cfg.depth), 0);
    } else {
        const int t = super.cfg.task_index(task_name, where);
        sub = extract_task(super, t, &prov.sources);
        label = task_name;
        route = super.cfg.tasks[size_t(t)].route;
    }
    save_checkpoint(out_path, "subnet", *sub, prov, nullptr);

    const size_t m = super.num_params(), n = sub->num_params();
    if (json) {
        nlohmann::ordered_json j = {{"task", label}, {"route", route_text(route)}, {"supernet_params", m},
                                    {"subnet_params", n}, {"output", out_path}};
        std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace).c_str());
    } else {
        std::printf("task\troute\tsupernet_params\tsubnet_params\toutput\n");
        std::printf("%s\t%s\t%zu\t%zu\t%s\n", cli::tsv(label).c_str(), route_text(route).c_str(), m, n,
                    cli::tsv(out_path).c_str());
    }
    if (std::fflush(stdout) != 0 || std::ferror(stdout)) fail("<stdout>", "write error");
    std::fprintf(stderr, "ufo-extract: wrote %s (%s %s, %zu of %zu parameters)\n", out_path.c_str(),
                 shared ? "the" : "task", shared ? "shared branch" : label.c_str(), n, m);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return cli::run("ufo-extract", [&] { return main_body(argc, argv); });
}
