// gp.cpp — GP-NAS: least-squares linear mean, exponential-kernel GP on the residual, type-II
// maximum likelihood for its length scale and noise (LAPACK Cholesky in double precision).
#include "search/gp.h"

#include "base/common.h"

#include <lapacke.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace ufo {

namespace {

constexpr double kLog2Pi = 1.8378770664093453;

double distance(const double* a, const double* b, int d) {
    double s = 0;
    for (int k = 0; k < d; ++k) s += (a[k] - b[k]) * (a[k] - b[k]);
    return std::sqrt(s);
}

// D [n, n]: pairwise distances of the rows of X [n, d].
std::vector<double> distances(const double* X, int n, int d) {
    std::vector<double> D(size_t(n) * n, 0.0);
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < i; ++j)
            D[size_t(i) * n + j] = D[size_t(j) * n + i] = distance(X + size_t(i) * d, X + size_t(j) * d, d);
    return D;
}

// The median over points of the distance to the nearest other point at a positive distance
// (repeated points are skipped); 0.01 when there is none.
double median_nearest_distance(const std::vector<double>& D, int n) {
    std::vector<double> nn;
    for (int i = 0; i < n; ++i) {
        double m = std::numeric_limits<double>::infinity();
        for (int j = 0; j < n; ++j)
            if (j != i && D[size_t(i) * n + j] > 0) m = std::min(m, D[size_t(i) * n + j]);
        if (std::isfinite(m)) nn.push_back(m);
    }
    if (nn.empty()) return 0.01;
    std::nth_element(nn.begin(), nn.begin() + ptrdiff_t(nn.size() / 2), nn.end());
    return nn[nn.size() / 2];
}

// L [n, n] <- lower Cholesky factor of exp(−D/l) + g·I; false when not positive definite.
bool kernel_cholesky(std::vector<double>& L, const std::vector<double>& D, int n, double length, double noise) {
    L.assign(size_t(n) * n, 0.0);
    for (int i = 0; i < n; ++i)
        for (int j = 0; j <= i; ++j)
            L[size_t(i) * n + j] = std::exp(-D[size_t(i) * n + j] / length) + (i == j ? noise : 0.0);
    return LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', n, L.data(), n) == 0;
}

// x [n] <- K⁻¹ b given K's lower Cholesky factor.
void cholesky_solve(const std::vector<double>& L, int n, const double* b, double* x) {
    std::copy(b, b + n, x);
    LAPACKE_dpotrs(LAPACK_ROW_MAJOR, 'L', n, 1, L.data(), n, x, 1);
}

// log p(r) of N(0, s·K₁) at the profiled s = rᵀK₁⁻¹r / n, given K₁'s Cholesky factor.
double profiled_log_likelihood(const std::vector<double>& L, int n, const double* r, double* signal) {
    std::vector<double> a(static_cast<size_t>(n));
    cholesky_solve(L, n, r, a.data());
    double quad = 0, logdet = 0;
    for (int i = 0; i < n; ++i) {
        quad += r[i] * a[size_t(i)];
        logdet += 2.0 * std::log(L[size_t(i) * n + i]);
    }
    // A residual of exactly zero (a perfect linear fit) has no scale to estimate: floor s.
    const double s = std::max(quad / n, 1e-12);
    if (signal) *signal = s;
    return -0.5 * n * std::log(s) - 0.5 * logdet - 0.5 * n * (1.0 + kLog2Pi);
}

// The leave-one-out predictive log-likelihood of r under N(0, s·K₁) (Rasmussen & Williams
// §5.4.2): with alpha = K₁⁻¹ r, row i left out predicts r_i − alpha_i / [K₁⁻¹]_ii with variance
// s / [K₁⁻¹]_ii. s is profiled out: s = Σ alpha_i² / [K₁⁻¹]_ii / n.
double loo_log_likelihood(const std::vector<double>& L, int n, const double* r, double* signal) {
    std::vector<double> a(static_cast<size_t>(n)), inv = L;
    cholesky_solve(L, n, r, a.data());
    if (LAPACKE_dpotri(LAPACK_ROW_MAJOR, 'L', n, inv.data(), n) != 0) return -std::numeric_limits<double>::infinity();
    double quad = 0, logdiag = 0;
    for (int i = 0; i < n; ++i) {
        const double kii = inv[size_t(i) * n + i];
        quad += a[size_t(i)] * a[size_t(i)] / kii;
        logdiag += std::log(kii);
    }
    const double s = std::max(quad / n, 1e-12);
    if (signal) *signal = s;
    return -0.5 * n * std::log(s) + 0.5 * logdiag - 0.5 * n * (1.0 + kLog2Pi);
}

}  // namespace

double GaussianProcess::predict(const double* x, double* var) const {
    std::vector<double> k(static_cast<size_t>(n));
    double mean = 0;
    for (int i = 0; i < n; ++i) {
        k[size_t(i)] = std::exp(-distance(x, X.data() + size_t(i) * d, d) / hyper.length);
        mean += k[size_t(i)] * alpha[size_t(i)];
    }
    if (var) {
        // v = L⁻¹ k; var = s·(1 − vᵀv)
        LAPACKE_dtrtrs(LAPACK_ROW_MAJOR, 'L', 'N', 'N', n, 1, chol.data(), n, k.data(), 1);
        double vv = 0;
        for (double v : k) vv += v * v;
        *var = std::max(0.0, hyper.signal * (1.0 - vv));
    }
    return mean;
}

GaussianProcess gp_fit(const double* X, int n, int d, const double* r, const GPHyper& h) {
    if (n < 1 || d < 1) fail("", "internal error: a Gaussian process needs at least one point and one feature");
    if (!(h.length > 0) || !(h.noise >= 0) || !(h.signal > 0))
        fail("", "internal error: Gaussian-process hyperparameters must be positive");
    GaussianProcess gp;
    gp.n = n;
    gp.d = d;
    gp.hyper = h;
    gp.X.assign(X, X + size_t(n) * d);
    const std::vector<double> D = distances(X, n, d);
    if (!kernel_cholesky(gp.chol, D, n, h.length, h.noise))
        fail("", "the kernel matrix is not positive definite (length scale " + std::to_string(h.length) + ", noise " +
                     std::to_string(h.noise) + "): give a larger noise");
    gp.alpha.resize(size_t(n));
    cholesky_solve(gp.chol, n, r, gp.alpha.data());
    return gp;
}

namespace {
// A criterion at (l, g) on fresh distances; -inf when K₁ is not positive definite.
double criterion_at(const double* X, int n, int d, const double* r, double length, double noise, double* signal,
                    HyperCriterion c) {
    const std::vector<double> D = distances(X, n, d);
    std::vector<double> L;
    if (!kernel_cholesky(L, D, n, length, noise)) return -std::numeric_limits<double>::infinity();
    return c == HyperCriterion::marginal ? profiled_log_likelihood(L, n, r, signal) : loo_log_likelihood(L, n, r, signal);
}
}  // namespace

double gp_profiled_log_likelihood(const double* X, int n, int d, const double* r, double length, double noise,
                                  double* signal) {
    return criterion_at(X, n, d, r, length, noise, signal, HyperCriterion::marginal);
}

double gp_loo_log_likelihood(const double* X, int n, int d, const double* r, double length, double noise,
                             double* signal) {
    return criterion_at(X, n, d, r, length, noise, signal, HyperCriterion::loo);
}

GPHyper gp_fit_hyper(const double* X, int n, int d, const double* r, HyperCriterion c, double* score) {
    const std::vector<double> D = distances(X, n, d);
    std::vector<double> L;
    // Search in log10 space: l from the median distance of a point to its nearest other point
    // up to 100, g from almost exact interpolation (1e-6) to a residual that is mostly noise (10).
    // A length scale below the nearest-neighbour distance makes exp(−D/l) nearly the identity,
    // which the likelihood cannot tell from noise (K₁ ≈ (1 + g)·I either way): on measured tables
    // the maximum then often lies there, and such a GP predicts nothing away from its points.
    const double lo_l = std::max(-2.0, std::log10(median_nearest_distance(D, n))), hi_l = 2, lo_g = -6, hi_g = 1;
    double best = -std::numeric_limits<double>::infinity(), best_l = 0, best_g = -3, best_s = 1;
    auto try_point = [&](double ll, double lg) {
        ll = std::clamp(ll, lo_l, hi_l);
        lg = std::clamp(lg, lo_g, hi_g);
        if (!kernel_cholesky(L, D, n, std::pow(10.0, ll), std::pow(10.0, lg))) return;
        double s = 1;
        const double v = c == HyperCriterion::marginal ? profiled_log_likelihood(L, n, r, &s)
                                                       : loo_log_likelihood(L, n, r, &s);
        // Ties keep the first point, so the result does not depend on floating-point noise
        // between equally good points more than it must.
        if (v > best) { best = v; best_l = ll; best_g = lg; best_s = s; }
    };
    for (double ll = lo_l; ll <= hi_l + 0.2 - 1e-9; ll += 0.2)
        for (double lg = lo_g; lg <= hi_g + 1e-9; lg += 0.5) try_point(ll, lg);
    for (double step_l : {0.05, 0.0125}) {
        const double step_g = step_l * 2.5, cl = best_l, cg = best_g;
        for (int i = -4; i <= 4; ++i)
            for (int j = -4; j <= 4; ++j) try_point(cl + i * step_l, cg + j * step_g);
    }
    if (!std::isfinite(best)) fail("", "no length scale and noise make the kernel matrix positive definite");
    if (score) *score = best;
    return GPHyper{std::pow(10.0, best_l), std::pow(10.0, best_g), best_s};
}

std::vector<double> least_squares(const double* X, int n, int d, const double* y) {
    const int m = d + 1, rows = std::max(n, m);
    std::vector<double> A(size_t(n) * m), b(size_t(rows), 0.0), sv(size_t(std::min(n, m)));
    for (int i = 0; i < n; ++i) {
        std::copy(X + size_t(i) * d, X + size_t(i + 1) * d, A.begin() + ptrdiff_t(size_t(i) * m));
        A[size_t(i) * m + d] = 1.0;
        b[size_t(i)] = y[i];
    }
    lapack_int rank = 0;
    // Singular values below 1e-10 of the largest count as zero: columns that never vary (a
    // block every row has at full width) or always vary together get the minimum-norm split.
    if (LAPACKE_dgelsd(LAPACK_ROW_MAJOR, n, m, 1, A.data(), m, b.data(), 1, sv.data(), 1e-10, &rank) != 0)
        fail("", "the least-squares fit of the linear mean did not converge");
    b.resize(size_t(m));
    return b;
}

double GPNASModel::predict(const double* x, double* sd) const {
    double z = w[size_t(d)];
    for (int k = 0; k < d; ++k) z += w[size_t(k)] * x[k];
    double var = 0;
    if (has_gp) {
        z += gp.predict(x, sd ? &var : nullptr);
        var += gp.hyper.signal * gp.hyper.noise;   // a measurement's spread, not only the mean's
    }
    if (sd) *sd = y_scale * std::sqrt(var);
    return y_mean + y_scale * z;
}

GPNASModel gpnas_fit(const double* X, int n, int d, const double* y, const GPNASOptions& o) {
    if (n < 2) fail("", "a predictor needs at least 2 measured sub-networks");
    GPNASModel m;
    m.d = d;
    double mean = 0;
    for (int i = 0; i < n; ++i) mean += y[i];
    mean /= n;
    double var = 0;
    for (int i = 0; i < n; ++i) var += (y[i] - mean) * (y[i] - mean);
    var /= n;
    m.y_mean = mean;
    // A constant column standardises with scale 1 (it has no spread to divide by).
    m.y_scale = var > 0 ? std::sqrt(var) : 1.0;
    std::vector<double> z(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) z[size_t(i)] = (y[i] - mean) / m.y_scale;
    m.w = least_squares(X, n, d, z.data());
    if (!o.gp) return m;
    std::vector<double> r(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
        double f = m.w[size_t(d)];
        for (int k = 0; k < d; ++k) f += m.w[size_t(k)] * X[size_t(i) * d + k];
        r[size_t(i)] = z[size_t(i)] - f;
    }
    GPHyper h = o.fixed;
    m.fitted_by = !o.fit_hyper ? "fixed" : o.criterion == HyperCriterion::loo ? "loo" : "marginal";
    if (o.fit_hyper) {
        h = gp_fit_hyper(X, n, d, r.data(), o.criterion);
        m.log_ml = gp_profiled_log_likelihood(X, n, d, r.data(), h.length, h.noise, nullptr);
    } else {
        double s = 1;
        m.log_ml = gp_profiled_log_likelihood(X, n, d, r.data(), h.length, h.noise, &s);
        h.signal = s;
    }
    m.gp = gp_fit(X, n, d, r.data(), h);
    m.has_gp = true;
    return m;
}

}  // namespace ufo
