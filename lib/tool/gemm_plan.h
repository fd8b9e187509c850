// gemm_plan.h — the sgemm calls one forward pass (or training step) of the model issues, so
// that ufo-bench can time those matrix products alone, with the same shapes, transposes and
// data-parallel shards: the "machine's sgemm at the same shapes" a model's speed is held to.
#pragma once
#include "nn/vit.h"

#include <vector>

namespace ufo {

struct GemmCall {
    bool trans_a = false, trans_b = false;
    int M = 0, N = 0, K = 0;
    float beta = 0.0f;           // 1 where the model accumulates into C
    int count = 1;               // identical calls (attention issues one per image and head)
    double flops() const { return 2.0 * M * N * K * count; }
};

// The calls of model.cpp/layers.cpp for B rows on the active sub-network, in issue order:
// forward only, or forward then backward (input and weight gradients; the patch embedding has
// no input gradient). A Task-MoE mixing step is not covered (ffn_set routes are).
std::vector<GemmCall> gemm_plan(const ViTConfig& cfg, const Active& a, int B, bool train);
double gemm_flops(const std::vector<GemmCall>& plan);

// Buffers for running a plan's calls on one thread's shard: A, B and C big enough for the
// largest call. Contents are fixed pseudo-random values (timing only).
class GemmRunner {
public:
    explicit GemmRunner(const std::vector<GemmCall>& plan);
    void run(const std::vector<GemmCall>& plan);   // every call, in order, beta 1 where it is 1
private:
    std::vector<float> a_, b_, c_;
};

}  // namespace ufo
