// data_parallel.h — one batch split across the OpenMP threads, for any Network.
//
// Each thread runs the whole network on its own rows, with its own workspace and (shards after
// the first) its own gradient buffer, and the kernels inside run on that one thread. Small
// per-layer kernels cannot keep two threads busy, so this beats splitting each kernel across
// threads (small ViT preset, training at batch 128 on 2 cores: about 1.5x). Gradients are
// summed in shard order, so a step is deterministic for a given thread count. Task-MoE noise
// is drawn per global sample index, so it does not depend on the split at all.
//
// A batch of fewer rows than threads runs one row per shard; with one thread (or one row), or
// a network that needs whole batches (BatchNorm), everything runs on the caller's thread and
// each kernel uses all threads.
#pragma once
#include "nn/network.h"

#include <cstdint>
#include <exception>
#include <memory>
#include <vector>

namespace ufo {

// Rows [first, first + count) of shard s when B rows are cut into n shards (the first B % n
// shards take one row more).
struct ShardRows { int first, count; };
ShardRows shard_rows(int s, int n, int B);

// What one pass learns from: labels with label smoothing and, for distillation, teacher
// probabilities at temperature T mixed in with weight alpha. The loss is multiplied by weight.
struct Targets {
    const int32_t* labels = nullptr;   // [B]
    float smoothing = 0.0f;
    const float* soft = nullptr;       // [B,K] teacher softmax(z_t / T), or null
    float alpha = 0.0f, T = 1.0f;
    float weight = 1.0f;
};

struct StepResult {
    float loss = 0.0f;   // mean over the batch, before the weight
    int correct = 0;     // top-1 hits
};

class DataParallel {
public:
    // Buffers for batches of up to max_batch rows on the current thread count (set_threads).
    DataParallel(const Network& net, int max_batch, bool training);

    int max_batch() const { return max_batch_; }
    int shards(int B) const;
    // Data parallelism across processes (dist/process_group.h): train_step then runs only this
    // process's rows of each batch, shard_rows(rank, size, B), and its gradients, loss and hits
    // are this process's share of the batch's (the d_logits still carry 1/B), to be summed
    // over the processes. probs()/logits() hold this process's rows at their batch positions.
    void set_processes(int rank, int size);
    // The rows of a batch of B that this process computes (all of them in one process).
    ShardRows mine(int B) const { return proc_size_ > 1 ? shard_rows(proc_rank_, proc_size_, B) : ShardRows{0, B}; }

    // Inference on a model whose weights stay fixed while this object lives (ufo-infer,
    // ufo-bench): every shard's products run with weights packed once, on first use
    // (layers/packed_matmul.h), and a batch of one runs on one thread or on all of them,
    // whichever measures faster here and now. Never for training.
    void pack_weights();
    // The thread count batch-1 passes use at present (0: still measuring).
    int batch1_threads() const { return batch1_.chosen; }

    // Probabilities (and logits) of B rows: [B,K] of the active task until the next call.
    void forward(const Network& net, const uint8_t* images, int B, const Active& a);
    const float* probs() const { return probs_; }
    const float* logits() const { return logits_; }

    // Forward, loss and backward of B rows. Parameter gradients are accumulated (+=) into
    // `grads` (a buffer of net's layout, already holding earlier passes' share, if any). With
    // given gates (a.gates, [depth,B,2]) d_gates() is dL/d(gates) afterwards.
    StepResult train_step(Network& net, const uint8_t* images, const Targets& y, int B, const Active& a,
                          float* grads);
    const float* d_gates() const { return d_gates_.data(); }
    // Shard s's workspace (after a whole-batch step, shard 0 saw the whole batch).
    const Workspace& workspace(int s) const { return *shards_[size_t(s)].ws; }

private:
    // One thread's buffers, allocated once; per-step fields are overwritten in place.
    struct Shard {
        std::unique_ptr<Workspace> ws;     // rows ceil(max_batch / threads), at most chunk_
        std::vector<float> grads;          // [params], kept zeroed (shards after the first)
        std::vector<float> soft_student;   // [rows,K] softmax(z/T) (distillation)
        Active active;                     // the caller's, with this shard's rows
        std::vector<float> gates;          // [depth, rows, 2] (given gates)
        float loss = 0.0f;
        int correct = 0;
        std::exception_ptr error;
    };
    // Shard s of n over `part`'s rows, as batch positions.
    static ShardRows rows(int s, int n, ShardRows part) {
        const ShardRows r = shard_rows(s, n, part.count);
        return {part.first + r.first, r.count};
    }
    void set_active(const Active& a, int shard, ShardRows r, int B, bool train);
    void shard_step(Network& net, const uint8_t* images, const Targets& y, int B, int s, ShardRows r, float* grads);
    // Runs body(shard) for shards 0..n-1 on n threads; rethrows the first shard's exception.
    template <class F> void run_shards(int n, F&& body);

    // Batch-1 passes of a fixed model (pack_weights) choose between one thread and all of
    // them by measurement (data_parallel.cpp, ThreadChoice).
    struct ThreadChoice {
        int all = 1;                    // the configured thread count
        int chosen = 0;                 // 0: measuring
        int left = 0;                   // passes until the next measurement
        std::vector<double> one, many;  // seconds per pass while measuring
    } batch1_;
    void forward_batch1(const Network& net, const uint8_t* images, const Active& a);

    int max_batch_ = 0, depth_ = 0, max_classes_ = 0;
    int chunk_ = 0;   // inference: images per pass (Network::inference_chunk), 0: all at once
    int proc_rank_ = 0, proc_size_ = 1;
    size_t image_size_ = 0, num_floats_ = 0;
    std::vector<Shard> shards_;
    std::vector<float> probs_buf_, logits_buf_;   // [max_batch, K] gathered from the shards
    std::vector<float> d_gates_;                  // [depth, max_batch, 2]
    const float* probs_ = nullptr;
    const float* logits_ = nullptr;
};

}  // namespace ufo
