// bench.cpp — statistics, timing loop and the four table formats of bench.h.
#include "tool/bench.h"
#include "base/common.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
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

Format parse_format(const std::string& s) {
    if (s == "md") return Format::md;
    if (s == "csv") return Format::csv;
    if (s == "json") return Format::json;
    if (s == "jsonl") return Format::jsonl;
    throw UsageError("option --format: '" + s + "' is not one of md, csv, json, jsonl");
}

const std::vector<std::string>& columns() {
    static const std::vector<std::string> c{"model",   "mode",    "batch",  "threads",
                                            "reps",    "median_ms", "mean_ms", "std_ms",
                                            "min_ms",  "img_per_s", "gflop_per_s", "params"};
    return c;
}

namespace {

// Decimals kept per column: a microsecond for times, a hundredth for rates. More digits would
// only print timer noise.
constexpr int kMsDigits = 3, kRateDigits = 2;

std::string fixed(double x, int digits) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", digits, x);
    return buf;
}

double rounded(double x, int digits) {
    double f = std::pow(10.0, digits);
    return std::round(x * f) / f;
}

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
            std::to_string(r.params)};
}

bool numeric_column(size_t i) { return i >= 2; }

nlohmann::ordered_json to_json(const Row& r) {
    nlohmann::ordered_json j;
    j["model"] = r.model;
    j["mode"] = r.mode;
    j["batch"] = r.batch;
    j["threads"] = r.threads;
    j["reps"] = r.reps;
    j["median_ms"] = rounded(r.median_ms, kMsDigits);
    j["mean_ms"] = rounded(r.mean_ms, kMsDigits);
    j["std_ms"] = rounded(r.std_ms, kMsDigits);
    j["min_ms"] = rounded(r.min_ms, kMsDigits);
    j["img_per_s"] = rounded(r.img_per_s, kRateDigits);
    j["gflop_per_s"] = rounded(r.gflop_per_s, kRateDigits);
    j["params"] = r.params;
    return j;
}

// RFC 4180: quote a field only when it holds a separator, a quote or a line break.
std::string csv_field(const std::string& s) {
    if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
    std::string q = "\"";
    for (char c : s) {
        if (c == '"') q += '"';
        q += c;
    }
    return q + '"';
}

void csv_line(std::ostream& out, const std::vector<std::string>& v) {
    for (size_t i = 0; i < v.size(); ++i) out << (i ? "," : "") << csv_field(v[i]);
    out << '\n';
}

// A pipe inside a model path would split the cell.
std::string md_cell(const std::string& s) {
    std::string o;
    for (char c : s) {
        if (c == '|') o += '\\';
        o += c;
    }
    return o;
}

void print_md(std::ostream& out, const std::vector<Row>& rows) {
    const auto& head = columns();
    std::vector<std::vector<std::string>> body;
    std::vector<size_t> w(head.size(), 3);
    for (size_t i = 0; i < head.size(); ++i) w[i] = std::max(w[i], head[i].size());
    for (const auto& r : rows) {
        auto c = cells(r);
        for (auto& s : c) s = md_cell(s);
        for (size_t i = 0; i < c.size(); ++i) w[i] = std::max(w[i], c[i].size());
        body.push_back(std::move(c));
    }
    auto line = [&](const std::vector<std::string>& v) {
        out << '|';
        for (size_t i = 0; i < v.size(); ++i) {
            std::string pad(w[i] - v[i].size(), ' ');
            out << ' ' << (numeric_column(i) ? pad + v[i] : v[i] + pad) << " |";
        }
        out << '\n';
    };
    line(head);
    out << '|';
    for (size_t i = 0; i < head.size(); ++i)
        out << (numeric_column(i) ? std::string(w[i] + 1, '-') + ":|"
                                  : ":" + std::string(w[i] + 1, '-') + '|');
    out << '\n';
    for (const auto& c : body) line(c);
}

}  // namespace

Printer::Printer(std::ostream& out, Format f) : out_(out), f_(f) {}

void Printer::add(const Row& r) {
    switch (f_) {
    case Format::csv:
        if (!header_done_) csv_line(out_, columns());
        header_done_ = true;
        csv_line(out_, cells(r));
        out_.flush();
        break;
    case Format::jsonl:
        out_ << to_json(r).dump() << '\n';
        out_.flush();
        break;
    case Format::md:
    case Format::json:
        rows_.push_back(r);
        break;
    }
}

void Printer::finish() {
    if (finished_) return;
    finished_ = true;
    switch (f_) {
    case Format::csv:
        // An empty grid still gets its header, so a reader always finds the columns.
        if (!header_done_) csv_line(out_, columns());
        break;
    case Format::jsonl:
        break;
    case Format::md:
        print_md(out_, rows_);
        break;
    case Format::json: {
        auto a = nlohmann::ordered_json::array();
        for (const auto& r : rows_) a.push_back(to_json(r));
        out_ << a.dump(1) << '\n';
        break;
    }
    }
    out_.flush();
}

void print(std::ostream& out, const std::vector<Row>& rows, Format f) {
    Printer p(out, f);
    for (const auto& r : rows) p.add(r);
    p.finish();
}

}  // namespace ufo::bench
