// data_parallel.cpp — a batch split across threads, gradients summed in shard order.
#include "data_parallel.h"

#include "blas.h"
#include "common.h"

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
    for (const auto& t : cfg.tasks) max_classes_ = std::max(max_classes_, t.num_classes);
    const int per_shard = n == 1 ? max_batch : (max_batch + n - 1) / n;
    acts_.resize(size_t(n));
    for (auto& a : acts_) a.allocate(cfg, per_shard, training);
    if (n > 1) probs_buf_.resize(size_t(max_batch) * max_classes_);
    if (training && n > 1) {
        grads_.resize(size_t(n));          // entry 0 unused: shard 0 writes into the model's own
        grad_ptrs_.resize(size_t(n));
        for (int s = 1; s < n; ++s) {
            grads_[size_t(s)].assign(m.params.size(), 0.0f);
            grad_ptrs_[size_t(s)] = param_ptrs(cfg, m.layout, grads_[size_t(s)].data());
        }
        gates_.resize(size_t(n));
    }
    if (training && cfg.is_supernet()) d_gates_.resize(size_t(cfg.depth) * max_batch * 2);
}

int DataParallel::shards(int B) const { return std::max(1, std::min(int(acts_.size()), B)); }

ShardRows shard_rows(int s, int n, int B) {
    const int base = B / n, extra = B % n;
    return {s * base + std::min(s, extra), base + (s < extra ? 1 : 0)};
}

Active DataParallel::shard_active(const Active& a, int shard, int B) {
    Active s = a;
    if (!a.gates) return s;
    const ShardRows r = rows(shard, B);
    auto& g = gates_[size_t(shard)];
    g.resize(size_t(cfg_.depth) * r.count * 2);
    for (int l = 0; l < cfg_.depth; ++l)
        std::memcpy(g.data() + size_t(l) * r.count * 2, a.gates + (size_t(l) * B + r.first) * 2,
                    sizeof(float) * 2 * r.count);
    s.gates = g.data();
    return s;
}

namespace {

// Runs body(shard) on shards(B) threads; the first exception thrown by any shard is rethrown.
template <class F>
void run_shards(int n, F&& body) {
    std::vector<std::exception_ptr> err(static_cast<size_t>(n));
#pragma omp parallel num_threads(n)
    {
        const int s = omp_get_thread_num();
        try {
            body(s);
        } catch (...) {
            err[size_t(s)] = std::current_exception();
        }
    }
    for (auto& e : err)
        if (e) std::rethrow_exception(e);
}

}  // namespace

void DataParallel::forward(const Model& m, const uint8_t* images, int B, const Active& a) {
    if (B < 1 || B > max_batch_) fail("", "batch of " + std::to_string(B) + " rows exceeds the buffers");
    const int n = shards(B);
    if (n == 1) {
        m.forward(acts_[0], images, B, a);
        probs_ = acts_[0].probs;
        return;
    }
    const size_t img = size_t(cfg_.img_h) * cfg_.img_w * cfg_.img_c;
    const int K = m.cfg.tasks[size_t(a.task)].num_classes;
    run_shards(n, [&](int s) {
        const ShardRows r = rows(s, B);
        m.forward(acts_[size_t(s)], images + size_t(r.first) * img, r.count, a);
        std::memcpy(probs_buf_.data() + size_t(r.first) * K, acts_[size_t(s)].probs, sizeof(float) * r.count * K);
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
        m.forward(acts_[0], images, B, a);
        res.loss = m.loss(acts_[0], labels, B, K, smoothing, true, loss_scale, &res.correct);
        m.backward(acts_[0], B, a);
        probs_ = acts_[0].probs;
        if (a.gates) std::memcpy(d_gates_.data(), acts_[0].d_gates, sizeof(float) * cfg_.depth * B * 2);
        return res;
    }
    if (grads_.empty()) fail("", "data-parallel buffers were allocated for inference");
    const size_t img = size_t(cfg_.img_h) * cfg_.img_w * cfg_.img_c;
    std::vector<Active> act_of(static_cast<size_t>(n));
    for (int s = 0; s < n; ++s) act_of[size_t(s)] = shard_active(a, s, B);
    std::vector<float> loss(static_cast<size_t>(n));
    std::vector<int> correct(static_cast<size_t>(n));
    run_shards(n, [&](int s) {
        const ShardRows r = rows(s, B);
        Activations& act = acts_[size_t(s)];
        m.forward(act, images + size_t(r.first) * img, r.count, act_of[size_t(s)]);
        // d_logits of a shard carry 1/B, not 1/rows: the shards' gradients sum to the batch mean.
        loss[size_t(s)] = m.loss(act, labels + r.first, r.count, K, smoothing, true,
                                 loss_scale * float(r.count) / float(B), &correct[size_t(s)]);
        m.backward(act, r.count, act_of[size_t(s)], s == 0 ? m.g : grad_ptrs_[size_t(s)]);
        std::memcpy(probs_buf_.data() + size_t(r.first) * K, act.probs, sizeof(float) * r.count * K);
        if (a.gates)
            for (int l = 0; l < cfg_.depth; ++l)
                std::memcpy(d_gates_.data() + (size_t(l) * B + r.first) * 2, act.d_gates + size_t(l) * r.count * 2,
                            sizeof(float) * 2 * r.count);
    });
    // Sum the other shards into the model's gradients, in shard order, and re-zero them.
    float* out = m.grads.data();
    const long size = long(m.grads.size());
#pragma omp parallel for schedule(static)
    for (long i = 0; i < size; ++i) {
        float acc = out[i];
        for (int s = 1; s < n; ++s) {
            float& gs = grads_[size_t(s)][size_t(i)];
            acc += gs;
            gs = 0.0f;
        }
        out[i] = acc;
    }
    double total = 0.0;
    for (int s = 0; s < n; ++s) {
        total += double(loss[size_t(s)]) * rows(s, B).count;
        res.correct += correct[size_t(s)];
    }
    res.loss = float(total / B);
    probs_ = probs_buf_.data();
    return res;
}

}  // namespace ufo
