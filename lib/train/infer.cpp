// infer.cpp — batched prediction and evaluation.
#include "train/infer.h"

#include "base/common.h"
#include "dist/process_group.h"

#include <algorithm>
#include <cmath>

namespace ufo {

void predict_batches(const Network& m, DataParallel& dp, const uint8_t* images, int64_t n, const Active& a,
                     const std::function<void(int64_t, int, const float*)>& on_batch) {
    const size_t img = m.spec().image_size();
    for (int64_t i = 0; i < n; i += dp.max_batch()) {
        int B = int(std::min<int64_t>(dp.max_batch(), n - i));
        dp.forward(m, images + size_t(i) * img, B, a);
        on_batch(i, B, dp.probs());
    }
}

namespace {
// Cross-entropy sum and top-1 hits over rows [first, first + n) of ds.
void eval_rows(const Network& m, DataParallel& dp, const Dataset& ds, int64_t first, int64_t n, const Active& a,
               double& loss, int64_t& right) {
    const int K = m.spec().tasks[a.task].num_classes;
    predict_batches(m, dp, ds.images.data() + size_t(first) * ds.image_size(), n, a,
                    [&](int64_t at, int B, const float* probs) {
                        for (int b = 0; b < B; ++b) {
                            const float* p = probs + size_t(b) * K;
                            const int y = ds.labels[first + at + b];
                            loss -= std::log(std::max(p[y], 1e-30f));
                            if (int(std::max_element(p, p + K) - p) == y) ++right;
                        }
                    });
}

EvalResult finish(double loss, int64_t right, int64_t n) {
    EvalResult r;
    r.n = n;
    r.loss = n ? loss / n : 0.0;
    r.accuracy = n ? double(right) / n : 0.0;
    return r;
}
}  // namespace

EvalResult evaluate(const Network& m, DataParallel& dp, const Dataset& ds, const Active& a) {
    double loss = 0.0;
    int64_t right = 0;
    eval_rows(m, dp, ds, 0, ds.n, a, loss, right);
    return finish(loss, right, ds.n);
}

EvalResult evaluate_across_processes(const Network& m, DataParallel& dp, const Dataset& ds, const Active& a) {
    if (dist::size() == 1) return evaluate(m, dp, ds, a);
    // Process r takes rows [n r / P, n (r + 1) / P), computed in 64 bits.
    const int64_t n = ds.n, P = dist::size(), r = dist::rank();
    const int64_t first = n * r / P, count = n * (r + 1) / P - first;
    double sums[2] = {0.0, 0.0};
    int64_t right = 0;
    if (count > 0) eval_rows(m, dp, ds, first, count, a, sums[0], right);
    sums[1] = double(right);
    dist::sum(sums, 2);
    return finish(sums[0], int64_t(sums[1]), n);
}

void check_fits(const NetSpec& cfg, const Dataset& ds, const std::string& where) {
    if (ds.h != cfg.img_h || ds.w != cfg.img_w || ds.c != cfg.img_c)
        fail(where, "images are " + std::to_string(ds.h) + "x" + std::to_string(ds.w) + "x" + std::to_string(ds.c) +
                        " but the model takes " + std::to_string(cfg.img_h) + "x" + std::to_string(cfg.img_w) + "x" +
                        std::to_string(cfg.img_c));
}

}  // namespace ufo
