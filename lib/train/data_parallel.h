// data_parallel.h — one batch split across the OpenMP threads.
//
// Each thread runs the whole model on its own rows, with its own activations and (shards after
// the first) its own gradient buffer, and the kernels inside run on that one thread. Small
// per-layer kernels cannot keep two threads busy, so this beats splitting each kernel across
// threads (small preset, training at batch 128 on 2 cores: about 1.5x). Gradients are summed
// in shard order, so a step is deterministic for a given thread count.
//
// A batch of fewer rows than threads runs one row per shard; with one thread (or one row)
// everything runs on the caller's thread and each kernel uses all threads, as before.
#pragma once
#include "nn/model.h"

#include <cstdint>
#include <exception>
#include <vector>

namespace ufo {

// Rows [first, first + count) of shard s when B rows are cut into n shards (the first B % n
// shards take one row more).
struct ShardRows { int first, count; };
ShardRows shard_rows(int s, int n, int B);

struct StepResult {
    float loss = 0.0f;   // mean over the batch, before loss_scale
    int correct = 0;     // top-1 hits
};

class DataParallel {
public:
    // Buffers for m's batches of up to max_batch rows on the current thread count (set_threads).
    DataParallel(const Model& m, int max_batch, bool training);

    int max_batch() const { return max_batch_; }
    int shards(int B) const;   // min(threads, B)

    // Probabilities of B rows; probs() is [B,K] of the active task until the next call.
    void forward(const Model& m, const uint8_t* images, int B, const Active& a);
    const float* probs() const { return probs_; }

    // Forward, label-smoothed cross-entropy and backward of B rows. Parameter gradients are
    // accumulated into m.grads (already holding earlier tasks' share, if any) with the loss
    // scaled by loss_scale. In mixing mode (a.gates, [depth,B,2]) d_gates() is dL/d(gates).
    StepResult train_step(Model& m, const uint8_t* images, const int32_t* labels, int B, const Active& a,
                          float smoothing, float loss_scale);
    const float* d_gates() const { return d_gates_.data(); }

private:
    // One thread's buffers, allocated once; per-step fields are overwritten in place.
    struct Shard {
        Activations act;              // rows ceil(max_batch / threads)
        std::vector<float> grads;     // [params], kept zeroed (shards after the first)
        ParamPtrs grad_ptrs;
        Active active;                // the caller's, with gates sliced to the shard's rows
        std::vector<float> gates;     // [depth, rows, 2] (mixing)
        float loss = 0.0f;
        int correct = 0;
        std::exception_ptr error;
    };
    ShardRows rows(int shard, int B) const { return shard_rows(shard, shards(B), B); }
    void set_active(const Active& a, int shard, int B);
    // Runs body(shard) for shards 0..n-1 on n threads; rethrows the first shard's exception.
    template <class F> void run_shards(int n, F&& body);

    ViTConfig cfg_;
    int max_batch_ = 0;
    std::vector<Shard> shards_;
    std::vector<float> probs_buf_;    // [max_batch, K] gathered from the shards
    std::vector<float> d_gates_;      // [depth, max_batch, 2]
    const float* probs_ = nullptr;
};

}  // namespace ufo
