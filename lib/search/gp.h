// gp.h — the GP-NAS predictor (Gaussian process NAS, as PaddleSlim implements it): a linear mean
// fitted by least squares plus a Gaussian process on its residual, with the exponential kernel
//     k(x, x') = s · exp(−‖x − x'‖₂ / l)
// and independent noise s·g on the measured values. The length scale l and the noise ratio g
// are chosen by maximising the marginal likelihood (type-II maximum likelihood) with the signal
// variance s profiled out, or given fixed. Double precision throughout: the kernel matrix of
// close architectures is nearly singular and float loses its Cholesky factor.
//
// Shapes: X is [n, d] row-major (one architecture per row), y is [n].
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace ufo {

struct GPHyper {
    double length = 1.0;   // l
    double noise = 1e-3;   // g: noise variance as a fraction of the signal variance
    double signal = 1.0;   // s: signal variance (of the standardised residual)
};

// A Gaussian process on residuals r (zero prior mean). With K₁ = exp(−D/l) + g·I (D the matrix
// of distances) the covariance of r is s·K₁; the mean needs alpha = K₁⁻¹ r, the variance the
// Cholesky factor of K₁.
struct GaussianProcess {
    int n = 0, d = 0;
    GPHyper hyper;
    std::vector<double> X;       // [n, d] training inputs
    std::vector<double> alpha;   // [n]    K₁⁻¹ r
    std::vector<double> chol;    // [n, n] lower Cholesky factor of K₁ (row-major, upper part 0)

    // Posterior mean at x [d]; with var, the posterior variance of the latent function
    // (without the measurement noise).
    double predict(const double* x, double* var = nullptr) const;
};

// Fits with fixed hyperparameters. Throws ufo::Error when K is not positive definite.
GaussianProcess gp_fit(const double* X, int n, int d, const double* r, const GPHyper& h);

// log p(r | X, l, g, s) with s set to its maximising value rᵀ(K₁)⁻¹r / n (K₁ = exp(−D/l) + g·I),
// which *s receives. -inf when K₁ is not positive definite.
double gp_profiled_log_likelihood(const double* X, int n, int d, const double* r, double length, double noise,
                                  double* signal);

// The leave-one-out predictive log-likelihood at (l, g), s profiled out (which *signal receives).
double gp_loo_log_likelihood(const double* X, int n, int d, const double* r, double length, double noise,
                             double* signal);

// How the hyperparameters are chosen: the marginal likelihood of the measured residuals, or
// the leave-one-out predictive likelihood (each point predicted from all the others; closed
// form from K₁⁻¹), which rewards prediction away from the points rather than fit at them.
enum class HyperCriterion { marginal, loo };

// The best l ∈ [0.01, 100] and g ∈ [1e-6, 10] (log scale) by the criterion, with s profiled out:
// a coarse grid, then two finer grids around the best point. Deterministic. *score receives the
// maximised criterion.
GPHyper gp_fit_hyper(const double* X, int n, int d, const double* r,
                     HyperCriterion c = HyperCriterion::marginal, double* score = nullptr);

// Least squares with an intercept: w [d+1] (intercept last) minimising ‖[X 1]w − y‖ with the
// minimum norm when the columns are dependent (LAPACK dgelsd).
std::vector<double> least_squares(const double* X, int n, int d, const double* y);

struct GPNASOptions {
    bool gp = true;               // false: the plain linear model
    bool fit_hyper = true;        // false: use `fixed`
    HyperCriterion criterion = HyperCriterion::marginal;
    GPHyper fixed{12.0, 1e-7, 1.0};   // PaddleSlim's kernel length and λ (used when !fit_hyper)
};

// The whole predictor of one target: y is standardised (mean, scale), a linear mean is fitted by
// least squares, then a GP on the residual.
struct GPNASModel {
    int d = 0;
    double y_mean = 0, y_scale = 1;
    std::vector<double> w;        // [d+1] linear mean on standardised y, intercept last
    bool has_gp = false;
    GaussianProcess gp;
    double log_ml = 0;            // marginal log-likelihood of the residual GP (0 without one)
    std::string fitted_by;        // "marginal", "loo" or "fixed" (empty without a GP)

    // Prediction in the target's units; with sd, the predictive standard deviation of a
    // measurement there: the GP's posterior variance plus its fitted noise (s·g). The linear
    // mean's own uncertainty is not included; the linear model alone reports 0.
    double predict(const double* x, double* sd = nullptr) const;
};

GPNASModel gpnas_fit(const double* X, int n, int d, const double* y, const GPNASOptions& o);

}  // namespace ufo
