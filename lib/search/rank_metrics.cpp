// rank_metrics.cpp — Kendall τ-b, Spearman ρ, RMSE and k-fold assignment.
#include "search/rank_metrics.h"

#include "base/common.h"
#include "base/rng.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace ufo {

namespace {
void check_pair(const std::vector<double>& a, const std::vector<double>& b) {
    if (a.size() != b.size()) fail("", "internal error: rank metrics of vectors of different lengths");
}
int sign(double x) { return (x > 0) - (x < 0); }
}  // namespace

double kendall_tau(const std::vector<double>& a, const std::vector<double>& b) {
    check_pair(a, b);
    const size_t n = a.size();
    double concordant = 0, discordant = 0, tied_a = 0, tied_b = 0;
    for (size_t i = 0; i < n; ++i)
        for (size_t j = i + 1; j < n; ++j) {
            const int s = sign(a[i] - a[j]) * sign(b[i] - b[j]);
            if (a[i] == a[j]) tied_a += 1;
            if (b[i] == b[j]) tied_b += 1;
            if (s > 0) concordant += 1;
            if (s < 0) discordant += 1;
        }
    const double pairs = double(n) * double(n - (n > 0)) / 2.0;
    const double den = std::sqrt((pairs - tied_a) * (pairs - tied_b));
    return den > 0 ? (concordant - discordant) / den : 0.0;
}

std::vector<double> average_ranks(const std::vector<double>& v) {
    std::vector<size_t> order(v.size());
    std::iota(order.begin(), order.end(), size_t(0));
    std::stable_sort(order.begin(), order.end(), [&](size_t i, size_t j) { return v[i] < v[j]; });
    std::vector<double> rank(v.size());
    for (size_t i = 0; i < order.size();) {
        size_t j = i;
        while (j + 1 < order.size() && v[order[j + 1]] == v[order[i]]) ++j;
        const double r = (double(i) + double(j)) / 2.0 + 1.0;   // ranks i+1..j+1 share their mean
        for (size_t k = i; k <= j; ++k) rank[order[k]] = r;
        i = j + 1;
    }
    return rank;
}

double spearman_rho(const std::vector<double>& a, const std::vector<double>& b) {
    check_pair(a, b);
    const std::vector<double> ra = average_ranks(a), rb = average_ranks(b);
    const double n = double(a.size());
    if (n < 2) return 0.0;
    const double ma = std::accumulate(ra.begin(), ra.end(), 0.0) / n, mb = std::accumulate(rb.begin(), rb.end(), 0.0) / n;
    double sab = 0, saa = 0, sbb = 0;
    for (size_t i = 0; i < ra.size(); ++i) {
        sab += (ra[i] - ma) * (rb[i] - mb);
        saa += (ra[i] - ma) * (ra[i] - ma);
        sbb += (rb[i] - mb) * (rb[i] - mb);
    }
    return saa > 0 && sbb > 0 ? sab / std::sqrt(saa * sbb) : 0.0;
}

double rmse(const std::vector<double>& a, const std::vector<double>& b) {
    check_pair(a, b);
    if (a.empty()) return 0.0;
    double s = 0;
    for (size_t i = 0; i < a.size(); ++i) s += (a[i] - b[i]) * (a[i] - b[i]);
    return std::sqrt(s / double(a.size()));
}

std::vector<int> kfold_assignment(int n, int k, uint64_t seed) {
    if (k < 2 || k > n) fail("", "internal error: k-fold needs 2 <= k <= n");
    std::vector<int> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    Rng rng(mix_seed(seed, 0x4B464F4C44));   // Fisher-Yates with our portable generator
    for (int i = n - 1; i > 0; --i) std::swap(order[size_t(i)], order[rng.below(uint64_t(i) + 1)]);
    std::vector<int> fold(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) fold[size_t(order[size_t(i)])] = i % k;
    return fold;
}

}  // namespace ufo
