// arch_table.cpp — sampling and measuring sub-architectures of an elastic model.
#include "tool/arch_table.h"

#include "base/common.h"
#include "base/rng.h"
#include "layers/blas.h"
#include "nn/elastic.h"
#include "tool/bench.h"
#include "tool/cli.h"
#include "train/data_parallel.h"
#include "train/infer.h"

#include <algorithm>
#include <cmath>
#include <set>

namespace ufo {

namespace {
double median_of(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const size_t m = v.size() / 2;
    return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}
}  // namespace

std::vector<Active> sample_archs(const ViTConfig& cfg, int n, uint64_t seed) {
    if (!cfg.is_elastic()) fail("", "sampling needs an elastic model (ufo-train --elastic)");
    std::vector<Active> out{largest_arch(cfg), smallest_arch(cfg)};
    std::set<std::string> seen{format_arch(out[0]), format_arch(out[1])};
    const double space = std::pow(10.0, log10_space_size(cfg.elastic));
    if (double(n) + seen.size() > space + 0.5)
        fail("", "--sample " + std::to_string(n) + ": the elastic space holds only " + std::to_string(int64_t(space + 0.5)) +
                     " sub-networks, the largest and the smallest among them");
    Rng rng(mix_seed(seed, 0xB5A3));
    // Rejection of repeats: with at least as many sub-networks left as asked for, the expected
    // number of draws is below n * ln(space) for any space, so the cap is never reached.
    const int64_t cap = 1000 + int64_t(n) * 1000;
    for (int64_t tries = 0; int(out.size()) < n + 2 && tries < cap; ++tries) {
        Active a = sample_arch(cfg, rng);
        if (seen.insert(format_arch(a)).second) out.push_back(std::move(a));
    }
    if (int(out.size()) < n + 2) fail("", "could not draw " + std::to_string(n) + " distinct sub-networks");
    return out;
}

std::vector<Column> arch_table_columns(bool with_eval) {
    std::vector<Column> c{{"id", true},     {"arch", false},       {"depth", true},  {"params", true},
                          {"mflops", true}, {"threads", true},     {"latency_ms", true}, {"batch", true},
                          {"img_per_s", true}};
    if (with_eval) {
        c.push_back({"accuracy", true});
        c.push_back({"loss", true});
    }
    return c;
}

void arch_table(const ViT& model, const std::vector<Active>& archs, const ArchTableOptions& o, TablePrinter& out) {
    set_threads(o.threads);
    const int K = model.cfg.tasks[0].num_classes;
    // One set of buffers for all rows: sub-networks only use less of them.
    DataParallel one(model, 1, false), many(model, o.batch, false);
    // Timed as ufo-infer runs a model: packed weights. A sub-network's products read slices of
    // the model's weights, so the packed copies are bounded by the space's choices per block.
    one.pack_weights();
    many.pack_weights();
    std::vector<uint8_t> images(size_t(o.batch) * model.cfg.image_size());
    Rng rng(mix_seed(o.seed, uint64_t(o.batch)));
    for (auto& v : images) v = uint8_t(rng.next() >> 56);
    std::unique_ptr<DataParallel> eval_dp;
    if (o.eval) {
        check_fits(model.cfg, *o.eval, o.eval_path);
        if (o.eval->num_classes() != K)
            fail(o.eval_path, "has " + std::to_string(o.eval->num_classes()) + " classes, the model " + std::to_string(K));
        eval_dp = std::make_unique<DataParallel>(model, std::min<int>(o.batch, int(std::max<int64_t>(1, o.eval->n))), false);
        eval_dp->pack_weights();
    }
    // Latency and throughput are measured in rounds over the whole list, each figure the median
    // of its rounds' medians: a change of machine load during the run then shifts every row of
    // a round alike instead of the rows measured after it. With one round, rows stream out as
    // they are measured.
    const size_t n = archs.size();
    const int rounds = std::max(1, o.rounds);
    std::vector<std::vector<double>> lat(n), thr(n);
    std::vector<std::vector<std::string>> evals(n);
    cli::Progress progress("sub-networks", long(n) * rounds, "net");
    auto row_of = [&](size_t i) {
        const Active& a = archs[i];
        const double l = median_of(lat[i]), t = median_of(thr[i]);
        std::vector<std::string> row{std::to_string(i),
                                     format_arch(a),
                                     std::to_string(a.depth),
                                     std::to_string(model.num_active_params(a)),
                                     fixed_text(model.forward_flops(a) * 1e-6, 4),
                                     std::to_string(o.threads),
                                     fixed_text(l, 4),
                                     std::to_string(o.batch),
                                     fixed_text(t > 0 ? o.batch / (t * 1e-3) : 0.0, 1)};
        row.insert(row.end(), evals[i].begin(), evals[i].end());
        return row;
    };
    for (int r = 0; r < rounds; ++r)
        for (size_t i = 0; i < n; ++i) {
            const Active& a = archs[i];
            lat[i].push_back(
                bench::stats(bench::time_reps([&] { one.forward(model, images.data(), 1, a); }, o.warmup, o.reps)).median);
            thr[i].push_back(bench::stats(bench::time_reps([&] { many.forward(model, images.data(), o.batch, a); },
                                                           o.warmup, std::max(2, o.reps / 5)))
                                 .median);
            if (o.eval && r == 0) {
                const EvalResult e = evaluate(model, *eval_dp, *o.eval, a);
                evals[i] = {fixed_text(e.accuracy, 6), fixed_text(e.loss, 6)};
            }
            progress.update(long(r * n + i + 1));
            if (rounds == 1) out.add(row_of(i));
        }
    if (rounds > 1)
        for (size_t i = 0; i < n; ++i) out.add(row_of(i));
    progress.finish();
}

}  // namespace ufo
