// data_parallel.cpp — a batch split across threads, gradients summed in shard order.
#include "train/data_parallel.h"

#include "layers/blas.h"
#include "base/common.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <exception>

namespace ufo {

DataParallel::DataParallel(const Model& m, int max_batch, bool training) : cfg_(m.cfg), max_batch_(max_batch) {
    const ViTConfig& cfg = m.cfg;
    if (max_batch < 1) fail("", "batch size must be at least 1");
    const int n = std::max(1, std::min(get_threads(), max_batch));
    omp_set_max_active_levels(1);   // a shard's kernels stay on its thread, whatever OMP_NESTED says
    int max_classes = 0;
    for (const auto& t : cfg.tasks) max_classes = std::max(max_classes, t.num_classes);
    const int per_shard = n == 1 ? max_batch : (max_batch + n - 1) / n;
    shards_.resize(size_t(n));
    for (int s = 0; s < n; ++s) {
        Shard& sh = shards_[size_t(s)];
        sh.act.allocate(cfg, per_shard, training);
        if (training && s > 0) {   // shard 0 writes into the model's own gradients
            sh.grads.assign(m.params.size(), 0.0f);
            sh.grad_ptrs = param_ptrs(cfg, m.layout, sh.grads.data());
        }
    }
    if (n > 1) probs_buf_.resize(size_t(max_batch) * max_classes);
    if (training && cfg.is_supernet()) d_gates_.resize(size_t(cfg.depth) * max_batch * 2);
}

int DataParallel::shards(int B) const { return std::max(1, std::min(int(shards_.size()), B)); }

ShardRows shard_rows(int s, int n, int B) {
    const int base = B / n, extra = B % n;
    return {s * base + std::min(s, extra), base + (s < extra ? 1 : 0)};
}

void DataParallel::set_active(const Active& a, int shard, int B) {
    Shard& sh = shards_[size_t(shard)];
    sh.active = a;   // assignment reuses the vectors' capacity after the first step
    if (!a.gates) return;
    const ShardRows r = rows(shard, B);
    sh.gates.resize(size_t(cfg_.depth) * r.count * 2);
    for (int l = 0; l < cfg_.depth; ++l)
        std::memcpy(sh.gates.data() + size_t(l) * r.count * 2, a.gates + (size_t(l) * B + r.first) * 2,
                    sizeof(float) * 2 * r.count);
    sh.active.gates = sh.gates.data();
}

template <class F>
void DataParallel::run_shards(int n, F&& body) {
#pragma omp parallel num_threads(n)
    {
        const int s = omp_get_thread_num();
        shards_[size_t(s)].error = nullptr;
        try {
            body(s);
        } catch (...) {
            shards_[size_t(s)].error = std::current_exception();
        }
    }
    for (int s = 0; s < n; ++s)
        if (shards_[size_t(s)].error) std::rethrow_exception(shards_[size_t(s)].error);
}

void DataParallel::forward(const Model& m, const uint8_t* images, int B, const Active& a) {
    if (B < 1 || B > max_batch_) fail("", "batch of " + std::to_string(B) + " rows exceeds the buffers");
    const int n = shards(B);
    if (n == 1) {
        m.forward(shards_[0].act, images, B, a);
        probs_ = shards_[0].act.probs;
        return;
    }
    const size_t img = size_t(cfg_.img_h) * cfg_.img_w * cfg_.img_c;
    const int K = m.cfg.tasks[size_t(a.task)].num_classes;
    run_shards(n, [&](int s) {
        const ShardRows r = rows(s, B);
        m.forward(shards_[size_t(s)].act, images + size_t(r.first) * img, r.count, a);
        std::memcpy(probs_buf_.data() + size_t(r.first) * K, shards_[size_t(s)].act.probs, sizeof(float) * r.count * K);
    });
    probs_ = probs_buf_.data();
}

StepResult DataParallel::train_step(Model& m, const uint8_t* images, const int32_t* labels, int B, const Active& a,
                                    float smoothing, float loss_scale) {
    if (B < 1 || B > max_batch_) fail("", "batch of " + std::to_string(B) + " rows exceeds the buffers");
    m.enable_grads();
    const int K = m.cfg.tasks[size_t(a.task)].num_classes;
    const int n = shards(B);
    StepResult res;
    if (n == 1) {
        m.forward(shards_[0].act, images, B, a);
        res.loss = m.loss(shards_[0].act, labels, B, K, smoothing, true, loss_scale, &res.correct);
        m.backward(shards_[0].act, B, a);
        probs_ = shards_[0].act.probs;
        if (a.gates) std::memcpy(d_gates_.data(), shards_[0].act.d_gates, sizeof(float) * cfg_.depth * B * 2);
        return res;
    }
    if (shards_[1].grads.empty()) fail("", "data-parallel buffers were allocated for inference");
    const size_t img = size_t(cfg_.img_h) * cfg_.img_w * cfg_.img_c;
    for (int s = 0; s < n; ++s) set_active(a, s, B);
    run_shards(n, [&](int s) {
        const ShardRows r = rows(s, B);
        Shard& sh = shards_[size_t(s)];
        m.forward(sh.act, images + size_t(r.first) * img, r.count, sh.active);
        // d_logits of a shard carry 1/B, not 1/rows: the shards' gradients sum to the batch mean.
        sh.loss = m.loss(sh.act, labels + r.first, r.count, K, smoothing, true, loss_scale * float(r.count) / float(B),
                         &sh.correct);
        m.backward(sh.act, r.count, sh.active, s == 0 ? m.g : sh.grad_ptrs);
        std::memcpy(probs_buf_.data() + size_t(r.first) * K, sh.act.probs, sizeof(float) * r.count * K);
        if (a.gates)
            for (int l = 0; l < cfg_.depth; ++l)
                std::memcpy(d_gates_.data() + (size_t(l) * B + r.first) * 2, sh.act.d_gates + size_t(l) * r.count * 2,
                            sizeof(float) * 2 * r.count);
    });
    // Sum the other shards into the model's gradients, in shard order, and re-zero them.
    float* out = m.grads.data();
    const long size = long(m.grads.size());
#pragma omp parallel for schedule(static)
    for (long i = 0; i < size; ++i) {
        float acc = out[i];
        for (int s = 1; s < n; ++s) {
            float& gs = shards_[size_t(s)].grads[size_t(i)];
            acc += gs;
            gs = 0.0f;
        }
        out[i] = acc;
    }
    double total = 0.0;
    for (int s = 0; s < n; ++s) {
        total += double(shards_[size_t(s)].loss) * rows(s, B).count;
        res.correct += shards_[size_t(s)].correct;
    }
    res.loss = float(total / B);
    probs_ = probs_buf_.data();
    return res;
}

}  // namespace ufo
