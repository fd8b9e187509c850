// test_search.cpp — GP-NAS and the search around it: the Gaussian process against closed-form
// answers, least squares, rank metrics against hand-computed cases, k-fold splits, the search
// space's enumeration and features, the evolutionary search against known optima, exhaustive
// search against brute force, and the predictor file's round trip.
#include "io/h5.h"
#include "nn/elastic.h"
#include "search/evolution.h"
#include "search/gp.h"
#include "search/predictor.h"
#include "search/rank_metrics.h"
#include "search/select.h"
#include "search/space.h"

#include "test_util.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <set>

using namespace ufo;
using ufo::test::error_of;

namespace {

// 3x3 inverse by the adjugate: a closed form that shares nothing with LAPACK's Cholesky path.
std::array<double, 9> inverse3(const std::array<double, 9>& m) {
    const double a = m[0], b = m[1], c = m[2], d = m[3], e = m[4], f = m[5], g = m[6], h = m[7], i = m[8];
    const double det = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g);
    return {(e * i - f * h) / det, (c * h - b * i) / det, (b * f - c * e) / det,
            (f * g - d * i) / det, (a * i - c * g) / det, (c * d - a * f) / det,
            (d * h - e * g) / det, (b * g - a * h) / det, (a * e - b * d) / det};
}
double det3(const std::array<double, 9>& m) {
    return m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6]) + m[2] * (m[3] * m[7] - m[4] * m[6]);
}

// Tiny elastic ViT: depth 2..3, heads 1..3, widths 24/36/48: 9² + 9³ = 810 sub-networks.
ViTConfig tiny_elastic() {
    ViTConfig c = preset("tiny");
    c.dim = 24; c.depth = 3; c.heads = 3; c.mlp_hidden = 48;
    c.tasks[0].num_classes = 5;
    c.in_mean = {0.4f};
    c.in_std = {0.3f};
    c.elastic = make_space(c, "2,3", "", "1,1.5,2", "test");
    return c;
}

// A synthetic "accuracy": grows with capacity, with diminishing returns and an interaction.
double synthetic_accuracy(const ViTConfig& c, const Active& a) {
    double s = 0.1 * a.depth;
    for (int l = 0; l < a.depth; ++l) s += 0.05 * std::sqrt(double(a.heads[size_t(l)])) + 0.002 * a.hidden[size_t(l)];
    return 0.5 + 0.3 * std::tanh(s - 0.6);
}

MeasuredTable synthetic_table(const ViTConfig& c, int n, uint64_t seed) {
    MeasuredTable t;
    t.where = "synthetic";
    t.columns = {"id", "arch", "accuracy", "latency_ms"};
    Rng rng(seed);
    for (int i = 0; i < n; ++i) {
        const Active a = sample_arch(c, rng);
        double lat = 0.1 * a.depth;
        for (int l = 0; l < a.depth; ++l) lat += 0.01 * a.heads[size_t(l)] + 0.001 * a.hidden[size_t(l)];
        t.rows.push_back({std::to_string(i), format_arch(a), std::to_string(synthetic_accuracy(c, a)),
                          std::to_string(lat)});
        t.lines.push_back(i + 2);
    }
    return t;
}

}  // namespace

// Posterior mean and variance on 3 points against the closed form
//     mean = k*ᵀ K₁⁻¹ r,   var = s (1 − k*ᵀ K₁⁻¹ k*),   K₁ = exp(−|x−x'|/l) + g I,
// with K₁⁻¹ from the adjugate. Both sides are double precision on a well-conditioned 3x3
// matrix (condition number < 10): they agree to ~1e-15; 1e-12 leaves room for libm's exp.
TEST(GaussianProcess, ThreePointsClosedForm) {
    const double X[3] = {0.0, 1.0, 3.0}, r[3] = {1.0, -0.5, 2.0};
    const GPHyper h{2.0, 0.1, 1.5};
    const GaussianProcess gp = gp_fit(X, 3, 1, r, h);
    std::array<double, 9> K{};
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) K[size_t(i * 3 + j)] = std::exp(-std::fabs(X[i] - X[j]) / h.length) + (i == j ? h.noise : 0);
    const auto Ki = inverse3(K);
    for (double xs : {2.0, -1.0, 1.0, 10.0}) {
        double k[3], mean = 0, quad = 0;
        for (int i = 0; i < 3; ++i) k[i] = std::exp(-std::fabs(xs - X[i]) / h.length);
        for (int i = 0; i < 3; ++i)
            for (int j = 0; j < 3; ++j) {
                mean += k[i] * Ki[size_t(i * 3 + j)] * r[j];
                quad += k[i] * Ki[size_t(i * 3 + j)] * k[j];
            }
        double var = -1;
        const double m = gp.predict(&xs, &var);
        EXPECT_NEAR(m, mean, 1e-12) << "x* = " << xs;
        EXPECT_NEAR(var, h.signal * (1 - quad), 1e-12) << "x* = " << xs;
    }
    // Far from every point the GP reverts to its prior: mean 0, variance s.
    const double far = 1e3;
    double var = 0;
    EXPECT_NEAR(gp.predict(&far, &var), 0.0, 1e-12);
    EXPECT_NEAR(var, h.signal, 1e-12);
}

// Without noise the posterior interpolates: the mean at a training point is its value and the
// variance is zero (up to the Cholesky's rounding, ~1e-15 on this matrix).
TEST(GaussianProcess, InterpolatesWithoutNoise) {
    const double X[6] = {0, 0, 1, 0, 0, 1}, r[3] = {0.3, -1.2, 0.7};
    const GaussianProcess gp = gp_fit(X, 3, 2, r, GPHyper{0.8, 0.0, 2.0});
    for (int i = 0; i < 3; ++i) {
        double var = 1;
        EXPECT_NEAR(gp.predict(X + 2 * i, &var), r[i], 1e-12);
        EXPECT_NEAR(var, 0.0, 1e-12);
    }
}

// The profiled log-likelihood equals log N(r; 0, s K₁) at s = rᵀK₁⁻¹r/n, written out with the
// adjugate inverse and the 3x3 determinant (same 1e-12 argument as above).
TEST(GaussianProcess, ProfiledLikelihoodClosedForm) {
    const double X[3] = {0.0, 0.5, 2.0}, r[3] = {0.4, 0.1, -0.9};
    const double l = 0.7, g = 0.05;
    double s = 0;
    const double ll = gp_profiled_log_likelihood(X, 3, 1, r, l, g, &s);
    std::array<double, 9> K{};
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) K[size_t(i * 3 + j)] = std::exp(-std::fabs(X[i] - X[j]) / l) + (i == j ? g : 0);
    const auto Ki = inverse3(K);
    double quad = 0;
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) quad += r[i] * Ki[size_t(i * 3 + j)] * r[j];
    const double s_ref = quad / 3;
    const double ll_ref = -0.5 * 3 * std::log(2 * M_PI) - 0.5 * (3 * std::log(s_ref) + std::log(det3(K))) - 0.5 * 3;
    EXPECT_NEAR(s, s_ref, 1e-12);
    EXPECT_NEAR(ll, ll_ref, 1e-12);
}

// The hyperparameter search returns a maximum of the likelihood within the search's resolution:
// no neighbour (l x 0.8 or 1.25, g x 0.5 or 2) is better by more than 1e-3 (the surface is
// flat in g where the noise is small, so the grid may stop a few 1e-5 short), the far corners
// of the search box are worse, and l is not below the median nearest-neighbour distance.
TEST(GaussianProcess, HyperparametersMaximiseLikelihood) {
    Rng rng(5);
    const int n = 40, d = 3;
    std::vector<double> X(size_t(n) * d), r(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
        for (int k = 0; k < d; ++k) X[size_t(i * d + k)] = rng.uniform();
        r[size_t(i)] = std::sin(4 * X[size_t(i * d)]) + 0.5 * X[size_t(i * d + 1)] * X[size_t(i * d + 2)] + 0.05 * rng.normal();
    }
    double best = 0;
    const GPHyper h = gp_fit_hyper(X.data(), n, d, r.data(), HyperCriterion::marginal, &best);
    EXPECT_NEAR(best, gp_profiled_log_likelihood(X.data(), n, d, r.data(), h.length, h.noise, nullptr), 1e-9);
    for (double fl : {0.8, 1.25})
        for (double fg : {0.5, 2.0}) {
            EXPECT_GE(best + 1e-3, gp_profiled_log_likelihood(X.data(), n, d, r.data(), h.length * fl, h.noise, nullptr));
            EXPECT_GE(best + 1e-3, gp_profiled_log_likelihood(X.data(), n, d, r.data(), h.length, h.noise * fg, nullptr));
        }
    for (double g : {1e-6, 10.0}) EXPECT_GT(best, gp_profiled_log_likelihood(X.data(), n, d, r.data(), 100.0, g, nullptr));
    // The search starts at the median nearest-neighbour distance (below it the kernel matrix is
    // nearly the identity, indistinguishable from noise).
    std::vector<double> nn;
    for (int i = 0; i < n; ++i) {
        double m = 1e300;
        for (int j = 0; j < n; ++j) {
            if (j == i) continue;
            double dd = 0;
            for (int k = 0; k < d; ++k) dd += std::pow(X[size_t(i * d + k)] - X[size_t(j * d + k)], 2);
            m = std::min(m, std::sqrt(dd));
        }
        nn.push_back(m);
    }
    std::sort(nn.begin(), nn.end());
    EXPECT_GE(h.length, nn[size_t(n / 2)] * (1 - 1e-12));
}

// The leave-one-out criterion against brute force: each point predicted by a GP fitted on the
// others (same l, g), its log density under N(mean, s·var₁) summed, at the profiled s that the
// closed form picks. Both are double precision on a 12-point problem: 1e-9 covers the
// difference of two O(n³) computations of a well-conditioned matrix (g = 0.05).
TEST(GaussianProcess, LeaveOneOutMatchesBruteForce) {
    Rng rng(6);
    const int n = 12, d = 2;
    std::vector<double> X(size_t(n) * d), r(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
        X[size_t(i * d)] = rng.uniform();
        X[size_t(i * d + 1)] = rng.uniform();
        r[size_t(i)] = std::cos(3 * X[size_t(i * d)]) + 0.1 * rng.normal();
    }
    const double l = 0.4, g = 0.05;
    double signal = 0;
    std::vector<double> m1(static_cast<size_t>(n)), v1(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
        std::vector<double> Xo, ro;
        for (int j = 0; j < n; ++j)
            if (j != i) {
                Xo.insert(Xo.end(), X.begin() + j * d, X.begin() + (j + 1) * d);
                ro.push_back(r[size_t(j)]);
            }
        const GaussianProcess gp = gp_fit(Xo.data(), n - 1, d, ro.data(), GPHyper{l, g, 1.0});
        double var = 0;
        m1[size_t(i)] = gp.predict(X.data() + i * d, &var);
        v1[size_t(i)] = var + g;   // the left-out point is a measurement: its noise counts
    }
    double s = 0;
    for (int i = 0; i < n; ++i) s += (r[size_t(i)] - m1[size_t(i)]) * (r[size_t(i)] - m1[size_t(i)]) / v1[size_t(i)];
    s /= n;
    double ref = 0;
    for (int i = 0; i < n; ++i)
        ref += -0.5 * std::log(2 * M_PI * s * v1[size_t(i)]) -
               (r[size_t(i)] - m1[size_t(i)]) * (r[size_t(i)] - m1[size_t(i)]) / (2 * s * v1[size_t(i)]);
    EXPECT_NEAR(gp_loo_log_likelihood(X.data(), n, d, r.data(), l, g, &signal), ref, 1e-9);
    EXPECT_NEAR(signal, s, 1e-9);
}

// An exact linear function is recovered (to rounding, 1e-10 on these well-scaled numbers);
// a duplicated column gets the minimum-norm split (half each).
TEST(LeastSquares, RecoversLinearFunctionAndSplitsDuplicates) {
    Rng rng(1);
    const int n = 12;
    std::vector<double> X(size_t(n) * 3), y(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
        const double a = rng.uniform(), b = rng.uniform();
        X[size_t(i * 3)] = a; X[size_t(i * 3 + 1)] = b; X[size_t(i * 3 + 2)] = a;   // column 2 = column 0
        y[size_t(i)] = 2 * a - 3 * b + 0.5;
    }
    const auto w = least_squares(X.data(), n, 3, y.data());
    ASSERT_EQ(w.size(), 4u);
    EXPECT_NEAR(w[0], 1.0, 1e-10);
    EXPECT_NEAR(w[2], 1.0, 1e-10);
    EXPECT_NEAR(w[1], -3.0, 1e-10);
    EXPECT_NEAR(w[3], 0.5, 1e-10);
}

// A linear target: GP-NAS predicts held-out points exactly (the GP adds ~nothing to a zero
// residual), so cross-validated ranking is perfect.
TEST(GPNAS, LinearTargetCrossValidatesPerfectly) {
    Rng rng(2);
    const int n = 30, d = 4;
    std::vector<double> X(size_t(n) * d), y(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
        double s = 1;
        for (int k = 0; k < d; ++k) s += (k + 1) * (X[size_t(i * d + k)] = rng.uniform());
        y[size_t(i)] = s;
    }
    for (bool gp : {true, false}) {
        GPNASOptions o;
        o.gp = gp;
        const auto pred = cross_validate(X, n, d, y, 5, 0, o);
        EXPECT_NEAR(kendall_tau(pred, y), 1.0, 1e-12);
        EXPECT_LT(rmse(pred, y), 1e-6);
    }
}

// On a non-linear target GP-NAS beats the plain linear model in cross-validation.
TEST(GPNAS, BeatsLinearOnNonLinearTarget) {
    const ViTConfig c = tiny_elastic();
    const MeasuredTable t = synthetic_table(c, 60, 3);
    const auto archs = table_archs(t, c);
    const int n = int(archs.size()), d = feature_count(c);
    std::vector<double> X(size_t(n) * d);
    for (int i = 0; i < n; ++i) encode_arch(c, archs[size_t(i)], X.data() + size_t(i) * d);
    const auto y = t.numbers("accuracy");
    GPNASOptions gp, lin;
    lin.gp = false;
    const double e_gp = rmse(cross_validate(X, n, d, y, 5, 1, gp), y);
    const double e_lin = rmse(cross_validate(X, n, d, y, 5, 1, lin), y);
    EXPECT_LT(e_gp, e_lin);
}

// Hand-computed: a = 1..5, b = 3,1,2,5,4 has 7 concordant and 3 discordant pairs: τ = 4/10.
// With ties, a = 1,2,2,3 and b = 1,3,2,2: C = 3, D = 1, one pair tied in each: τ-b = 2/√(5·5).
TEST(RankMetrics, KendallHandComputed) {
    EXPECT_NEAR(kendall_tau({1, 2, 3, 4, 5}, {3, 1, 2, 5, 4}), 0.4, 1e-15);
    EXPECT_NEAR(kendall_tau({1, 2, 2, 3}, {1, 3, 2, 2}), 0.4, 1e-15);
    EXPECT_NEAR(kendall_tau({1, 2, 3}, {3, 2, 1}), -1.0, 1e-15);
    EXPECT_EQ(kendall_tau({1, 1, 1}, {1, 2, 3}), 0.0);
}

// Ranks of b = 5,6,7,8,7 are 1,2,3.5,5,3.5; with a = 1..5: ρ = 8/√(10·9.5).
TEST(RankMetrics, SpearmanAndRmseHandComputed) {
    EXPECT_EQ(average_ranks({5, 6, 7, 8, 7}), (std::vector<double>{1, 2, 3.5, 5, 3.5}));
    EXPECT_NEAR(spearman_rho({1, 2, 3, 4, 5}, {5, 6, 7, 8, 7}), 8 / std::sqrt(95.0), 1e-15);
    EXPECT_NEAR(rmse({1, 2, 3}, {1, 2, 6}), std::sqrt(3.0), 1e-15);
}

TEST(RankMetrics, KFoldIsBalancedAndSeeded) {
    const auto f = kfold_assignment(23, 5, 7);
    std::vector<int> size(5, 0);
    for (int x : f) ++size[size_t(x)];
    for (int s : size) EXPECT_TRUE(s == 4 || s == 5);
    EXPECT_EQ(f, kfold_assignment(23, 5, 7));
    EXPECT_NE(f, kfold_assignment(23, 5, 8));
}

// Enumeration: space_count distinct, valid sub-architectures; features as documented.
TEST(SearchSpace, EnumeratesEverySubArchitectureOnce) {
    const ViTConfig c = tiny_elastic();
    ASSERT_EQ(space_count(c), 810u);
    std::set<std::string> seen;
    for (uint64_t i = 0; i < space_count(c); ++i) {
        const Active a = arch_at(c, i);
        const std::string s = format_arch(a);
        EXPECT_EQ(format_arch(parse_arch(s, c, "test")), s);
        seen.insert(s);
    }
    EXPECT_EQ(seen.size(), 810u);
    const Active a = parse_arch("depth=2 heads=3,1 mlp=24,48", c, "test");
    double x[7];
    ASSERT_EQ(feature_count(c), 7);
    encode_arch(c, a, x);
    const double want[7] = {2.0 / 3, 1.0, 1.0 / 3, 0.0, 0.5, 1.0, 0.0};
    for (int k = 0; k < 7; ++k) EXPECT_DOUBLE_EQ(x[k], want[k]) << k;
    // A genome decodes to the arch its genes name.
    const Active g = genome_arch(c, {0, 2, 0, 1, 0, 2, 2});
    EXPECT_EQ(format_arch(g), "depth=2 heads=3,1 mlp=24,48");
}

// A known optimum: f = −Σ|g_k − t_k| over 12 genes of 5 choices (244M genomes), with the
// constraint g_0 + g_1 <= 4 against targets t_0 = t_1 = 4: the best reachable value is −4.
// Once-for-All's settings find it; the result is the same for the same seed.
TEST(Evolution, FindsKnownOptimumUnderConstraint) {
    const std::vector<int> choices(12, 5);
    const std::vector<int> target{4, 4, 0, 1, 2, 3, 4, 3, 2, 1, 0, 2};
    auto fitness = [&](const Genome& g) {
        double f = 0;
        for (size_t k = 0; k < g.size(); ++k) f -= std::abs(g[k] - target[k]);
        return f;
    };
    auto feasible = [](const Genome& g) { return g[0] + g[1] <= 4; };
    EvolutionOptions o;
    o.seed = 11;
    const EvolutionResult r = evolve(choices, fitness, feasible, o);
    ASSERT_TRUE(r.found);
    EXPECT_EQ(r.fitness, -4.0);
    EXPECT_TRUE(feasible(r.best));
    EXPECT_EQ(r.evaluated, 100 + 500 * 75);
    EXPECT_EQ(evolve(choices, fitness, feasible, o).best, r.best);
    // Nothing feasible: found stays false instead of looping.
    EvolutionOptions quick = o;
    quick.max_tries = 10;
    EXPECT_FALSE(evolve(choices, fitness, [](const Genome&) { return false; }, quick).found);
}

// Exhaustive search equals brute force over the tiny space, and the evolutionary search finds
// the same sub-network (810 sub-networks: 500 generations of 100 cover the space many times).
TEST(Search, ExhaustiveMatchesBruteForceAndEvolutionAgrees) {
    const ViTConfig c = tiny_elastic();
    const Predictor p = fit_predictor(synthetic_table(c, 40, 4), c, {"accuracy", "latency_ms"}, GPNASOptions{});
    const FigureTable fig(p);
    SearchOptions o;
    o.budgets = {parse_budget("latency=0.45ms"), parse_budget("params=10k")};
    double best = -1e300;
    std::string best_arch;
    int64_t feasible = 0;
    for (uint64_t i = 0; i < space_count(c); ++i) {
        const Active a = arch_at(c, i);
        if (fig.value("latency_ms", a) > 0.45 || fig.value("params", a) > 10000) continue;
        ++feasible;
        const double v = fig.value("accuracy", a);
        if (v > best) { best = v; best_arch = format_arch(a); }
    }
    ASSERT_GT(feasible, 0);
    ASSERT_LT(feasible, 810);
    for (int threads : {1, 2}) {
        o.threads = threads;
        o.method = "exhaustive";
        const SearchResult r = search_best(fig, o);
        ASSERT_TRUE(r.found);
        EXPECT_EQ(format_arch(r.best), best_arch);
        EXPECT_EQ(r.feasible, feasible);
    }
    o.method = "evolution";
    const SearchResult e = search_best(fig, o);
    ASSERT_TRUE(e.found);
    EXPECT_EQ(format_arch(e.best), best_arch);
    // A margin of one sd: the choice's latency mean + sd is within the budget, and it is the
    // best such sub-network.
    o.method = "exhaustive";
    o.margin_sd = 1;
    const SearchResult m = search_best(fig, o);
    ASSERT_TRUE(m.found);
    double sd = 0;
    EXPECT_LE(fig.value("latency_ms", m.best, &sd) + sd, 0.45);
    for (uint64_t i = 0; i < space_count(c); ++i) {
        const Active a = arch_at(c, i);
        double s = 0;
        if (fig.value("latency_ms", a, &s) + s <= 0.45 && fig.value("params", a) <= 10000) {
            EXPECT_LE(fig.value("accuracy", a), m.objective);
        }
    }
    o.margin_sd = 0;
        // A budget nothing meets.
    o.budgets = {parse_budget("params=10")};
    o.method = "exhaustive";
    EXPECT_FALSE(search_best(fig, o).found);
}

// The front: sorted by cost, strictly improving, and no sub-network of the space dominates a
// point of it.
TEST(Search, ParetoFrontIsNotDominated) {
    const ViTConfig c = tiny_elastic();
    const Predictor p = fit_predictor(synthetic_table(c, 40, 6), c, {"accuracy", "latency_ms"}, GPNASOptions{});
    const FigureTable fig(p);
    SearchOptions o;
    std::string method;
    const auto front = pareto_front(fig, "latency_ms", o, 10, &method);
    EXPECT_EQ(method, "exhaustive");
    ASSERT_GE(front.size(), 2u);
    for (size_t i = 1; i < front.size(); ++i) {
        EXPECT_GE(front[i].x, front[i - 1].x);
        EXPECT_GT(front[i].y, front[i - 1].y);
    }
    for (uint64_t i = 0; i < space_count(c); ++i) {
        const Active a = arch_at(c, i);
        const double x = fig.value("latency_ms", a), y = fig.value("accuracy", a);
        for (const auto& f : front) EXPECT_FALSE(x <= f.x && y > f.y) << format_arch(a) << " dominates " << format_arch(f.arch);
    }
}

TEST(Search, BudgetParsing) {
    EXPECT_EQ(parse_budget("latency=1.2ms").column, "latency_ms");
    EXPECT_DOUBLE_EQ(parse_budget("latency=1.2ms").limit, 1.2);
    EXPECT_DOUBLE_EQ(parse_budget("latency=800us").limit, 0.8);
    EXPECT_DOUBLE_EQ(parse_budget("latency_ms=0.002s").limit, 2.0);
    EXPECT_DOUBLE_EQ(parse_budget("params=300k").limit, 300000.0);
    EXPECT_DOUBLE_EQ(parse_budget("mflops=1.5M").limit, 1.5e6);
    EXPECT_THROW(parse_budget("latency"), UsageError);
    EXPECT_THROW(parse_budget("latency=fast"), UsageError);
    EXPECT_THROW(parse_budget("latency=3h"), UsageError);
    EXPECT_THROW(parse_budget("params=3x"), UsageError);
}

// A predictor file predicts what the predictor in memory does (mean and sd to the last bit:
// the same stored numbers, the Cholesky factor rebuilt from the same points).
TEST(PredictorFile, RoundTrip) {
    test::TempDir dir;
    const ViTConfig c = tiny_elastic();
    Predictor p = fit_predictor(synthetic_table(c, 25, 8), c, {"accuracy", "latency_ms"}, GPNASOptions{});
    p.model_path = "elastic.h5";
    p.model_checksum = 0x1234;
    save_predictor(dir / "p.h5", p);
    const Predictor q = load_predictor(dir / "p.h5");
    EXPECT_EQ(q.archs, p.archs);
    EXPECT_EQ(q.model_checksum, 0x1234u);
    ASSERT_EQ(q.targets.size(), 2u);
    Rng rng(9);
    for (int k = 0; k < 20; ++k) {
        const Active a = sample_arch(c, rng);
        for (int t = 0; t < 2; ++t) {
            double s1 = 0, s2 = 0;
            EXPECT_EQ(p.predict(t, a, &s1), q.predict(t, a, &s2));
            EXPECT_EQ(s1, s2);
        }
    }
    // Not a predictor.
    {
        h5::File f = h5::File::create(dir / "x.h5");
        h5::set_attr(f, "/", "format", "something-else");
        f.close();
    }
    EXPECT_NE(error_of([&] { load_predictor(dir / "x.h5"); }).find("not a ufo predictor file"), std::string::npos);
}
