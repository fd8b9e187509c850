// data_parallel.cpp — a batch split across threads, gradients summed in shard order.
#include "train/data_parallel.h"

#include "base/common.h"
#include "layers/blas.h"
#include "nn/losses.h"
#include "nn/vit.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

namespace ufo {

DataParallel::DataParallel(const Network& net, int max_batch, bool training) : max_batch_(max_batch) {
    if (max_batch < 1) fail("", "batch size must be at least 1");
    if (auto* vit = dynamic_cast<const ViT*>(&net)) depth_ = vit->cfg.depth;
    max_classes_ = net.spec().max_classes();
    image_size_ = net.spec().image_size();
    num_floats_ = net.params.size();
    const int n = net.whole_batch() ? 1 : std::max(1, std::min(get_threads(), max_batch));
    omp_set_max_active_levels(1);   // a shard's kernels stay on its thread, whatever OMP_NESTED says
    int per_shard = n == 1 ? max_batch : (max_batch + n - 1) / n;
    if (!training) chunk_ = net.inference_chunk();
    if (chunk_ > 0 && chunk_ < per_shard) per_shard = chunk_;
    shards_.resize(size_t(n));
    for (int s = 0; s < n; ++s) {
        Shard& sh = shards_[size_t(s)];
        sh.ws = net.workspace(per_shard, training);
        if (training && s > 0) sh.grads.assign(num_floats_, 0.0f);   // shard 0 writes into the caller's
    }
    if (n > 1 || per_shard < max_batch) {   // rows gathered from shards or passes
        probs_buf_.resize(size_t(max_batch) * max_classes_);
        logits_buf_.resize(size_t(max_batch) * max_classes_);
    }
    if (training && depth_ > 0) d_gates_.resize(size_t(depth_) * max_batch * 2);
}

int DataParallel::shards(int B) const { return std::max(1, std::min(int(shards_.size()), B)); }

ShardRows shard_rows(int s, int n, int B) {
    const int base = B / n, extra = B % n;
    return {s * base + std::min(s, extra), base + (s < extra ? 1 : 0)};
}

void DataParallel::set_processes(int rank, int size) {
    if (size < 1 || rank < 0 || rank >= size) fail("", "internal error: process " + std::to_string(rank) + " of " + std::to_string(size));
    proc_rank_ = rank;
    proc_size_ = size;
    if (size > 1) {   // this process's rows are gathered at their batch positions
        probs_buf_.resize(size_t(max_batch_) * max_classes_);
        logits_buf_.resize(size_t(max_batch_) * max_classes_);
    }
}

void DataParallel::set_active(const Active& a, int shard, ShardRows r, int B, bool train) {
    Shard& sh = shards_[size_t(shard)];
    sh.active = a;   // assignment reuses the vectors' capacity after the first step
    sh.active.first_sample = a.first_sample + r.first;
    sh.active.train = train;
    if (!a.gates) return;
    sh.gates.resize(size_t(depth_) * r.count * 2);
    for (int l = 0; l < depth_; ++l)
        std::memcpy(sh.gates.data() + size_t(l) * r.count * 2, a.gates + (size_t(l) * B + r.first) * 2,
                    sizeof(float) * 2 * r.count);
    sh.active.gates = sh.gates.data();
}

template <class F>
void DataParallel::run_shards(int n, F&& body) {
    if (n == 1) {   // on the caller's thread: the kernels may use every thread
        shards_[0].error = nullptr;
        body(0);
        return;
    }
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

void DataParallel::pack_weights() {
    // UFO_PACK_WEIGHTS=0 keeps the plain kernels (to compare the two on one machine).
    if (const char* e = std::getenv("UFO_PACK_WEIGHTS"); e && std::string(e) == "0") return;
    for (Shard& sh : shards_)
        if (!sh.ws->training && !sh.ws->packed) sh.ws->packed = std::make_unique<PackedMatmuls>();
    batch1_ = ThreadChoice{};
    batch1_.all = depth_ > 0 ? get_threads() : 1;   // ViTs: their products are the packed ones
}

// A batch of one runs its kernels on all threads, which pays only where the products are large
// enough to split (2 cores: the reference ViT 1.75 against 2.21 ms on one thread, the small
// preset 0.77 against 0.43 ms), and every kernel then waits at its barrier for a thread that
// the OS may have given to another process. So the passes choose by measurement: 5 passes on
// each (alternating), the faster median wins for the next 500 passes, then they measure again,
// so that a change of load on the machine changes the choice. Both give the same logits bit
// for bit (tested), so the choice never shows in the output.
void DataParallel::forward_batch1(const Network& net, const uint8_t* images, const Active& a) {
    constexpr int kProbe = 5, kKeep = 500;
    ThreadChoice& c = batch1_;
    int threads = c.chosen;
    if (threads == 0) threads = (c.one.size() + c.many.size()) % 2 ? c.all : 1;
    if (threads != c.all) set_threads(threads);
    Active inference = a;
    inference.train = false;
    const auto t0 = std::chrono::steady_clock::now();
    try {
        net.forward(*shards_[0].ws, images, 1, inference);
    } catch (...) {
        if (threads != c.all) set_threads(c.all);
        throw;
    }
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (threads != c.all) set_threads(c.all);
    probs_ = shards_[0].ws->probs;
    logits_ = shards_[0].ws->logits;
    if (c.chosen == 0) {
        (threads == 1 ? c.one : c.many).push_back(dt);
        if (int(c.one.size()) == kProbe && int(c.many.size()) == kProbe) {
            auto median = [](std::vector<double> v) {
                std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
                return v[v.size() / 2];
            };
            c.chosen = median(c.one) <= median(c.many) ? 1 : c.all;
            c.left = kKeep;
            c.one.clear();
            c.many.clear();
        }
    } else if (--c.left == 0) {
        c.chosen = 0;
    }
}

void DataParallel::forward(const Network& net, const uint8_t* images, int B, const Active& a) {
    if (B < 1 || B > max_batch_) fail("", "batch of " + std::to_string(B) + " rows exceeds the buffers");
    const int n = shards(B);
    if (B == 1 && shards_[0].ws->packed && batch1_.all > 1) return forward_batch1(net, images, a);
    const int chunk = chunk_ > 0 ? chunk_ : B;   // images per pass
    if (n == 1 && B <= chunk) {
        Active inference = a;
        inference.train = false;
        net.forward(*shards_[0].ws, images, B, inference);
        probs_ = shards_[0].ws->probs;
        logits_ = shards_[0].ws->logits;
        return;
    }
    const int K = net.spec().tasks[size_t(a.task)].num_classes;
    run_shards(n, [&](int s) {
        const ShardRows r = rows(s, n, {0, B});
        Workspace& ws = *shards_[size_t(s)].ws;
        for (int done = 0; done < r.count; done += chunk) {   // the shard's rows, pass by pass
            const ShardRows part{r.first + done, std::min(chunk, r.count - done)};
            set_active(a, s, part, B, false);
            net.forward(ws, images + size_t(part.first) * image_size_, part.count, shards_[size_t(s)].active);
            std::memcpy(probs_buf_.data() + size_t(part.first) * K, ws.probs, sizeof(float) * part.count * K);
            std::memcpy(logits_buf_.data() + size_t(part.first) * K, ws.logits, sizeof(float) * part.count * K);
        }
    });
    probs_ = probs_buf_.data();
    logits_ = logits_buf_.data();
}

// Forward, loss and backward of shard s's rows. d_logits carry 1/B, not 1/rows: the shards'
// gradients sum to the batch mean.
void DataParallel::shard_step(Network& net, const uint8_t* images, const Targets& y, int B, int s, ShardRows r,
                              float* grads) {
    Shard& sh = shards_[size_t(s)];
    const Active& a = sh.active;
    const int K = net.spec().tasks[size_t(a.task)].num_classes, R = r.count;
    Workspace& ws = *sh.ws;
    net.forward(ws, images + size_t(r.first) * image_size_, R, a);
    const int32_t* lab = y.labels + r.first;
    const float scale = y.weight / float(B);
    std::memset(ws.d_logits, 0, sizeof(float) * size_t(R) * K);
    if (y.soft) {
        const float* pt = y.soft + size_t(r.first) * K;
        sh.soft_student.resize(size_t(R) * K);
        softmax_forward(sh.soft_student.data(), ws.logits, R, K, y.T);
        sh.loss = float(distill_loss_forward(nullptr, ws.probs, sh.soft_student.data(), pt, lab, R, K, y.alpha, y.T,
                                             y.smoothing));
        distill_loss_backward(ws.d_logits, ws.probs, sh.soft_student.data(), pt, lab, R, K, y.alpha, y.T, y.smoothing,
                              scale);
    } else {
        sh.loss = float(cross_entropy_forward(nullptr, ws.probs, lab, R, K, y.smoothing));
        cross_entropy_backward(ws.d_logits, ws.probs, lab, R, K, y.smoothing, scale);
    }
    sh.correct = count_correct(ws.probs, lab, R, K);
    net.backward(ws, R, a, s == 0 ? grads : sh.grads.data());
}

StepResult DataParallel::train_step(Network& net, const uint8_t* images, const Targets& y, int B, const Active& a,
                                    float* grads) {
    if (B < 1 || B > max_batch_) fail("", "batch of " + std::to_string(B) + " rows exceeds the buffers");
    const int K = net.spec().tasks[size_t(a.task)].num_classes;
    const ShardRows part = mine(B);
    if (part.count < 1) fail("", "a batch of " + std::to_string(B) + " rows leaves process " + std::to_string(proc_rank_) +
                                     " none; use a batch of at least " + std::to_string(proc_size_));
    const int n = shards(part.count);
    const bool gather = n > 1 || proc_size_ > 1;
    if (n > 1 && shards_[1].grads.empty()) fail("", "data-parallel buffers were allocated for inference");
    if (a.gates && proc_size_ > 1) std::fill(d_gates_.begin(), d_gates_.end(), 0.0f);   // other processes' rows
    for (int s = 0; s < n; ++s) set_active(a, s, rows(s, n, part), B, true);
    run_shards(n, [&](int s) {
        const ShardRows r = rows(s, n, part);
        shard_step(net, images, y, B, s, r, grads);
        const Workspace& ws = *shards_[size_t(s)].ws;
        if (gather) {
            std::memcpy(probs_buf_.data() + size_t(r.first) * K, ws.probs, sizeof(float) * r.count * K);
            std::memcpy(logits_buf_.data() + size_t(r.first) * K, ws.logits, sizeof(float) * r.count * K);
        }
        if (a.gates) {
            const float* dg = static_cast<const Activations&>(ws).d_gates;
            for (int l = 0; l < depth_; ++l)
                std::memcpy(d_gates_.data() + (size_t(l) * B + r.first) * 2, dg + size_t(l) * r.count * 2,
                            sizeof(float) * 2 * r.count);
        }
    });
    if (n > 1) {   // sum the other shards into the caller's gradients, in shard order; re-zero them
        const long size = long(num_floats_);
#pragma omp parallel for schedule(static)
        for (long i = 0; i < size; ++i) {
            float acc = grads[i];
            for (int s = 1; s < n; ++s) {
                float& gs = shards_[size_t(s)].grads[size_t(i)];
                acc += gs;
                gs = 0.0f;
            }
            grads[i] = acc;
        }
    }
    StepResult res;
    double total = 0.0;
    for (int s = 0; s < n; ++s) {
        total += double(shards_[size_t(s)].loss) * rows(s, n, part).count;
        res.correct += shards_[size_t(s)].correct;
    }
    res.loss = float(total / B);   // this process's share of the batch mean
    probs_ = gather ? probs_buf_.data() : shards_[0].ws->probs;
    logits_ = gather ? logits_buf_.data() : shards_[0].ws->logits;
    return res;
}

}  // namespace ufo
