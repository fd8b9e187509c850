// evolution.h — Once-for-All's evolutionary search over a product of categorical choices: a
// population of feasible genomes; each generation keeps the best `parent_ratio` of them as
// parents, adds `mutation_ratio` of the population as mutated parents (each gene redrawn with
// probability `mutate_prob`) and fills the rest with uniform crossovers of two parents. Children
// that break the constraint are drawn again (up to `max_tries` times). Deterministic given seed.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

namespace ufo {

using Genome = std::vector<int>;   // gene g holds a choice index in 0..choices[g]-1

struct EvolutionOptions {
    int population = 100;
    int generations = 500;
    double parent_ratio = 0.25;
    double mutation_ratio = 0.5;
    double mutate_prob = 0.1;
    int max_tries = 1000;
    uint64_t seed = 0;
};

struct EvolutionResult {
    bool found = false;    // false: no feasible genome was drawn at all
    Genome best;
    double fitness = 0;    // of best (maximised)
    int64_t evaluated = 0; // fitness calls
};

// Maximises fitness over genomes with feasible(genome) true. `choices[g]` >= 1 for each gene.
EvolutionResult evolve(const std::vector<int>& choices, const std::function<double(const Genome&)>& fitness,
                       const std::function<bool(const Genome&)>& feasible, const EvolutionOptions& o);

}  // namespace ufo
