// Data-parallel shards against the one-shard path: the same probabilities, loss, hits, parameter
// gradients and router gradients for even and uneven splits, dense and Task-MoE mixing.
//
// Tolerance: a shard computes the same sums over fewer rows, and the weight gradients are the
// batch sum taken as two partial sums; in float32 that reorders additions of O(1) terms over at
// most B*T = 5*17 rows, so agreement to 1e-5 relative (plus 1e-6 absolute for tiny entries) is
// float32 rounding, while any wrong row offset or scale shows up as an O(1) relative error.
#include "layers/blas.h"
#include "train/data_parallel.h"
#include "nn/vit.h"
#include "base/rng.h"
#include "nn/router.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

using namespace ufo;

namespace {

// Tests here change the thread count; the suite's later tests get the count they started with.
struct RestoreThreads {
    int n = get_threads();
    ~RestoreThreads() { set_threads(n); }
};

struct StepOut {
    std::vector<float> probs, grads, d_gates;
    float loss = 0;
    int correct = 0;
};

struct Case {
    ViTConfig cfg;
    std::vector<uint8_t> images;
    std::vector<int32_t> labels;
    std::vector<float> gates;   // [depth,B,2] (supernet only)
};

Case make_setup(bool supernet, int B) {
    Case s;
    s.cfg = preset("tiny");   // 8x8x1, patch 4, dim 16, depth 2, heads 2, mlp 32
    if (supernet) {
        s.cfg.tasks = {TaskInfo{"alpha", 5, {}, {}}, TaskInfo{"beta", 3, {}, {}}};
        s.cfg.make_supernet();
    }
    Rng r(11);
    s.images.resize(size_t(B) * s.cfg.img_h * s.cfg.img_w * s.cfg.img_c);
    for (auto& v : s.images) v = uint8_t(r.below(256));
    for (int b = 0; b < B; ++b) s.labels.push_back(int32_t(r.below(3)));
    if (supernet) {
        for (int i = 0; i < s.cfg.depth * B; ++i) {
            const float g = float(r.uniform());
            s.gates.push_back(g);
            s.gates.push_back(1.0f - g);
        }
    }
    return s;
}

StepOut run(const Case& s, int threads, int B, int task) {
    set_threads(threads);
    ViT m(s.cfg);
    m.init_weights(5);
    Rng r(9);   // the zero-initialised head would hide errors in the rows below it
    for (const auto& t : m.layout)
        for (size_t i = 0; i < t.size; ++i) m.params[t.offset + i] += 0.05f * r.normal();
    std::vector<float> grads;
    DataParallel dp(m, B, true);
    Active a = active_full(m.cfg, task);
    if (!s.gates.empty()) a.gates = s.gates.data();
    StepResult res = test::train_step(dp, m, s.images.data(), s.labels.data(), B, a, 0.1f, 0.7f, grads);
    StepOut o;
    const int K = m.cfg.tasks[size_t(task)].num_classes;
    o.probs.assign(dp.probs(), dp.probs() + size_t(B) * K);
    o.grads = grads;
    if (!s.gates.empty()) o.d_gates.assign(dp.d_gates(), dp.d_gates() + size_t(s.cfg.depth) * B * 2);
    o.loss = res.loss;
    o.correct = res.correct;
    return o;
}

void expect_close(const std::vector<float>& want, const std::vector<float>& got, const char* what) {
    ASSERT_EQ(want.size(), got.size()) << what;
    size_t bad = 0;
    for (size_t i = 0; i < want.size(); ++i)
        if (std::fabs(want[i] - got[i]) > 1e-6f + 1e-5f * std::fabs(want[i])) {
            if (bad++ < 5) ADD_FAILURE() << what << "[" << i << "]: " << want[i] << " vs " << got[i];
        }
    EXPECT_EQ(bad, 0u) << what;
}

void compare(bool supernet, int B, int task, int threads) {
    RestoreThreads restore;
    const Case s = make_setup(supernet, B);
    const StepOut one = run(s, 1, B, task);
    const StepOut many = run(s, threads, B, task);
    expect_close(one.probs, many.probs, "probs");
    expect_close(one.grads, many.grads, "grads");
    expect_close(one.d_gates, many.d_gates, "d_gates");
    EXPECT_NEAR(one.loss, many.loss, 1e-5f * std::fabs(one.loss));
    EXPECT_EQ(one.correct, many.correct);
    double gsum = 0;
    for (float g : one.grads) gsum += std::fabs(g);
    EXPECT_GT(gsum, 1e-3);   // the comparison is not between two zero buffers
}

// What P processes compute between them (dist/process_group.h): each takes its rows of the
// batch (on `threads` threads), and the shares of gradients, loss, hits and gate gradients are
// summed as the all-reduce would; each process's probabilities fill its rows.
StepOut run_processes(const Case& s, int P, int threads, int B, int task) {
    set_threads(threads);
    StepOut total;
    for (int rank = 0; rank < P; ++rank) {
        ViT m(s.cfg);
        m.init_weights(5);
        Rng r(9);
        for (const auto& t : m.layout)
            for (size_t i = 0; i < t.size; ++i) m.params[t.offset + i] += 0.05f * r.normal();
        std::vector<float> grads;
        DataParallel dp(m, B, true);
        dp.set_processes(rank, P);
        Active a = active_full(m.cfg, task);
        if (!s.gates.empty()) a.gates = s.gates.data();
        const StepResult res = test::train_step(dp, m, s.images.data(), s.labels.data(), B, a, 0.1f, 0.7f, grads);
        const int K = m.cfg.tasks[size_t(task)].num_classes;
        const ShardRows mine = shard_rows(rank, P, B);
        if (rank == 0) {
            total.grads.assign(grads.size(), 0.0f);
            total.probs.assign(size_t(B) * K, 0.0f);
            if (!s.gates.empty()) total.d_gates.assign(size_t(s.cfg.depth) * B * 2, 0.0f);
        }
        for (size_t i = 0; i < grads.size(); ++i) total.grads[i] += grads[i];
        std::copy(dp.probs() + size_t(mine.first) * K, dp.probs() + size_t(mine.first + mine.count) * K,
                  total.probs.begin() + long(mine.first) * K);
        for (size_t i = 0; i < total.d_gates.size(); ++i) total.d_gates[i] += dp.d_gates()[i];
        total.loss += res.loss;
        total.correct += res.correct;
    }
    return total;
}

void compare_processes(bool supernet, int B, int task, int P, int threads) {
    RestoreThreads restore;
    const Case s = make_setup(supernet, B);
    const StepOut one = run(s, 1, B, task);
    const StepOut shared = run_processes(s, P, threads, B, task);
    expect_close(one.probs, shared.probs, "probs");
    expect_close(one.grads, shared.grads, "grads");
    expect_close(one.d_gates, shared.d_gates, "d_gates");
    EXPECT_NEAR(one.loss, shared.loss, 1e-5f * std::fabs(one.loss));
    EXPECT_EQ(one.correct, shared.correct);
}

}  // namespace

TEST(DataParallel, EvenSplitMatchesOneShard) { compare(false, 4, 0, 2); }
TEST(DataParallel, UnevenSplitMatchesOneShard) { compare(false, 5, 0, 3); }
TEST(DataParallel, MoreThreadsThanRows) { compare(false, 2, 0, 4); }
TEST(DataParallel, MixingGatesAndRouterGradientsMatchOneShard) { compare(true, 5, 1, 2); }

// Several processes (mpirun): each process's share, summed over the processes, is the batch's
// step, with and without threads inside a process, for even and uneven splits.
TEST(DataParallel, ProcessSharesSumToTheBatch) { compare_processes(false, 6, 0, 2, 1); }
TEST(DataParallel, ProcessSharesUnevenWithThreads) { compare_processes(false, 7, 0, 3, 2); }
TEST(DataParallel, ProcessSharesOfMixingGatesAndRouter) { compare_processes(true, 5, 1, 2, 2); }

TEST(DataParallel, ForwardMatchesOneShardAndShardsCount) {
    RestoreThreads restore;
    const Case s = make_setup(false, 7);
    ViT m(s.cfg);
    m.init_weights(3);
    set_threads(1);
    DataParallel one(m, 7, false);
    one.forward(m, s.images.data(), 7, active_full(m.cfg));
    std::vector<float> want(one.probs(), one.probs() + 7 * 10);
    set_threads(3);
    DataParallel three(m, 7, false);
    EXPECT_EQ(three.shards(7), 3);
    EXPECT_EQ(three.shards(1), 1);
    three.forward(m, s.images.data(), 7, active_full(m.cfg));
    std::vector<float> got(three.probs(), three.probs() + 7 * 10);
    expect_close(want, got, "probs");
}

TEST(DataParallel, TwoStepsAccumulateNoStaleShardGradients) {
    // A second step must not see the first step's shard buffers: they are re-zeroed on reduction.
    RestoreThreads restore;
    const Case s = make_setup(false, 4);
    set_threads(2);
    ViT m(s.cfg);
    m.init_weights(5);
    DataParallel dp(m, 4, true);
    const Active a = active_full(m.cfg);
    std::vector<float> grads;
    test::train_step(dp, m, s.images.data(), s.labels.data(), 4, a, 0.0f, 1.0f, grads);
    const std::vector<float> first = grads;
    std::fill(grads.begin(), grads.end(), 0.0f);
    test::train_step(dp, m, s.images.data(), s.labels.data(), 4, a, 0.0f, 1.0f, grads);
    expect_close(first, grads, "grads of a repeated step");
}
