// arch_table.h — the sampling table of an elastic model (ufo-bench --sample / --archs): for
// each sub-architecture its size, exact FLOPs, batch-1 latency and batch-B throughput on this
// machine and, given a labelled split, its accuracy. The table ufo-search fits its predictors on.
#pragma once
#include "io/dataset.h"
#include "nn/vit.h"
#include "tool/table.h"

#include <cstdint>
#include <string>
#include <vector>

namespace ufo {

// The largest and the smallest sub-network, then n distinct random ones (uniform over the
// space, none equal to another or to the two ends), fixed by seed. Fewer when the space holds
// fewer; throws when n cannot be met at all.
std::vector<Active> sample_archs(const ViTConfig& cfg, int n, uint64_t seed);

struct ArchTableOptions {
    int batch = 256;          // throughput batch
    int threads = 1;
    int reps = 20;            // batch-1 latency repetitions; throughput takes max(2, reps / 5)
    int warmup = 1;
    int rounds = 1;           // passes over the list; latency and throughput: median of rounds
    const Dataset* eval = nullptr;   // labelled split for accuracy (optional)
    std::string eval_path;           // its name, for messages
    uint64_t seed = 0;        // random input images
};

// Measures every Active and prints one row each as it completes (id, arch, depth, params,
// mflops, threads, latency_ms, batch, img_per_s, and accuracy, loss with an eval split).
void arch_table(const ViT& model, const std::vector<Active>& archs, const ArchTableOptions& o, TablePrinter& out);
std::vector<Column> arch_table_columns(bool with_eval);

}  // namespace ufo
