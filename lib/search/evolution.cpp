// evolution.cpp — evolutionary search with a constraint (Once-for-All's settings by default).
#include "search/evolution.h"

#include "base/common.h"
#include "base/rng.h"

#include <algorithm>
#include <numeric>

namespace ufo {

namespace {

struct Member {
    Genome g;
    double fitness;
};

Genome random_genome(const std::vector<int>& choices, Rng& rng) {
    Genome g(choices.size());
    for (size_t i = 0; i < choices.size(); ++i) g[i] = int(rng.below(uint64_t(choices[i])));
    return g;
}

}  // namespace

EvolutionResult evolve(const std::vector<int>& choices, const std::function<double(const Genome&)>& fitness,
                       const std::function<bool(const Genome&)>& feasible, const EvolutionOptions& o) {
    if (o.population < 2 || o.generations < 0 || !(o.parent_ratio > 0 && o.parent_ratio <= 1) ||
        !(o.mutation_ratio >= 0 && o.mutation_ratio <= 1) || !(o.mutate_prob >= 0 && o.mutate_prob <= 1) ||
        o.max_tries < 1)
        fail("", "internal error: bad evolution settings");
    for (int c : choices)
        if (c < 1) fail("", "internal error: a gene without choices");
    Rng rng(mix_seed(o.seed, 0x45564F4C5645));
    EvolutionResult res;
    auto add = [&](std::vector<Member>& pop, Genome g) {
        const double f = fitness(g);
        ++res.evaluated;
        if (!res.found || f > res.fitness) { res.found = true; res.fitness = f; res.best = g; }
        pop.push_back({std::move(g), f});
    };

    // Initial population: random feasible genomes. A constraint that nothing in max_tries ×
    // population draws meets ends the search with found = false.
    std::vector<Member> pop;
    long misses = 0;
    const long max_misses = long(o.max_tries) * o.population;
    while (int(pop.size()) < o.population && misses < max_misses) {
        Genome g = random_genome(choices, rng);
        if (feasible(g)) add(pop, std::move(g));
        else ++misses;
    }
    if (pop.empty()) return res;

    const int n_parents = std::max(1, int(o.parent_ratio * o.population + 0.5));
    const int n_mutate = int(o.mutation_ratio * o.population + 0.5);
    for (int gen = 0; gen < o.generations; ++gen) {
        // Best first; equal fitness keeps the older member first (stable), for determinism.
        std::stable_sort(pop.begin(), pop.end(), [](const Member& a, const Member& b) { return a.fitness > b.fitness; });
        pop.resize(std::min(pop.size(), size_t(n_parents)));
        const std::vector<Member> parents = pop;
        const size_t np = parents.size();
        for (int i = 0; i < n_mutate; ++i) {
            for (int t = 0; t < o.max_tries; ++t) {
                Genome g = parents[rng.below(np)].g;
                for (size_t k = 0; k < g.size(); ++k)
                    if (rng.uniform() < o.mutate_prob) g[k] = int(rng.below(uint64_t(choices[k])));
                if (feasible(g)) { add(pop, std::move(g)); break; }
            }
        }
        while (int(pop.size()) < o.population) {
            bool added = false;
            for (int t = 0; t < o.max_tries && !added; ++t) {
                const Genome& a = parents[rng.below(np)].g;
                const Genome& b = parents[rng.below(np)].g;
                Genome g(a.size());
                for (size_t k = 0; k < g.size(); ++k) g[k] = rng.below(2) ? a[k] : b[k];
                if (feasible(g)) { add(pop, std::move(g)); added = true; }
            }
            // Parents are feasible: a crossover of a parent with itself always is. Stop filling
            // rather than loop when the constraint rejects everything else.
            if (!added) break;
        }
    }
    return res;
}

}  // namespace ufo
