// bench.h — timing and result tables for ufo-bench (and anything else that measures speed).
// Rows are printed in the same columns by scripts/bench-pytorch, so tables from the two can be
// concatenated and compared line by line.
#pragma once
#include "tool/table.h"

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

namespace ufo::bench {

struct Stats {
    int n = 0;
    double median = 0, mean = 0, std = 0, min = 0, max = 0;
};

// Sample statistics of xs; std is the sample standard deviation (n-1), 0 for a single value.
// The median of an even count is the mean of the two middle values. Empty input gives n = 0.
Stats stats(std::vector<double> xs);

// Runs fn `warmup` times untimed, then `reps` times, each timed alone with steady_clock.
// Returns the milliseconds of every timed rep, in order.
std::vector<double> time_reps(const std::function<void()>& fn, int warmup, int reps);

struct Row {
    std::string model;     // checkpoint path, "arch", or "pytorch-eager" etc.
    std::string mode;      // "infer" or "train"
    int batch = 0, threads = 0, reps = 0;
    double median_ms = 0, mean_ms = 0, std_ms = 0, min_ms = 0;
    double img_per_s = 0;  // batch / median
    double gflop_per_s = 0;
    int64_t params = 0;
    int processes = 1;        // ranks of the run (mpirun); the batch is the global one
    double allreduce_ms = 0;  // median per step of the gradient all-reduce (several processes)
};

// Fills the timing columns from the per-rep milliseconds. flops_per_batch is the work of one
// rep (forward FLOPs x batch for inference, 3 x that for a training step).
Row make_row(std::string model, std::string mode, int batch, int threads,
             const std::vector<double>& ms, double flops_per_batch, int64_t params);

using Format = TableFormat;
// md, csv, tsv, json or jsonl; a usage error naming --format otherwise.
Format parse_format(const std::string& s);
const std::vector<std::string>& columns();

// Streams rows as they come where the format allows (csv, tsv, jsonl) so a long grid shows
// results early; md (column widths) and json (one array) wait for finish().
class Printer {
public:
    Printer(std::ostream& out, Format f);
    void add(const Row& r);
    void finish() { table_.finish(); }
private:
    TablePrinter table_;
};

void print(std::ostream& out, const std::vector<Row>& rows, Format f);

}  // namespace ufo::bench
