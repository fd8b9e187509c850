// ufo-route — inspect and edit the Task-MoE routes of a supernet: router probabilities per task
// and layer, how much of the network each pair of tasks shares, a heatmap (text on a TTY, PNG
// with gnuplot), route tables (argmax, overrides) and writing a table back into a supernet
// (see man/ufo-route.1).
#include "io/atomic_file.h"
#include "io/checkpoint.h"
#include "tool/cli.h"
#include "base/common.h"
#include "nn/vit.h"
#include "nn/router.h"
#include "io/routes.h"
#include "tool/gnuplot.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

namespace po = boost::program_options;
using namespace ufo;

namespace {

const char* kUsage =
    "usage: ufo-route SUPERNET.h5 [--json] [--sharing] [--plot FILE.png]\n"
    "       ufo-route SUPERNET.h5 --harden [--set TASK:LAYER=shared|own,...]\n"
    "       ufo-route SUPERNET.h5 (--apply ROUTES.tsv | --harden | --set ...) -o OUT.h5\n"
    "Prints p(shared), p(own) and the stored route of every task and layer of a Task-MoE supernet\n"
    "(TSV, or JSON Lines with --json), or with --sharing how many FFN layers each pair of tasks\n"
    "shares. --harden prints the argmax route table; --apply/--set with -o write routes into a\n"
    "copy of the supernet, weights unchanged. '-' reads the supernet (or the table) from stdin.";

const char* kBuckets = " .:-=+*#%@";   // p(own) from 0 to 1 in ten steps, for the text heatmap

// One --set entry, checked for syntax before anything is loaded.
struct SetEntry {
    std::string text;   // as given, for messages
    std::string task;
    int layer = 0;
    int path = 0;       // 0 shared, 1 own
};

std::vector<SetEntry> parse_sets(const std::vector<std::string>& args) {
    std::vector<SetEntry> out;
    for (const auto& arg : args)
        for (const auto& item : cli::split(arg, ',')) {
            const auto eq = item.rfind('=');
            const auto colon = eq == std::string::npos ? std::string::npos : item.rfind(':', eq);
            if (colon == std::string::npos || colon == 0)
                throw po::error("option --set: '" + item + "' is not TASK:LAYER=shared|own");
            SetEntry e;
            e.text = item;
            e.task = item.substr(0, colon);
            const std::string layer = item.substr(colon + 1, eq - colon - 1), path = item.substr(eq + 1);
            size_t used = 0;
            try {
                e.layer = std::stoi(layer, &used);
            } catch (const std::exception&) {
                used = 0;
            }
            if (layer.empty() || used != layer.size() || e.layer < 0)
                throw po::error("option --set: '" + item + "': layer '" + layer + "' is not a non-negative integer");
            if (path == "shared") e.path = 0;
            else if (path == "own") e.path = 1;
            else throw po::error("option --set: '" + item + "': path '" + path + "' is neither shared nor own");
            out.push_back(e);
        }
    return out;
}

void apply_sets(ViTConfig& cfg, const std::vector<SetEntry>& sets, const std::string& where) {
    for (const auto& s : sets) {
        const int t = cfg.task_index(s.task, where + ": --set " + s.text);
        if (s.layer >= cfg.depth)
            fail(where, "--set " + s.text + ": layer " + std::to_string(s.layer) + " is out of range (the supernet has " +
                            std::to_string(cfg.depth) + " layers, 0.." + std::to_string(cfg.depth - 1) + ")");
        cfg.tasks[size_t(t)].route[size_t(s.layer)] = s.path;
    }
}

// p(shared), p(own) per task and layer, from the router logits without noise.
struct Probs {
    std::vector<std::vector<float>> shared, own;   // [task][layer]
};

Probs router_probs(const ViT& m) {
    Probs p;
    for (size_t t = 0; t < m.cfg.tasks.size(); ++t) {
        p.shared.emplace_back(size_t(m.cfg.depth));
        p.own.emplace_back(size_t(m.cfg.depth));
        for (int l = 0; l < m.cfg.depth; ++l) {
            float p2[2];
            route_probs(p2, m.p.heads[t].router + 2 * l);
            p.shared[t][size_t(l)] = p2[0];
            p.own[t][size_t(l)] = p2[1];
        }
    }
    return p;
}

// Parameters of the shared FFN of each block (an own FFN has the same shape), counted from the
// layout so that the sharing fraction stays right if FFN sizes ever differ per block.
std::vector<size_t> ffn_params_per_layer(const ViT& m) {
    std::vector<size_t> n(size_t(m.cfg.depth), 0);
    for (const auto& t : m.layout)
        if (t.role.part == Part::Ffn && t.role.ffn_set == 0) n[size_t(t.role.block)] += t.size;
    return n;
}

struct Pair {
    size_t a, b;
    int shared_layers = 0;
    double fraction = 0.0;   // shared layers' FFN parameters / FFN parameters of one task's path
};

// A layer is shared by two tasks when both route it to the shared FFN.
std::vector<Pair> sharing(const ViTConfig& cfg, const std::vector<size_t>& ffn_params) {
    std::vector<Pair> pairs;
    size_t total = 0;
    for (size_t n : ffn_params) total += n;
    for (size_t a = 0; a < cfg.tasks.size(); ++a)
        for (size_t b = a + 1; b < cfg.tasks.size(); ++b) {
            Pair p{a, b};
            size_t shared = 0;
            for (int l = 0; l < cfg.depth; ++l)
                if (cfg.tasks[a].route[size_t(l)] == 0 && cfg.tasks[b].route[size_t(l)] == 0) {
                    ++p.shared_layers;
                    shared += ffn_params[size_t(l)];
                }
            p.fraction = total ? double(shared) / double(total) : 0.0;
            pairs.push_back(p);
        }
    return pairs;
}

// Paths and names need not be UTF-8; invalid bytes become U+FFFD instead of an exception.
std::string dump(const nlohmann::ordered_json& j) {
    return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string fmt4(double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.4f", v);
    return b;
}

const char* path_name(int r) { return r ? "own" : "shared"; }

void print_layers(const ViTConfig& cfg, const Probs& p, bool json) {
    if (!json) std::printf("task\tlayer\tp_shared\tp_own\troute\n");
    for (size_t t = 0; t < cfg.tasks.size(); ++t)
        for (int l = 0; l < cfg.depth; ++l) {
            const auto& task = cfg.tasks[t];
            const float ps = p.shared[t][size_t(l)], po_ = p.own[t][size_t(l)];
            if (json) {
                nlohmann::ordered_json j = {{"task", task.name}, {"layer", l}, {"p_shared", double(ps)},
                                            {"p_own", double(po_)}, {"route", path_name(task.route[size_t(l)])}};
                std::printf("%s\n", dump(j).c_str());
            } else {
                std::printf("%s\t%d\t%s\t%s\t%s\n", task.name.c_str(), l, fmt4(ps).c_str(), fmt4(po_).c_str(),
                            path_name(task.route[size_t(l)]));
            }
        }
}

void print_sharing(const ViTConfig& cfg, const std::vector<Pair>& pairs, bool json) {
    if (!json) std::printf("task_a\ttask_b\tshared_layers\tlayers\tshared_ffn_params_fraction\n");
    for (const auto& p : pairs) {
        const std::string& a = cfg.tasks[p.a].name;
        const std::string& b = cfg.tasks[p.b].name;
        if (json) {
            nlohmann::ordered_json j = {{"task_a", a}, {"task_b", b}, {"shared_layers", p.shared_layers},
                                        {"layers", cfg.depth}, {"shared_ffn_params_fraction", p.fraction}};
            std::printf("%s\n", dump(j).c_str());
        } else {
            std::printf("%s\t%s\t%d\t%d\t%s\n", a.c_str(), b.c_str(), p.shared_layers, cfg.depth, fmt4(p.fraction).c_str());
        }
    }
}

// The human summary: attention, embeddings, final norm are always shared by every task.
void report_sharing(const ViTConfig& cfg, const std::vector<Pair>& pairs) {
    for (const auto& p : pairs)
        std::fprintf(stderr, "ufo-route: %s and %s share %d of %d FFN layers (all attention and embeddings)\n",
                     cfg.tasks[p.a].name.c_str(), cfg.tasks[p.b].name.c_str(), p.shared_layers, cfg.depth);
}

// A compact heatmap for a terminal: one row per task, one cell per layer, the p(own) bucket
// drawn twice and the route's letter (S shared, O own).
void draw_text_heatmap(const ViTConfig& cfg, const Probs& p) {
    size_t w = 5;   // "layer"
    for (const auto& t : cfg.tasks) w = std::max(w, t.name.size());
    std::fprintf(stderr, "ufo-route: p(own) per layer, \"%s\" = 0 to 1; S/O: route shared/own\n", kBuckets);
    std::fprintf(stderr, "%-*s", int(w), "layer");
    for (int l = 0; l < cfg.depth; ++l) std::fprintf(stderr, " %3d", l);
    std::fprintf(stderr, "\n");
    for (size_t t = 0; t < cfg.tasks.size(); ++t) {
        std::fprintf(stderr, "%-*s", int(w), cfg.tasks[t].name.c_str());
        for (int l = 0; l < cfg.depth; ++l) {
            const int k = std::min(9, std::max(0, int(p.own[t][size_t(l)] * 10.0f)));
            std::fprintf(stderr, " %c%c%c", kBuckets[k], kBuckets[k], cfg.tasks[t].route[size_t(l)] ? 'O' : 'S');
        }
        std::fprintf(stderr, "\n");
    }
}

// ------------------------------------------------------------------------------- gnuplot

std::string gnuplot_script(const ViTConfig& cfg, const Probs& p, const std::string& title, const std::string& png) {
    const int T = int(cfg.tasks.size()), D = cfg.depth;
    const int width = std::max(560, 160 + 48 * D), height = std::max(280, 160 + 50 * T);
    std::string s;
    auto line = [&](const std::string& l) { s += l + "\n"; };
    line(gp_png_terminal(width, height));
    line("set output " + gp_quote(png));
    line("set title " + gp_quote(title) + " noenhanced");
    line("set xlabel 'layer'");
    line("set ylabel 'task'");
    line("set cblabel 'p(own)'");
    line("set cbrange [0:1]");
    line("set palette defined (0 '#f7fbff', 0.5 '#6baed6', 1 '#08306b')");
    line("set xrange [-0.5:" + std::to_string(D) + "-0.5]");
    line("set yrange [" + std::to_string(T) + "-0.5:-0.5]");   // first task on top
    line("set xtics 1 out nomirror");
    std::string ytics = "set ytics out nomirror (";
    for (int t = 0; t < T; ++t) ytics += (t ? ", " : "") + gp_quote(cfg.tasks[size_t(t)].name) + " " + std::to_string(t);
    line(ytics + ")");
    line("unset key");
    line("$routes << EOD");
    for (int t = 0; t < T; ++t)
        for (int l = 0; l < D; ++l)
            line(std::to_string(l) + " " + std::to_string(t) + " " + fmt4(p.own[size_t(t)][size_t(l)]) + " " +
                 (cfg.tasks[size_t(t)].route[size_t(l)] ? "O" : "S"));
    line("EOD");
    // Labels: S/O, white on dark cells so they stay readable.
    line("plot $routes using 1:2:3 with image, "
         "$routes using 1:2:(stringcolumn(4)):($3 > 0.6 ? 0xffffff : 0x000000) with labels tc rgb variable font ',14'");
    return s;
}

// Draws into a temp PNG next to `png`; the caller commits it last.
void render_plot(AtomicPath& out, const ViTConfig& cfg, const Probs& p, const std::string& input) {
    // The file's base name keeps the title inside the picture; the full path is the user's.
    const std::string base = input.substr(input.find_last_of('/') + 1);
    run_gnuplot(gnuplot_script(cfg, p, base + ": p(own), route S shared / O own", out.tmp()), out);
}

// ------------------------------------------------------------------------------- main

int main_body(int argc, char** argv) {
    std::string input, plot, apply, output;
    std::vector<std::string> set_args;
    bool json = false, want_sharing = false, harden = false;
    po::options_description opts("options");
    opts.add_options()
        ("help,h", "show this help")
        ("supernet", po::value(&input), "Task-MoE supernet checkpoint, or '-' for stdin")
        ("json", po::bool_switch(&json), "JSON Lines instead of TSV")
        ("sharing", po::bool_switch(&want_sharing), "print the FFN layers each pair of tasks shares instead")
        ("plot", po::value(&plot), "draw the task x layer routing heatmap into this PNG (gnuplot)")
        ("harden", po::bool_switch(&harden), "print the route table of the router's argmax")
        ("set", po::value(&set_args)->composing(), "TASK:LAYER=shared|own,...: override routes (repeatable)")
        ("apply", po::value(&apply), "route table (TSV, '-' for stdin) to write into the supernet")
        ("output,o", po::value(&output), "write the supernet with the new routes here ('-' for stdout)");
    po::positional_options_description pos;
    pos.add("supernet", 1);
    po::variables_map vm;
    if (!cli::parse(argc, argv, opts, pos, vm, kUsage)) return 0;

    if (input.empty()) throw po::error("a supernet checkpoint is required");
    const bool has_set = !set_args.empty(), has_apply = vm.count("apply") > 0, has_out = vm.count("output") > 0;
    const bool edit = harden || has_set || has_apply;
    if (harden && has_apply) throw po::error("--harden and --apply both give the routes; use one");
    if (has_out && !edit) throw po::error("-o needs --apply, --set or --harden (there is nothing to change)");
    if (has_apply && !has_out) throw po::error("--apply needs -o OUT.h5");
    if (has_set && !has_out && !harden) throw po::error("--set needs -o OUT.h5 (or --harden to print the table)");
    if (edit && (json || want_sharing)) throw po::error("--json and --sharing describe the report, not a route table");
    if (has_apply && apply == "-" && input == "-") throw po::error("the supernet and the route table cannot both be stdin");
    if (vm.count("plot") && (plot.empty() || plot == "-")) throw po::error("--plot needs a file name");
    const std::vector<SetEntry> sets = parse_sets(set_args);
    cli::check_outputs({output, plot}, {input, apply});

    const std::string where = input == "-" ? "<stdin>" : input;
    LoadedCheckpoint ck = load_checkpoint(input);
    ViT& m = ck.vit();
    if (ck.kind != "supernet") fail(where, "is " + kind_phrase(ck.kind) + ", not a Task-MoE supernet");
    if (!m.cfg.is_supernet())
        fail(where, "is marked supernet but is not a Task-MoE supernet (" + std::to_string(m.cfg.tasks.size()) +
                        " tasks, " + std::to_string(m.cfg.ffn_sets) + " FFN sets per block)");
    const Probs probs = router_probs(m);

    // The routes this run describes: the stored ones, or the edited ones.
    if (harden)
        for (size_t t = 0; t < m.cfg.tasks.size(); ++t)
            m.cfg.tasks[t].route = harden_route(m.p.heads[t].router, m.cfg.depth);
    if (has_apply) {
        const std::string table_name = apply == "-" ? "<stdin>" : apply;
        apply_route_table(m.cfg, read_route_table(apply), table_name);
    }
    apply_sets(m.cfg, sets, where);

    // Everything that can fail on the input is checked; now the outputs, the plot committed last.
    std::unique_ptr<AtomicPath> png;
    if (!plot.empty()) {
        png = std::make_unique<AtomicPath>(plot);
        render_plot(*png, m.cfg, probs, where);
    }
    if (has_out) {
        Provenance prov;
        prov.tool = "ufo-route";
        prov.command = cli::command_line(argc, argv);
        // stdin cannot be read twice for a checksum, so like ufo-extract it records no parent.
        if (input != "-") {
            prov.parent = input;
            prov.parent_checksum = fnv1a_file(input);
        }
        save_checkpoint(output, "supernet", m, prov, nullptr);
    } else if (edit) {
        std::fputs(format_route_table(m.cfg).c_str(), stdout);
    } else if (want_sharing) {
        print_sharing(m.cfg, sharing(m.cfg, ffn_params_per_layer(m)), json);
    } else {
        print_layers(m.cfg, probs, json);
    }
    if (std::fflush(stdout) != 0 || std::ferror(stdout)) fail("<stdout>", "write error");
    if (png) png->commit();

    if (cli::stderr_is_tty()) draw_text_heatmap(m.cfg, probs);
    report_sharing(m.cfg, sharing(m.cfg, ffn_params_per_layer(m)));
    if (has_out && output != "-")
        std::fprintf(stderr, "ufo-route: wrote %s (routes of %zu tasks, weights unchanged)\n", output.c_str(),
                     m.cfg.tasks.size());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return cli::run("ufo-route", [&] { return main_body(argc, argv); });
}
