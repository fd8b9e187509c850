// select.h — search an elastic model's space with a predictor: the best sub-network under
// budgets (exhaustively when the space is small enough, else by evolution), and the predicted
// Pareto front of an objective against a cost.
//
// A figure of a sub-network is exact (depth, params, mflops: computed from the spec) or
// predicted (any target of the predictor, e.g. accuracy, latency_ms).
#pragma once
#include "nn/vit.h"
#include "search/evolution.h"
#include "search/predictor.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ufo {

// An upper limit on one figure: "latency=1.2ms" (latency means latency_ms; ms, us or s),
// "params=300k" (k, M, G), "mflops=40". Usage errors name --budget.
struct Budget {
    std::string column;
    double limit = 0;
    std::string text;     // as given
};
Budget parse_budget(const std::string& text);

// The figures of sub-networks of one predictor's model, for search and printing.
class FigureTable {
public:
    explicit FigureTable(const Predictor& p);
    // Exact figure, predicted target or "" (unknown): "exact", "predicted", "".
    std::string kind(const std::string& column) const;
    // Usage error (exit 2) naming `option` unless the column is known, listing the known ones.
    void require(const std::string& column, const std::string& option) const;
    // The value of a column (a prediction's mean); sd receives 0 for exact figures.
    double value(const std::string& column, const Active& a, double* sd = nullptr) const;
    std::vector<std::string> known() const;   // depth, params, mflops, then the targets
    const Predictor& predictor() const { return p_; }

private:
    const Predictor& p_;
    std::unique_ptr<ViT> counter_;   // the model with zero weights: parameter and FLOP counts
};

struct SearchOptions {
    std::string objective = "accuracy";
    bool maximize = true;
    std::vector<Budget> budgets;
    double margin_sd = 0;                 // budgets hold for mean + margin_sd · sd of a prediction
    std::string method = "auto";          // auto, exhaustive, evolution
    uint64_t exhaustive_max = 2000000;    // auto: exhaustive up to this many sub-networks
    EvolutionOptions evolution;
    int threads = 1;
};

struct SearchResult {
    bool found = false;
    Active best;
    double objective = 0;
    std::string method;                   // exhaustive or evolution
    int64_t evaluated = 0;                // sub-networks whose figures were computed
    int64_t feasible = -1;                // within every budget (exhaustive only; -1 unknown)
};

SearchResult search_best(const FigureTable& fig, const SearchOptions& o);

struct FrontPoint {
    Active arch;
    double x = 0, y = 0;   // cost and objective
};

// The predicted Pareto front: the sub-networks no other beats on both cost `x` (lower is
// better) and the objective, within the budgets, sorted by cost. Exhaustive where the space is
// small enough; else one evolutionary search per cost level (`levels` of them, evenly spaced
// between the smallest and the largest sub-network's cost).
std::vector<FrontPoint> pareto_front(const FigureTable& fig, const std::string& x, const SearchOptions& o, int levels,
                                     std::string* method);

}  // namespace ufo
