// fuzz_table — parse_measured_table, table_archs and the numeric columns of a sampling table
// (lib/search/predictor.h), against a small elastic model; a small accepted table is fitted
// and its predictor written and read back. Raw text input (TSV or JSON Lines); seeds are valid
// tables (tests/fuzz/make-seeds).
// Oracles: every accepted row has one cell per column and a spec that formats back to itself
// within the space; predictions of the fitted predictor are finite and survive the round trip.
#include "base/common.h"
#include "fuzz_common.h"
#include "nn/elastic.h"
#include "search/predictor.h"

#include <cmath>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    static const ufo::ViTConfig cfg = [] {
        ufo::ViTConfig c = ufo::preset("tiny");
        c.depth = 3;
        c.elastic = ufo::make_space(c, "", "", "", "fuzz");
        return c;
    }();
    ufo::MeasuredTable t;
    std::vector<ufo::Active> archs;
    std::vector<double> acc;
    try {
        t = ufo::parse_measured_table(text, "fuzz.tsv");
        archs = ufo::table_archs(t, cfg);
        acc = t.numbers("accuracy");
    } catch (const ufo::Error& e) {
        fuzz::rejected(e);
        return 0;
    }
    for (const auto& row : t.rows)
        if (row.size() != t.columns.size()) fuzz::finding("a row with another number of cells than the header");
    for (const auto& a : archs) {
        const std::string s = ufo::format_arch(a);
        if (ufo::format_arch(ufo::parse_arch(s, cfg, "formatted")) != s) fuzz::finding("spec does not round-trip: " + s);
    }
    for (double v : acc)
        if (!std::isfinite(v)) fuzz::finding("a non-finite number was accepted");
    // Fitting costs O(n^3) per likelihood: only small tables, so a legitimately large one is not
    // reported as a timeout.
    if (t.rows.size() < 2 || t.rows.size() > 48) return 0;
    ufo::Predictor p;
    try {
        p = ufo::fit_predictor(t, cfg, {"accuracy"}, ufo::GPNASOptions{});
    } catch (const ufo::Error& e) {
        fuzz::rejected(e);
        return 0;
    }
    const std::string path = fuzz::scratch("predictor.h5");
    try {
        ufo::save_predictor(path, p);
        const ufo::Predictor q = ufo::load_predictor(path);
        for (const auto& a : archs) {
            double s1 = 0, s2 = 0;
            const double m1 = p.predict(0, a, &s1), m2 = q.predict(0, a, &s2);
            if (!std::isfinite(m1) || !std::isfinite(s1)) fuzz::finding("a non-finite prediction");
            if (m1 != m2 || s1 != s2) fuzz::finding("the predictor file does not predict what was fitted");
        }
    } catch (const ufo::Error& e) {
        fuzz::finding(std::string("a fitted predictor does not round-trip: ") + e.what());
    }
    fuzz::check_hdf5_handles("save_predictor / load_predictor");
    return 0;
}
