// rank_metrics.h — how well predictions order and match measurements: Kendall's τ (τ-b, which
// corrects for ties), Spearman's ρ (Pearson correlation of average ranks) and RMSE, and the
// k-fold split they are measured on.
#pragma once
#include <cstdint>
#include <vector>

namespace ufo {

// τ-b = (C − D) / sqrt((n0 − n1)(n0 − n2)) over all pairs: C concordant, D discordant, n0 all
// pairs, n1 / n2 pairs tied in a / in b. 0 when either side is constant. O(n²): tables are small.
double kendall_tau(const std::vector<double>& a, const std::vector<double>& b);
// Ranks 1..n, tied values sharing the average of their ranks.
std::vector<double> average_ranks(const std::vector<double>& v);
double spearman_rho(const std::vector<double>& a, const std::vector<double>& b);
double rmse(const std::vector<double>& a, const std::vector<double>& b);

// fold[i] in 0..k-1 for each of n rows: a seeded shuffle dealt round-robin, so fold sizes differ
// by at most one and the split depends only on (n, k, seed).
std::vector<int> kfold_assignment(int n, int k, uint64_t seed);

}  // namespace ufo
