// Statistics and table printers of lib/bench.h.
#include "tool/bench.h"
#include "base/common.h"
#include "tool/gemm_plan.h"
#include "layers/fused_attention.h"
#include "nn/vit.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sstream>

using namespace ufo::bench;
using ufo::Active, ufo::ViT, ufo::ViTConfig, ufo::gemm_flops, ufo::gemm_plan, ufo::preset;

TEST(BenchStats, MedianOddCountIsMiddleValue) {
    Stats s = stats({5.0, 1.0, 3.0});
    EXPECT_EQ(s.n, 3);
    EXPECT_DOUBLE_EQ(s.median, 3.0);
    EXPECT_DOUBLE_EQ(s.min, 1.0);
    EXPECT_DOUBLE_EQ(s.max, 5.0);
    EXPECT_DOUBLE_EQ(s.mean, 3.0);
}

TEST(BenchStats, MedianEvenCountAveragesMiddlePair) {
    Stats s = stats({4.0, 1.0, 10.0, 2.0});
    EXPECT_DOUBLE_EQ(s.median, 3.0);
    EXPECT_DOUBLE_EQ(s.mean, 4.25);
}

TEST(BenchStats, SampleStandardDeviation) {
    // Values 2,4,4,4,5,5,7,9: sum of squared deviations 32, n-1 = 7.
    Stats s = stats({2, 4, 4, 4, 5, 5, 7, 9});
    EXPECT_DOUBLE_EQ(s.mean, 5.0);
    EXPECT_NEAR(s.std, std::sqrt(32.0 / 7.0), 1e-12);
}

TEST(BenchStats, SingleAndEmpty) {
    Stats one = stats({7.5});
    EXPECT_EQ(one.n, 1);
    EXPECT_DOUBLE_EQ(one.median, 7.5);
    EXPECT_DOUBLE_EQ(one.std, 0.0);
    Stats none = stats({});
    EXPECT_EQ(none.n, 0);
    EXPECT_DOUBLE_EQ(none.median, 0.0);
}

TEST(BenchStats, StdIsStableForLargeNearlyEqualValues) {
    Stats s = stats({1e9 + 1, 1e9 + 2, 1e9 + 3});
    EXPECT_NEAR(s.std, 1.0, 1e-6);
}

TEST(BenchTiming, TimeRepsRunsWarmupPlusReps) {
    int calls = 0;
    auto ms = time_reps([&] { ++calls; }, 2, 5);
    EXPECT_EQ(calls, 7);
    ASSERT_EQ(ms.size(), 5u);
    for (double m : ms) EXPECT_GE(m, 0.0);
}

TEST(BenchRow, ThroughputFromMedian) {
    // Median 200 ms at batch 4: 20 img/s; 1e9 FLOP per rep: 5 GFLOP/s.
    Row r = make_row("arch", "infer", 4, 2, {100, 200, 900}, 1e9, 123);
    EXPECT_EQ(r.reps, 3);
    EXPECT_DOUBLE_EQ(r.median_ms, 200);
    EXPECT_DOUBLE_EQ(r.min_ms, 100);
    EXPECT_DOUBLE_EQ(r.mean_ms, 400);
    EXPECT_NEAR(r.img_per_s, 20.0, 1e-9);
    EXPECT_NEAR(r.gflop_per_s, 5.0, 1e-9);
    EXPECT_EQ(r.params, 123);
}

namespace {
std::vector<Row> two_rows() {
    return {make_row("arch", "infer", 1, 1, {2.0, 4.0}, 1e6, 10),
            make_row("a,b.h5", "train", 2, 1, {10.0}, 1e6, 10)};
}
std::vector<std::string> lines(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
}
}  // namespace

TEST(BenchPrint, CsvHeaderAndRows) {
    std::ostringstream o;
    print(o, two_rows(), Format::csv);
    auto l = lines(o.str());
    ASSERT_EQ(l.size(), 3u);
    EXPECT_EQ(l[0],
              "model,mode,batch,threads,reps,median_ms,mean_ms,std_ms,min_ms,img_per_s,"
              "gflop_per_s,params,processes,allreduce_ms");
    EXPECT_EQ(l[1], "arch,infer,1,1,2,3.000,3.000,1.414,2.000,333.33,0.33,10,1,0.000");
    // A comma in the model path is quoted, not a new column.
    EXPECT_EQ(l[2].rfind("\"a,b.h5\",train,2,1,1,10.000,", 0), 0u) << l[2];
}

TEST(BenchPrint, CsvEmptyGridStillHasHeader) {
    std::ostringstream o;
    print(o, {}, Format::csv);
    EXPECT_EQ(lines(o.str()).size(), 1u);
}

TEST(BenchPrint, JsonIsOneArrayJsonlOneObjectPerLine) {
    std::ostringstream a, b;
    print(a, two_rows(), Format::json);
    auto j = nlohmann::json::parse(a.str());
    ASSERT_TRUE(j.is_array());
    ASSERT_EQ(j.size(), 2u);
    EXPECT_EQ(j[0]["mode"], "infer");
    EXPECT_DOUBLE_EQ(j[0]["median_ms"].get<double>(), 3.0);
    EXPECT_EQ(j[1]["model"], "a,b.h5");
    for (const auto& c : columns()) EXPECT_TRUE(j[0].contains(c)) << c;

    print(b, two_rows(), Format::jsonl);
    auto l = lines(b.str());
    ASSERT_EQ(l.size(), 2u);
    EXPECT_EQ(nlohmann::json::parse(l[1])["batch"], 2);
}

TEST(BenchPrint, MarkdownIsAligned) {
    std::ostringstream o;
    print(o, two_rows(), Format::md);
    auto l = lines(o.str());
    ASSERT_EQ(l.size(), 4u);  // header, rule, two rows
    for (const auto& s : l) EXPECT_EQ(s.size(), l[0].size()) << s;
    EXPECT_EQ(l[1].substr(0, 3), "|:-");
}

TEST(BenchPrint, UnknownFormatIsAnError) {
    EXPECT_EQ(parse_format("jsonl"), Format::jsonl);
    EXPECT_THROW(parse_format("xml"), ufo::Error);
}

// TSV escapes tabs and newlines inside cells (one row stays one line); JSON writes numeric
// columns as numbers, an empty numeric cell as null, and text as strings.
TEST(TablePrint, TsvEscapesAndJsonTypes) {
    std::vector<ufo::Column> cols{{"arch", false}, {"ms", true}, {"acc", true}};
    std::ostringstream t;
    ufo::TablePrinter tp(t, ufo::TableFormat::tsv, cols);
    tp.add({"depth=2\tx\ny", "0.5000", ""});
    tp.finish();
    EXPECT_EQ(t.str(), "arch\tms\tacc\ndepth=2\\tx\\ny\t0.5000\t\n");
    std::ostringstream j;
    ufo::TablePrinter jp(j, ufo::TableFormat::jsonl, cols);
    jp.add({"depth=2", "0.5000", ""});
    auto o = nlohmann::json::parse(j.str());
    EXPECT_EQ(o["arch"], "depth=2");
    EXPECT_DOUBLE_EQ(o["ms"].get<double>(), 0.5);
    EXPECT_TRUE(o["acc"].is_null());
    std::ostringstream e;
    ufo::TablePrinter ep(e, ufo::TableFormat::tsv, cols);
    ep.finish();
    EXPECT_EQ(e.str(), "arch\tms\tacc\n");   // an empty table still names its columns
    EXPECT_THROW(ep.add({"only one"}), ufo::Error);
    EXPECT_EQ(ufo::parse_table_format("tsv"), ufo::TableFormat::tsv);
    EXPECT_THROW(ufo::parse_table_format("xml"), ufo::Error);
}

// The GEMM plan behind `ufo-bench --gemm` does the model's matrix work: its forward FLOPs equal
// the exact forward count, and a training step's equal 3x forward less the patch embedding's
// input gradient (never computed), also for a sub-network with fewer heads and hidden units.
TEST(GemmPlan, FlopsMatchTheModelsCount) {
    for (bool elastic : {false, true}) {
        ViTConfig cfg = preset("ref");
        ViT m(cfg);
        Active a = ufo::active_full(cfg);
        if (elastic) {
            a.heads.assign(cfg.depth, 2);
            a.hidden.assign(cfg.depth, 300);
            a.depth = 4;
        }
        const int B = 3;
        const double fwd = m.forward_flops(a) * B;
        EXPECT_DOUBLE_EQ(gemm_flops(gemm_plan(cfg, a, B, false)), fwd);
        const double patch_dinp = 2.0 * B * cfg.num_patches() * cfg.patch_dim() * cfg.dim;
        EXPECT_DOUBLE_EQ(gemm_flops(gemm_plan(cfg, a, B, true)), 3 * fwd - patch_dinp);
    }
}

// --gemm for inference: DataParallel's passes of inference_chunk() images, whose products add
// up to the batch's, less the attention products where the fused kernel computes them.
TEST(GemmPlan, InferencePassesCoverTheRowsInChunks) {
    ViTConfig cfg = preset("small");
    ViT m(cfg);
    const Active a = ufo::active_full(cfg);
    const int rows = 100, chunk = m.inference_chunk();
    ASSERT_GT(chunk, 1);
    ASSERT_LT(chunk, rows);
    const ufo::GemmPasses g = ufo::gemm_passes(m, a, rows, false, true);
    EXPECT_EQ(g.passes, rows / chunk);
    EXPECT_EQ(g.last.size(), g.pass.size());
    double attention = 0;
    for (const auto& c : gemm_plan(cfg, a, rows, false))
        if (c.attention) attention += c.flops();
    EXPECT_GT(attention, 0.0);
    const double expect = m.forward_flops(a) * rows - (ufo::attention_fused_supported(cfg.tokens()) ? attention : 0.0);
    EXPECT_NEAR(gemm_flops(g.pass) * g.passes + gemm_flops(g.last), expect, 1e-9 * expect);
    const ufo::GemmPasses t = ufo::gemm_passes(m, a, rows, true, false);   // training: one pass
    EXPECT_EQ(t.passes, 1);
    EXPECT_TRUE(t.last.empty());
}
