// infer.cpp — batched prediction and evaluation.
#include "train/infer.h"

#include "base/common.h"

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

EvalResult evaluate(const Network& m, DataParallel& dp, const Dataset& ds, const Active& a) {
    EvalResult r;
    const int K = m.spec().tasks[a.task].num_classes;
    double loss = 0.0;
    int64_t right = 0;
    predict_batches(m, dp, ds.images.data(), ds.n, a, [&](int64_t first, int B, const float* probs) {
        for (int b = 0; b < B; ++b) {
            const float* p = probs + size_t(b) * K;
            const int y = ds.labels[first + b];
            loss -= std::log(std::max(p[y], 1e-30f));
            if (int(std::max_element(p, p + K) - p) == y) ++right;
        }
    });
    r.n = ds.n;
    r.loss = ds.n ? loss / ds.n : 0.0;
    r.accuracy = ds.n ? double(right) / ds.n : 0.0;
    return r;
}

void check_fits(const NetSpec& cfg, const Dataset& ds, const std::string& where) {
    if (ds.h != cfg.img_h || ds.w != cfg.img_w || ds.c != cfg.img_c)
        fail(where, "images are " + std::to_string(ds.h) + "x" + std::to_string(ds.w) + "x" + std::to_string(ds.c) +
                        " but the model takes " + std::to_string(cfg.img_h) + "x" + std::to_string(cfg.img_w) + "x" +
                        std::to_string(cfg.img_c));
}

}  // namespace ufo
