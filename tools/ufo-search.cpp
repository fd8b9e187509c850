// ufo-search — GP-NAS predictors of an elastic model's sub-networks (fit, cross-validated
// eval) and search with them (the best spec under budgets, the predicted Pareto front)
// (see man/ufo-search.1).
#include "base/common.h"
#include "io/atomic_file.h"
#include "io/checkpoint.h"
#include "layers/blas.h"
#include "nn/elastic.h"
#include "search/predictor.h"
#include "search/rank_metrics.h"
#include "search/select.h"
#include "search/space.h"
#include "tool/cli.h"
#include "tool/gnuplot.h"
#include "tool/table.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

namespace po = boost::program_options;
using namespace ufo;

namespace {

const char* kUsage =
    "usage: ufo-search fit TABLE -m ELASTIC.h5 -o PRED.h5 [--target accuracy,latency_ms]\n"
    "       ufo-search eval TABLE -m ELASTIC.h5 [--folds 5] [--rows N] [--target ...]\n"
    "       ufo-search select PRED.h5 --budget latency=1.2ms [--budget params=300k] [--objective accuracy]\n"
    "       ufo-search pareto PRED.h5 [--x latency_ms|params|mflops] [--plot front.png]\n"
    "       ufo-search predict PRED.h5 --archs FILE|-\n"
    "GP-NAS on the sub-networks of an elastic model. TABLE is a sampling table (ufo-bench -m ELASTIC.h5\n"
    "--sample N --eval VAL.h5: TSV or JSON Lines, '-' for stdin) with an arch column of specs.\n"
    "  fit     one predictor per target column (a least-squares linear mean plus a Gaussian process\n"
    "          on its residual, kernel exp(-|x-x'|/l), l and noise by marginal likelihood) -> PRED.h5\n"
    "  eval    k-fold cross-validation: Kendall tau, Spearman rho and RMSE of GP-NAS and of the\n"
    "          plain linear model\n"
    "  select  the sub-network with the best predicted objective within the budgets: its spec on\n"
    "          stdout (pipe it into ufo-extract ELASTIC.h5 --arch -), its figures on stderr\n"
    "  pareto  the predicted Pareto front of the objective against a cost, as a table\n"
    "  predict the figures of listed sub-networks (specs, or a table's arch column)\n"
    "'ufo-search COMMAND --help' lists the options of one command.";

// ---------------------------------------------------------------------------- shared options

std::vector<std::string> split_names(const std::string& s) {
    std::vector<std::string> out;
    for (const auto& t : cli::split(s, ','))
        if (!t.empty()) out.push_back(t);
    return out;
}

// --target: the columns to predict; default accuracy and latency_ms where the table has them.
std::vector<std::string> targets_of(const po::variables_map& vm, const MeasuredTable& t) {
    std::vector<std::string> names;
    if (vm.count("target")) {
        names = split_names(vm["target"].as<std::string>());
        if (names.empty()) throw po::error("option --target: empty list");
        for (const auto& n : names) {
            if (n == "arch" || n == "id") throw po::error("option --target: '" + n + "' is not a measured figure");
            if (is_exact_column(n))
                throw po::error("option --target: " + n + " is computed exactly from the spec; it needs no predictor");
            t.numbers(n);   // fails naming the file when the column is missing or not numeric
        }
    } else {
        for (const char* n : {"accuracy", "latency_ms"})
            if (t.column(n) >= 0) names.push_back(n);
        if (names.empty())
            fail(t.where, "has neither an accuracy nor a latency_ms column; name the columns to predict with --target");
    }
    for (size_t i = 0; i < names.size(); ++i)
        for (size_t j = 0; j < i; ++j)
            if (names[i] == names[j]) throw po::error("option --target: '" + names[i] + "' is given twice");
    return names;
}

void add_model_options(po::options_description& o) {
    o.add_options()
        ("model,m", po::value<std::string>(), "the elastic checkpoint the table measures (its search space)")
        ("target", po::value<std::string>(), "columns to predict, comma-separated (default: accuracy,latency_ms)")
        ("linear", po::bool_switch(), "fit the plain linear model only (no Gaussian process)")
        ("criterion", po::value<std::string>()->default_value("marginal"),
         "how l and the noise are fitted: marginal (likelihood) or loo (leave-one-out predictive likelihood)")
        ("length-scale", po::value<double>(), "fixed kernel length scale l instead of fitting it")
        ("noise", po::value<double>(), "fixed noise (fraction of the signal variance); with --length-scale");
}

GPNASOptions gpnas_options(const po::variables_map& vm) {
    GPNASOptions o;
    o.gp = !vm["linear"].as<bool>();
    const std::string c = vm["criterion"].as<std::string>();
    if (c != "marginal" && c != "loo") throw po::error("option --criterion: '" + c + "' is not marginal or loo");
    o.criterion = c == "loo" ? HyperCriterion::loo : HyperCriterion::marginal;
    if (!vm["criterion"].defaulted() && vm.count("length-scale"))
        throw po::error("--criterion fits l and the noise, which --length-scale and --noise fix");
    const bool l = vm.count("length-scale"), g = vm.count("noise");
    if (l != g) throw po::error("give --length-scale and --noise together (or neither, to fit them)");
    if (l) {
        if (!o.gp) throw po::error("--length-scale and --noise set the Gaussian process, which --linear leaves out");
        o.fit_hyper = false;
        o.fixed.length = vm["length-scale"].as<double>();
        o.fixed.noise = vm["noise"].as<double>();
        if (!(o.fixed.length > 0) || !std::isfinite(o.fixed.length))
            throw po::error("option --length-scale must be a positive number");
        if (!(o.fixed.noise >= 0) || !std::isfinite(o.fixed.noise))
            throw po::error("option --noise must be a non-negative number");
    }
    return o;
}

struct ModelInput {
    ViTConfig cfg;
    std::string path;
    uint64_t checksum = 0;
};

ModelInput elastic_model(const po::variables_map& vm) {
    if (!vm.count("model")) throw po::error("-m ELASTIC.h5 (the elastic model the table measures) is required");
    ModelInput m;
    m.path = vm["model"].as<std::string>();
    if (m.path == "-") throw po::error("-m - is not supported here: the table may come from stdin; name the model file");
    m.cfg = read_architecture(m.path);
    if (!m.cfg.is_elastic())
        fail(m.path, "is not an elastic model (train one with ufo-train --elastic)");
    m.checksum = fnv1a_file(m.path);
    return m;
}

void add_format_options(po::options_description& o, const char* deflt) {
    o.add_options()
        ("format", po::value<std::string>()->default_value(deflt), "tsv, csv, md, json or jsonl")
        ("json", po::bool_switch(), "same as --format jsonl");
}

TableFormat format_of(const po::variables_map& vm) {
    return parse_table_format(vm["json"].as<bool>() ? "jsonl" : vm["format"].as<std::string>());
}

std::string num(double x, int digits) { return fixed_text(x, digits); }

// Significant digits for predictions, whatever their scale (accuracy 0.83, latency 1.2, loss 0.4).
std::string sig(double x) {
    char b[32];
    std::snprintf(b, sizeof b, "%.6g", x);
    return b;
}

void flush_stdout() {
    std::cout.flush();
    if (!std::cout) fail("<stdout>", "write error");
}

bool parse_sub(int argc, char** argv, po::options_description& opts, const char* usage, po::variables_map& vm,
               const char* positional) {
    opts.add_options()("help,h", "show this help");
    opts.add_options()(positional, po::value<std::string>(), "input (positional)");
    po::positional_options_description pos;
    pos.add(positional, 1);
    return cli::parse(argc, argv, opts, pos, vm, usage);
}

std::string input_of(const po::variables_map& vm, const char* positional, const char* what) {
    if (!vm.count(positional)) throw po::error(std::string(what) + " is required");
    return vm[positional].as<std::string>();
}

// ---------------------------------------------------------------------------- fit

int cmd_fit(int argc, char** argv, const std::string& command) {
    po::options_description opts("ufo-search fit options");
    add_model_options(opts);
    opts.add_options()("output,o", po::value<std::string>(), "predictor file to write (HDF5)");
    add_format_options(opts, "tsv");
    po::variables_map vm;
    if (!parse_sub(argc, argv, opts,
                   "usage: ufo-search fit TABLE -m ELASTIC.h5 -o PRED.h5 [--target COLS] [--linear]\n"
                   "                      [--length-scale L --noise G] [--format tsv|csv|md|json|jsonl | --json]\n"
                   "Fits one GP-NAS predictor per target column on every row of TABLE ('-' = stdin) and writes\n"
                   "them to PRED.h5 with the model's search space. Prints one row per target.",
                   vm, "table"))
        return 0;
    const std::string table_path = input_of(vm, "table", "a measured TABLE");
    if (!vm.count("output")) throw po::error("-o PRED.h5 is required");
    const std::string out = vm["output"].as<std::string>();
    if (out == "-") throw po::error("-o - is not supported: an HDF5 predictor cannot be written to stdout; name a file");
    const GPNASOptions go = gpnas_options(vm);
    const TableFormat fmt = format_of(vm);
    const std::string model_arg = vm.count("model") ? vm["model"].as<std::string>() : "";
    cli::check_outputs({out}, {table_path, model_arg});
    { AtomicPath probe(out); }   // a missing output directory fails before any work
    const ModelInput model = elastic_model(vm);
    const MeasuredTable table = read_measured_table(table_path);
    const std::vector<std::string> targets = targets_of(vm, table);

    Predictor p = fit_predictor(table, model.cfg, targets, go);
    p.model_path = model.path;
    p.model_checksum = model.checksum;
    p.table_path = table.where;
    p.command = command;
    save_predictor(out, p);

    TablePrinter tp(std::cout, fmt,
                    {{"target", false}, {"model", false}, {"rows", true}, {"fitted_by", false}, {"length_scale", true},
                     {"noise", true}, {"log_marginal_likelihood", true}, {"fit_rmse", true}});
    for (const auto& t : p.targets) {
        std::vector<double> fitted;
        for (int i = 0; i < p.n(); ++i) fitted.push_back(t.model.predict(p.X.data() + size_t(i) * p.d()));
        const GPNASModel& m = t.model;
        tp.add({t.name, m.has_gp ? "gp-nas" : "linear", std::to_string(p.n()), m.fitted_by,
                m.has_gp ? sig(m.gp.hyper.length) : "",
                m.has_gp ? sig(m.gp.hyper.noise) : "", m.has_gp ? num(m.log_ml, 3) : "", sig(rmse(fitted, t.y))});
    }
    tp.finish();
    flush_stdout();
    std::fprintf(stderr, "ufo-search: wrote %s (%d sub-networks, %zu targets)\n", out.c_str(), p.n(), p.targets.size());
    return 0;
}

// ---------------------------------------------------------------------------- eval

int cmd_eval(int argc, char** argv) {
    po::options_description opts("ufo-search eval options");
    add_model_options(opts);
    opts.add_options()
        ("folds,k", po::value<int>()->default_value(5), "number of folds")
        ("rows", po::value<int>(), "use the first N rows of the table only")
        ("seed", po::value<std::string>()->default_value("0"), "seed of the fold assignment");
    add_format_options(opts, "tsv");
    po::variables_map vm;
    if (!parse_sub(argc, argv, opts,
                   "usage: ufo-search eval TABLE -m ELASTIC.h5 [--folds 5] [--rows N] [--seed S] [--target COLS]\n"
                   "                       [--length-scale L --noise G] [--format tsv|csv|md|json|jsonl | --json]\n"
                   "k-fold cross-validation on the rows of TABLE: every row is predicted by models fitted on\n"
                   "the other folds; Kendall tau-b, Spearman rho and RMSE over all rows, for GP-NAS and for the\n"
                   "plain linear model (least squares on the same features).",
                   vm, "table"))
        return 0;
    const std::string table_path = input_of(vm, "table", "a measured TABLE");
    const GPNASOptions go = gpnas_options(vm);
    const TableFormat fmt = format_of(vm);
    const int folds = vm["folds"].as<int>();
    if (folds < 2) throw po::error("option --folds must be at least 2");
    const uint64_t seed = cli::seed(vm["seed"].as<std::string>());
    const ModelInput model = elastic_model(vm);
    MeasuredTable table = read_measured_table(table_path);
    if (vm.count("rows")) {
        const int r = vm["rows"].as<int>();
        if (r < 1) throw po::error("option --rows must be positive");
        if (r > int(table.rows.size()))
            fail(table.where, "has " + std::to_string(table.rows.size()) + " rows, fewer than --rows " + std::to_string(r));
        table.rows.resize(size_t(r));
        table.lines.resize(size_t(r));
    }
    const int n = int(table.rows.size());
    if (n < 2 * folds)
        fail(table.where, std::to_string(n) + " rows are too few for " + std::to_string(folds) +
                              "-fold cross-validation (at least " + std::to_string(2 * folds) + " are needed)");
    const std::vector<std::string> targets = targets_of(vm, table);
    const std::vector<Active> archs = table_archs(table, model.cfg);
    const int d = feature_count(model.cfg);
    std::vector<double> X(size_t(n) * d);
    for (int i = 0; i < n; ++i) encode_arch(model.cfg, archs[size_t(i)], X.data() + size_t(i) * d);

    TablePrinter tp(std::cout, fmt,
                    {{"target", false}, {"model", false}, {"rows", true}, {"folds", true}, {"kendall_tau", true},
                     {"spearman_rho", true}, {"rmse", true}});
    GPNASOptions linear = go;
    linear.gp = false;
    for (const auto& name : targets) {
        const std::vector<double> y = table.numbers(name);
        std::vector<std::pair<std::string, GPNASOptions>> models;
        if (go.gp) models.push_back({"gp-nas", go});
        models.push_back({"linear", linear});
        for (const auto& [label, o] : models) {
            const std::vector<double> pred = cross_validate(X, n, d, y, folds, seed, o);
            tp.add({name, label, std::to_string(n), std::to_string(folds), num(kendall_tau(pred, y), 4),
                    num(spearman_rho(pred, y), 4), sig(rmse(pred, y))});
        }
    }
    tp.finish();
    flush_stdout();
    return 0;
}

// ---------------------------------------------------------------------------- select / pareto

void add_search_options(po::options_description& o) {
    o.add_options()
        ("budget", po::value<std::vector<std::string>>()->composing(),
         "COLUMN=LIMIT, an upper limit (repeatable): latency=1.2ms, params=300k, mflops=40, any target")
        ("margin-sd", po::value<double>()->default_value(0.0),
         "a predicted figure meets a budget when its mean plus Z standard deviations does (default 0)")
        ("objective", po::value<std::string>()->default_value("accuracy"), "the figure to optimise")
        ("maximize", po::bool_switch(), "maximise the objective (the default for accuracy and img_per_s)")
        ("minimize", po::bool_switch(), "minimise the objective (the default for any other column)")
        ("method", po::value<std::string>()->default_value("auto"),
         "auto (exhaustive up to --exhaustive-max sub-networks, else evolution), exhaustive or evolution")
        ("exhaustive-max", po::value<uint64_t>()->default_value(2000000), "largest space searched exhaustively")
        ("population", po::value<int>()->default_value(100), "evolution: population size")
        ("generations", po::value<int>()->default_value(500), "evolution: generations")
        ("parent-ratio", po::value<double>()->default_value(0.25), "evolution: share of the population kept as parents")
        ("mutation-ratio", po::value<double>()->default_value(0.5), "evolution: share of children made by mutation")
        ("mutate-prob", po::value<double>()->default_value(0.1), "evolution: probability that a mutation redraws a gene")
        ("seed", po::value<std::string>()->default_value("0"), "seed of the evolutionary search")
        ("threads,t", po::value<int>()->default_value(0), "threads (0: OMP_NUM_THREADS or all cores)");
}

SearchOptions search_options(const po::variables_map& vm, const FigureTable& fig) {
    SearchOptions o;
    o.objective = vm["objective"].as<std::string>();
    if (o.objective == "latency") o.objective = "latency_ms";
    fig.require(o.objective, "--objective");
    const bool mx = vm["maximize"].as<bool>(), mn = vm["minimize"].as<bool>();
    if (mx && mn) throw po::error("give --maximize or --minimize, not both");
    o.maximize = mx || (!mn && (o.objective == "accuracy" || o.objective == "img_per_s"));
    if (vm.count("budget"))
        for (const auto& b : vm["budget"].as<std::vector<std::string>>()) {
            o.budgets.push_back(parse_budget(b));
            fig.require(o.budgets.back().column, "--budget");
        }
    o.margin_sd = vm["margin-sd"].as<double>();
    if (!(o.margin_sd >= 0 && o.margin_sd <= 100)) throw po::error("option --margin-sd must be within 0..100");
    o.method = vm["method"].as<std::string>();
    if (o.method != "auto" && o.method != "exhaustive" && o.method != "evolution")
        throw po::error("option --method: '" + o.method + "' is not auto, exhaustive or evolution");
    o.exhaustive_max = vm["exhaustive-max"].as<uint64_t>();
    if (o.method == "exhaustive" && space_count(fig.predictor().cfg) > (uint64_t(1) << 32))
        throw po::error("--method exhaustive: the space holds more than 2^32 sub-networks; use evolution");
    EvolutionOptions& e = o.evolution;
    e.population = vm["population"].as<int>();
    e.generations = vm["generations"].as<int>();
    e.parent_ratio = vm["parent-ratio"].as<double>();
    e.mutation_ratio = vm["mutation-ratio"].as<double>();
    e.mutate_prob = vm["mutate-prob"].as<double>();
    e.seed = cli::seed(vm["seed"].as<std::string>());
    if (e.population < 2 || e.population > 100000) throw po::error("option --population must be within 2..100000");
    if (e.generations < 0 || e.generations > 1000000) throw po::error("option --generations must be within 0..1000000");
    if (!(e.parent_ratio > 0 && e.parent_ratio <= 1)) throw po::error("option --parent-ratio must be in (0, 1]");
    if (!(e.mutation_ratio >= 0 && e.mutation_ratio <= 1)) throw po::error("option --mutation-ratio must be in [0, 1]");
    if (!(e.mutate_prob >= 0 && e.mutate_prob <= 1)) throw po::error("option --mutate-prob must be in [0, 1]");
    const int t = vm["threads"].as<int>();
    if (t < 0) throw po::error("option --threads must not be negative");
    if (t > 0) set_threads(t);
    o.threads = get_threads();
    return o;
}

std::string budget_text(const std::vector<Budget>& b) {
    std::string s;
    for (size_t i = 0; i < b.size(); ++i) s += (i ? ", " : "") + b[i].column + " <= " + sig(b[i].limit);
    return s.empty() ? "no budget" : s;
}

// Columns of a sub-network's figures: exact ones, then each target with its sd.
std::vector<Column> figure_columns(const Predictor& p) {
    std::vector<Column> c{{"arch", false}, {"depth", true}, {"params", true}, {"mflops", true}};
    for (const auto& t : p.targets) {
        c.push_back({t.name, true});
        c.push_back({t.name + "_sd", true});
    }
    return c;
}

std::vector<std::string> figure_cells(const FigureTable& fig, const Active& a) {
    std::vector<std::string> c{format_arch(a), std::to_string(a.depth), num(fig.value("params", a), 0),
                               num(fig.value("mflops", a), 4)};
    for (const auto& t : fig.predictor().targets) {
        double sd = 0;
        const double v = fig.value(t.name, a, &sd);
        c.push_back(sig(v));
        c.push_back(sig(sd));
    }
    return c;
}

[[noreturn]] void unmeetable(const FigureTable& fig, const SearchOptions& o, const std::string& where) {
    const Active small = smallest_arch(fig.predictor().cfg);
    std::string at;
    for (const auto& b : o.budgets)
        at += (at.empty() ? "" : ", ") + b.column + " " + sig(fig.value(b.column, small));
    fail(where, "no sub-network meets the budget (" + budget_text(o.budgets) + "); the smallest, " + format_arch(small) +
                    ", has " + at);
}

int cmd_select(int argc, char** argv) {
    po::options_description opts("ufo-search select options");
    add_search_options(opts);
    opts.add_options()("json", po::bool_switch(), "print one JSON object (spec, figures, search) on stdout instead");
    po::variables_map vm;
    if (!parse_sub(argc, argv, opts,
                   "usage: ufo-search select PRED.h5 --budget latency=1.2ms [--budget params=300k]\n"
                   "                         [--objective accuracy] [--method auto|exhaustive|evolution] [--json]\n"
                   "The sub-network with the best predicted objective within every budget. Prints its spec on\n"
                   "stdout (ufo-search select ... | ufo-extract ELASTIC.h5 --arch - -o SUB.h5) and its figures\n"
                   "on stderr; with --json one JSON object on stdout.",
                   vm, "predictor"))
        return 0;
    const std::string path = input_of(vm, "predictor", "a predictor file (from ufo-search fit)");
    const Predictor p = load_predictor(path);
    const FigureTable fig(p);
    const SearchOptions o = search_options(vm, fig);
    const SearchResult r = search_best(fig, o);
    if (!r.found) unmeetable(fig, o, path);

    nlohmann::ordered_json j;
    j["arch"] = format_arch(r.best);
    j["objective"] = o.objective;
    j["maximize"] = o.maximize;
    j["method"] = r.method;
    j["evaluated"] = r.evaluated;
    if (r.feasible >= 0) j["within_budget"] = r.feasible;
    nlohmann::ordered_json budgets = nlohmann::ordered_json::object();
    for (const auto& b : o.budgets) budgets[b.column] = b.limit;
    j["budget"] = budgets;
    j["depth"] = r.best.depth;
    j["params"] = int64_t(fig.value("params", r.best));
    j["mflops"] = fig.value("mflops", r.best);
    std::string figures;
    for (const auto& t : p.targets) {
        double sd = 0;
        const double v = fig.value(t.name, r.best, &sd);
        j[t.name] = v;
        j[t.name + "_sd"] = sd;
        figures += ", " + t.name + " " + sig(v) + " +- " + sig(sd);
    }
    if (vm["json"].as<bool>())
        std::cout << j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
    else
        std::cout << format_arch(r.best) << "\n";
    flush_stdout();
    std::fprintf(stderr, "ufo-search: %s of %lld sub-networks%s, %s: predicted%s; params %lld, mflops %s\n",
                 r.method.c_str(), (long long)r.evaluated,
                 r.feasible >= 0 ? (" (" + std::to_string(r.feasible) + " within the budget)").c_str() : "",
                 budget_text(o.budgets).c_str(), figures.c_str(), (long long)fig.value("params", r.best),
                 num(fig.value("mflops", r.best), 3).c_str());
    return 0;
}

// The plot: measured sub-networks (the predictor's training rows) over the predicted front.
std::string pareto_script(const FigureTable& fig, const std::string& x, const SearchOptions& o,
                          const std::vector<FrontPoint>& front, const std::string& png, const std::string& title) {
    const Predictor& p = fig.predictor();
    std::string s;
    auto line = [&](const std::string& l) { s += l + "\n"; };
    line(gp_png_terminal(900, 600));
    line("set output " + gp_quote(png));
    line("set title " + gp_quote(title) + " noenhanced");
    line("set xlabel " + gp_quote(x));
    line("set ylabel " + gp_quote(o.objective));
    line("set grid");
    line("set key bottom right");
    line("$front << EOD");
    for (const auto& f : front) line(sig(f.x) + " " + sig(f.y));
    line("EOD");
    const int tx = p.target_index(x), ty = p.target_index(o.objective);
    const bool measured = ty >= 0;
    if (measured) {
        line("$measured << EOD");
        for (int i = 0; i < p.n(); ++i) {
            const Active a = parse_arch(p.archs[size_t(i)], p.cfg, "");
            const double mx = tx >= 0 ? p.targets[size_t(tx)].y[size_t(i)] : fig.value(x, a);
            line(sig(mx) + " " + sig(p.targets[size_t(ty)].y[size_t(i)]));
        }
        line("EOD");
    }
    std::string plot = "plot $front using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#1f77b4' title 'predicted front'";
    if (measured) plot += ", $measured using 1:2 with points pt 6 ps 1.2 lc rgb '#d62728' title 'measured'";
    line(plot);
    return s;
}

int cmd_pareto(int argc, char** argv) {
    po::options_description opts("ufo-search pareto options");
    add_search_options(opts);
    opts.add_options()
        ("x", po::value<std::string>(), "the cost axis: latency_ms (default where predicted), params or mflops")
        ("points", po::value<int>()->default_value(20), "evolution: number of cost levels searched")
        ("plot", po::value<std::string>(), "also draw the front and the measured points to this PNG (gnuplot)");
    add_format_options(opts, "tsv");
    po::variables_map vm;
    if (!parse_sub(argc, argv, opts,
                   "usage: ufo-search pareto PRED.h5 [--x latency_ms|params|mflops] [--objective accuracy]\n"
                   "                         [--budget COLUMN=LIMIT]... [--plot front.png] [--format ... | --json]\n"
                   "The predicted Pareto front: every sub-network that no other beats on both the cost and the\n"
                   "objective, cheapest first, with its exact and predicted figures.",
                   vm, "predictor"))
        return 0;
    const std::string path = input_of(vm, "predictor", "a predictor file (from ufo-search fit)");
    const TableFormat fmt = format_of(vm);
    const std::string plot = vm.count("plot") ? vm["plot"].as<std::string>() : "";
    const int points = vm["points"].as<int>();
    if (points < 2 || points > 1000) throw po::error("option --points must be within 2..1000");
    if (!plot.empty()) {
        if (plot == "-") throw po::error("--plot - is not supported: name a PNG file");
        cli::check_outputs({plot}, {path});
        AtomicPath probe(plot);
    }
    const Predictor p = load_predictor(path);
    const FigureTable fig(p);
    const SearchOptions o = search_options(vm, fig);
    std::string x = vm.count("x") ? vm["x"].as<std::string>() : p.target_index("latency_ms") >= 0 ? "latency_ms" : "params";
    if (x == "latency") x = "latency_ms";
    fig.require(x, "--x");
    if (x == o.objective) throw po::error("--x and --objective name the same column '" + x + "'");
    std::string method;
    const std::vector<FrontPoint> front = pareto_front(fig, x, o, points, &method);
    if (front.empty()) unmeetable(fig, o, path);

    TablePrinter tp(std::cout, fmt, figure_columns(p));
    for (const auto& f : front) tp.add(figure_cells(fig, f.arch));
    tp.finish();
    flush_stdout();
    if (!plot.empty()) {
        AtomicPath out(plot);
        const std::string base = path.substr(path.find_last_of('/') + 1);
        run_gnuplot(pareto_script(fig, x, o, front, out.tmp(), base + ": predicted front (" + method + ") and measured"),
                    out);
        out.commit();
    }
    std::fprintf(stderr, "ufo-search: %zu sub-networks on the front (%s)\n", front.size(), method.c_str());
    return 0;
}

// ---------------------------------------------------------------------------- predict

int cmd_predict(int argc, char** argv) {
    po::options_description opts("ufo-search predict options");
    opts.add_options()("archs", po::value<std::string>(), "specs to predict, one per line, or a sampling table; '-' = stdin");
    add_format_options(opts, "tsv");
    po::variables_map vm;
    if (!parse_sub(argc, argv, opts,
                   "usage: ufo-search predict PRED.h5 --archs FILE|- [--format tsv|csv|md|json|jsonl | --json]\n"
                   "Predicts the listed sub-networks: one row each with its exact size and FLOPs and every\n"
                   "target's prediction and standard deviation. FILE holds one spec per line, or is a table\n"
                   "with an arch column (a sampling table: compare predictions with its measurements).",
                   vm, "predictor"))
        return 0;
    const std::string path = input_of(vm, "predictor", "a predictor file (from ufo-search fit)");
    if (!vm.count("archs")) throw po::error("--archs FILE|- is required");
    const std::string archs_path = vm["archs"].as<std::string>();
    const TableFormat fmt = format_of(vm);
    const Predictor p = load_predictor(path);
    const FigureTable fig(p);
    const std::string where = archs_path == "-" ? "<stdin>" : archs_path;
    std::vector<Active> archs;
    for (const auto& spec : cli::read_specs(archs_path, size_t(1) << 20)) archs.push_back(parse_arch(spec, p.cfg, where));
    TablePrinter tp(std::cout, fmt, figure_columns(p));
    for (const auto& a : archs) tp.add(figure_cells(fig, a));
    tp.finish();
    flush_stdout();
    return 0;
}

int main_body(int argc, char** argv) {
    const std::string command = cli::command_line(argc, argv);
    const std::string sub = argc > 1 ? argv[1] : "";
    if (sub.empty()) throw po::error("a command is required (fit, eval, select, pareto or predict)");
    if (sub == "-h" || sub == "--help") {
        std::cout << kUsage << "\n";
        return 0;
    }
    // The sub-command's own parser sees argv without it.
    if (sub == "fit") return cmd_fit(argc - 1, argv + 1, command);
    if (sub == "eval") return cmd_eval(argc - 1, argv + 1);
    if (sub == "select") return cmd_select(argc - 1, argv + 1);
    if (sub == "pareto") return cmd_pareto(argc - 1, argv + 1);
    if (sub == "predict") return cmd_predict(argc - 1, argv + 1);
    throw po::error("unknown command '" + sub + "' (fit, eval, select, pareto, predict)");
}

}  // namespace

int main(int argc, char** argv) { return cli::run("ufo-search", [&] { return main_body(argc, argv); }); }
