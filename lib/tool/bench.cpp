// bench.cpp — statistics, timing loop and the result rows of bench.h (printed by table.h).
#include "tool/bench.h"
#include "base/common.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ostream>

namespace ufo::bench {

Stats stats(std::vector<double> xs) {
    Stats s;
    s.n = int(xs.size());
    if (xs.empty()) return s;
    std::sort(xs.begin(), xs.end());
    size_t n = xs.size();
    s.median = n % 2 ? xs[n / 2] : 0.5 * (xs[n / 2 - 1] + xs[n / 2]);
    s.min = xs.front();
    s.max = xs.back();
    double sum = 0;
    for (double x : xs) sum += x;
    s.mean = sum / double(n);
    // Two-pass: the sums of squares of nearly equal timings cancel badly in one pass.
    double ss = 0;
    for (double x : xs) ss += (x - s.mean) * (x - s.mean);
    s.std = n > 1 ? std::sqrt(ss / double(n - 1)) : 0.0;
    return s;
}

std::vector<double> time_reps(const std::function<void()>& fn, int warmup, int reps) {
    using clock = std::chrono::steady_clock;
    for (int i = 0; i < warmup; ++i) fn();
    std::vector<double> ms;
    ms.reserve(size_t(std::max(reps, 0)));
    for (int i = 0; i < reps; ++i) {
        auto t0 = clock::now();
        fn();
        auto t1 = clock::now();
        ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
    return ms;
}

Row make_row(std::string model, std::string mode, int batch, int threads,
             const std::vector<double>& ms, double flops_per_batch, int64_t params) {
    Stats s = stats(ms);
    Row r;
    r.model = std::move(model);
    r.mode = std::move(mode);
    r.batch = batch;
    r.threads = threads;
    r.reps = s.n;
    r.median_ms = s.median;
    r.mean_ms = s.mean;
    r.std_ms = s.std;
    r.min_ms = s.min;
    // Throughput from the median: one descheduled rep on a shared machine should not move it.
    if (s.median > 0) {
        r.img_per_s = batch / (s.median * 1e-3);
        r.gflop_per_s = flops_per_batch / (s.median * 1e-3) * 1e-9;
    }
    r.params = params;
    return r;
}

Format parse_format(const std::string& s) { return parse_table_format(s); }

const std::vector<std::string>& columns() {
    static const std::vector<std::string> c{"model",   "mode",    "batch",  "threads",
                                            "reps",    "median_ms", "mean_ms", "std_ms",
                                            "min_ms",  "img_per_s", "gflop_per_s", "params",
                                            "processes", "allreduce_ms"};
    return c;
}

namespace {

// Decimals kept per column: a microsecond for times, a hundredth for rates. More digits would
// only print timer noise.
constexpr int kMsDigits = 3, kRateDigits = 2;

std::string fixed(double x, int digits) { return fixed_text(x, digits); }

std::vector<std::string> cells(const Row& r) {
    return {r.model,
            r.mode,
            std::to_string(r.batch),
            std::to_string(r.threads),
            std::to_string(r.reps),
            fixed(r.median_ms, kMsDigits),
            fixed(r.mean_ms, kMsDigits),
            fixed(r.std_ms, kMsDigits),
            fixed(r.min_ms, kMsDigits),
            fixed(r.img_per_s, kRateDigits),
            fixed(r.gflop_per_s, kRateDigits),
            std::to_string(r.params),
            std::to_string(r.processes),
            fixed(r.allreduce_ms, kMsDigits)};
}

std::vector<Column> table_columns() {
    std::vector<Column> c;
    for (size_t i = 0; i < columns().size(); ++i) c.push_back({columns()[i], i >= 2});
    return c;
}

}  // namespace

Printer::Printer(std::ostream& out, Format f) : table_(out, f, table_columns()) {}

void Printer::add(const Row& r) { table_.add(cells(r)); }

void print(std::ostream& out, const std::vector<Row>& rows, Format f) {
    Printer p(out, f);
    for (const auto& r : rows) p.add(r);
    p.finish();
}

}  // namespace ufo::bench
