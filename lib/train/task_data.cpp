// task_data.cpp — epoch order, augmented batches, input statistics.
#include "train/task_data.h"

#include "base/common.h"
#include "base/rng.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace ufo {

void TaskData::load(const std::string& n, const std::string& tp, const std::string& vp, int b) {
    name = n;
    train_path = tp;
    val_path = vp;
    batch = b;
    train = load_dataset(tp);
    if (!vp.empty()) val = load_dataset(vp);
    steps_per_epoch = train.n / batch;
    perm_.resize(size_t(train.n));
    perm_epoch_ = -1;
}

void TaskData::fill_batch(int t, int64_t step, uint64_t seed, const AugmentConfig& aug, uint8_t* img, int32_t* lab,
                          int64_t* indices) {
    const int B = batch;
    const int64_t epoch = step / steps_per_epoch, k = step % steps_per_epoch;
    if (epoch != perm_epoch_) {   // the order of an epoch depends only on (seed, task, epoch)
        std::iota(perm_.begin(), perm_.end(), 0);
        Rng r(mix_seed(seed, 0x5eed + uint64_t(t), uint64_t(epoch)));
        for (int64_t i = train.n - 1; i > 0; --i) std::swap(perm_[size_t(i)], perm_[r.below(uint64_t(i) + 1)]);
        perm_epoch_ = epoch;
    }
    const Dataset& d = train;
    const size_t isz = d.image_size();
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; ++b) {
        const int64_t idx = perm_[size_t(k * B + b)];
        lab[b] = d.labels[size_t(idx)];
        if (indices) indices[b] = idx;
        if (aug.any())
            augment_image(img + b * isz, d.image(idx), d.h, d.w, d.c, aug,
                          mix_seed(seed, 0xa06 + uint64_t(t), uint64_t(step), uint64_t(b)));
        else
            std::copy(d.image(idx), d.image(idx) + isz, img + b * isz);
    }
}

namespace {
// Per-channel mean and std of one dataset's pixels in [0,1].
void channel_stats(const Dataset& ds, std::vector<float>& mean, std::vector<float>& stdv) {
    std::vector<double> s(ds.c, 0.0), ss(ds.c, 0.0);
    const size_t n = ds.images.size();
    for (size_t i = 0; i < n; ++i) {
        double v = ds.images[i] / 255.0;
        s[i % ds.c] += v;
        ss[i % ds.c] += v * v;
    }
    mean.resize(ds.c);
    stdv.resize(ds.c);
    const double cnt = double(n / ds.c);
    for (int c = 0; c < ds.c; ++c) {
        double m = s[c] / cnt, var = ss[c] / cnt - m * m;
        mean[c] = float(m);
        stdv[c] = float(std::sqrt(std::max(var, 1e-6)));
    }
}
}  // namespace

void input_stats(const std::vector<TaskData>& runs, std::vector<float>& mean, std::vector<float>& stdv) {
    const int C = runs[0].train.c;
    std::vector<double> s(C, 0.0), ss(C, 0.0);
    double cnt = 0;
    for (const auto& r : runs) {
        std::vector<float> m, sd;
        channel_stats(r.train, m, sd);
        const double n = double(r.train.n);
        for (int c = 0; c < C; ++c) {
            s[c] += n * m[c];
            ss[c] += n * (double(sd[c]) * sd[c] + double(m[c]) * m[c]);
        }
        cnt += n;
    }
    mean.resize(C);
    stdv.resize(C);
    for (int c = 0; c < C; ++c) {
        const double m = s[c] / cnt;
        mean[c] = float(m);
        stdv[c] = float(std::sqrt(std::max(ss[c] / cnt - m * m, 1e-6)));
    }
}

}  // namespace ufo
