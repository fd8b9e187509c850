// select.cpp — best sub-network under budgets, and the predicted Pareto front.
#include "search/select.h"

#include "base/common.h"
#include "nn/elastic.h"
#include "search/space.h"

#include <omp.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>

namespace ufo {

namespace {

std::string join(const std::vector<std::string>& v) {
    std::string s;
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
    return s;
}

// Within every budget: a predicted figure's mean plus margin_sd of its standard deviations
// (exact figures have none). A NaN prediction meets none.
bool within(const FigureTable& fig, const SearchOptions& o, const Active& a) {
    for (const auto& b : o.budgets) {
        double sd = 0;
        const double v = fig.value(b.column, a, o.margin_sd > 0 ? &sd : nullptr);
        if (!(v + o.margin_sd * sd <= b.limit)) return false;
    }
    return true;
}

// The objective as a number to maximise.
double score(const FigureTable& fig, const SearchOptions& o, const Active& a) {
    const double v = fig.value(o.objective, a);
    return o.maximize ? v : -v;
}

struct Best {
    double score = -std::numeric_limits<double>::infinity();
    uint64_t index = std::numeric_limits<uint64_t>::max();
    int64_t feasible = 0;
    // Higher score wins; equal scores go to the lower index, so any thread count agrees.
    void offer(double s, uint64_t i) {
        if (s > score || (s == score && i < index)) { score = s; index = i; }
    }
};

bool use_exhaustive(const ViTConfig& cfg, const SearchOptions& o) {
    if (o.method == "exhaustive") return true;
    if (o.method == "evolution") return false;
    return space_count(cfg) <= o.exhaustive_max;
}

}  // namespace

Budget parse_budget(const std::string& text) {
    const size_t eq = text.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == text.size())
        throw UsageError("option --budget: '" + text + "' is not COLUMN=LIMIT (e.g. latency=1.2ms, params=300k)");
    Budget b;
    b.text = text;
    b.column = text.substr(0, eq);
    if (b.column == "latency") b.column = "latency_ms";
    const std::string v = text.substr(eq + 1);
    errno = 0;
    char* end = nullptr;
    double x = std::strtod(v.c_str(), &end);
    const std::string unit = end;
    if (end == v.c_str() || errno == ERANGE || !std::isfinite(x))
        throw UsageError("option --budget: '" + v + "' in '" + text + "' is not a number");
    double scale = 0;
    if (b.column == "latency_ms") {
        scale = unit.empty() || unit == "ms" ? 1.0 : unit == "us" ? 1e-3 : unit == "s" ? 1e3 : 0.0;
        if (scale == 0)
            throw UsageError("option --budget: unit '" + unit + "' in '" + text + "' is not ms, us or s");
    } else {
        scale = unit.empty() ? 1.0 : unit == "k" || unit == "K" ? 1e3 : unit == "M" ? 1e6 : unit == "G" ? 1e9 : 0.0;
        if (scale == 0)
            throw UsageError("option --budget: suffix '" + unit + "' in '" + text + "' is not k, M or G");
    }
    b.limit = x * scale;
    return b;
}

FigureTable::FigureTable(const Predictor& p) : p_(p) {
    ViTConfig c = p.cfg;
    counter_ = std::make_unique<ViT>(c);
}

std::string FigureTable::kind(const std::string& column) const {
    if (is_exact_column(column)) return "exact";
    if (p_.target_index(column) >= 0) return "predicted";
    return "";
}

std::vector<std::string> FigureTable::known() const {
    std::vector<std::string> k{"depth", "params", "mflops"};
    for (const auto& t : p_.targets) k.push_back(t.name);
    return k;
}

void FigureTable::require(const std::string& column, const std::string& option) const {
    if (kind(column).empty())
        throw UsageError("option " + option + ": '" + column + "' is neither computed (depth, params, mflops) nor " +
                         "predicted by this predictor (columns: " + join(known()) + ")");
}

double FigureTable::value(const std::string& column, const Active& a, double* sd) const {
    if (sd) *sd = 0;
    if (column == "depth") return a.depth;
    if (column == "params") return double(counter_->num_active_params(a));
    if (column == "mflops") return counter_->forward_flops(a) * 1e-6;
    const int t = p_.target_index(column);
    if (t < 0) fail("", "internal error: unknown column " + column);
    return p_.predict(t, a, sd);
}

SearchResult search_best(const FigureTable& fig, const SearchOptions& o) {
    const ViTConfig& cfg = fig.predictor().cfg;
    SearchResult r;
    if (use_exhaustive(cfg, o)) {
        const uint64_t count = space_count(cfg);
        if (count > (uint64_t(1) << 40)) fail("", "the space holds too many sub-networks for exhaustive search");
        r.method = "exhaustive";
        std::vector<Best> best(size_t(std::max(1, o.threads)));
#pragma omp parallel for num_threads(std::max(1, o.threads)) schedule(dynamic, 4096)
        for (int64_t i = 0; i < int64_t(count); ++i) {
            const Active a = arch_at(cfg, uint64_t(i));
            if (!within(fig, o, a)) continue;
            Best& b = best[size_t(omp_get_thread_num())];
            ++b.feasible;
            b.offer(score(fig, o, a), uint64_t(i));
        }
        Best all;
        all.feasible = 0;
        for (const auto& b : best) {
            all.feasible += b.feasible;
            if (b.feasible) all.offer(b.score, b.index);
        }
        r.evaluated = int64_t(count);
        r.feasible = all.feasible;
        if (all.feasible > 0) {
            r.found = true;
            r.best = arch_at(cfg, all.index);
            r.objective = fig.value(o.objective, r.best);
        }
        return r;
    }
    r.method = "evolution";
    const EvolutionResult e = evolve(
        gene_choices(cfg), [&](const Genome& g) { return score(fig, o, genome_arch(cfg, g)); },
        [&](const Genome& g) { return within(fig, o, genome_arch(cfg, g)); }, o.evolution);
    r.evaluated = e.evaluated;
    if (e.found) {
        r.found = true;
        r.best = genome_arch(cfg, e.best);
        r.objective = fig.value(o.objective, r.best);
    }
    return r;
}

std::vector<FrontPoint> pareto_front(const FigureTable& fig, const std::string& x, const SearchOptions& o, int levels,
                                     std::string* method) {
    const ViTConfig& cfg = fig.predictor().cfg;
    // index: into the space (exhaustive) or into `found` (evolution).
    struct Cand { double x, y; uint64_t index; };
    std::vector<Cand> cands;
    std::vector<Active> found;
    const bool exhaustive = use_exhaustive(cfg, o);
    if (exhaustive) {
        if (method) *method = "exhaustive";
        const uint64_t count = space_count(cfg);
        cands.resize(size_t(count));
        std::vector<char> ok(size_t(count), 0);
#pragma omp parallel for num_threads(std::max(1, o.threads)) schedule(dynamic, 4096)
        for (int64_t i = 0; i < int64_t(count); ++i) {
            const Active a = arch_at(cfg, uint64_t(i));
            if (!within(fig, o, a)) continue;
            cands[size_t(i)] = {fig.value(x, a), score(fig, o, a), uint64_t(i)};
            ok[size_t(i)] = 1;
        }
        size_t k = 0;
        for (size_t i = 0; i < cands.size(); ++i)
            if (ok[i]) cands[k++] = cands[i];
        cands.resize(k);
    } else {
        if (method) *method = "evolution";
        // One search per cost level: the best objective with x at most that level.
        const double lo = fig.value(x, smallest_arch(cfg)), hi = fig.value(x, largest_arch(cfg));
        for (int k = 0; k < levels; ++k) {
            SearchOptions lv = o;
            lv.method = "evolution";
            lv.evolution.seed = mix_seed(o.evolution.seed, uint64_t(k));
            lv.budgets.push_back({x, levels > 1 ? lo + (hi - lo) * k / (levels - 1) : hi, ""});
            const SearchResult r = search_best(fig, lv);
            if (!r.found) continue;
            cands.push_back({fig.value(x, r.best), score(fig, o, r.best), uint64_t(found.size())});
            found.push_back(r.best);
        }
    }
    // Cheapest first; at equal cost the better objective first; then a point is on the front
    // when it beats every cheaper one.
    std::sort(cands.begin(), cands.end(), [](const Cand& a, const Cand& b) {
        if (a.x != b.x) return a.x < b.x;
        if (a.y != b.y) return a.y > b.y;
        return a.index < b.index;
    });
    std::vector<FrontPoint> front;
    double best = -std::numeric_limits<double>::infinity();
    for (const auto& c : cands) {
        if (!(c.y > best)) continue;
        best = c.y;
        front.push_back({exhaustive ? arch_at(cfg, c.index) : found[size_t(c.index)], c.x, o.maximize ? c.y : -c.y});
    }
    return front;
}

}  // namespace ufo
