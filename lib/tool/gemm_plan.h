// gemm_plan.h — the sgemm calls one forward pass (or training step) of the model issues, so
// that ufo-bench can time those matrix products alone, with the same shapes, transposes and
// data-parallel shards: the "machine's sgemm at the same shapes" a model's speed is held to.
#pragma once
#include "layers/packed_matmul.h"
#include "nn/vit.h"

#include <memory>
#include <vector>

namespace ufo {

struct GemmCall {
    bool trans_a = false, trans_b = false;
    int M = 0, N = 0, K = 0;
    float beta = 0.0f;           // 1 where the model accumulates into C
    int count = 1;               // identical calls (attention issues one per image and head)
    bool attention = false;      // an attention product: inside the fused kernel where it runs
    bool packable = false;       // a fixed model's inference runs it with packed weights
    double flops() const { return 2.0 * M * N * K * count; }
};

// The calls of model.cpp/layers.cpp for B rows on the active sub-network, in issue order:
// forward only, or forward then backward (input and weight gradients; the patch embedding has
// no input gradient). A Task-MoE mixing step is not covered (ffn_set routes are).
std::vector<GemmCall> gemm_plan(const ViTConfig& cfg, const Active& a, int B, bool train);
double gemm_flops(const std::vector<GemmCall>& plan);

// The products of one inference pass as a fixed model runs them (DataParallel::pack_weights):
// gemm_plan's, without the attention products where the fused attention kernel computes them.
std::vector<GemmCall> gemm_plan_inference(const ViTConfig& cfg, const Active& a, int B);

// Buffers for running a plan's calls on one thread's shard: A, B and C big enough for the
// largest call. Contents are fixed pseudo-random values (timing only). With `packed`, the
// packable calls go through PackedMatmuls, each call of the plan with its own weight matrix (as
// each layer has its own), the rest through sgemm; run() then takes plans of the same calls
// with other row counts too (a batch's last, shorter pass).
class GemmRunner {
public:
    explicit GemmRunner(const std::vector<GemmCall>& plan, bool packed = false);
    ~GemmRunner();
    void run(const std::vector<GemmCall>& plan);   // every call, in order, beta 1 where it is 1
private:
    std::vector<float> a_, b_, c_;
    std::vector<std::vector<float>> weights_;   // packed: [call] the call's w [N,K]
    std::unique_ptr<PackedMatmuls> packed_;
};

// One shard's products for `rows` rows as DataParallel runs them: inference in passes of
// net.inference_chunk() images (the last one shorter), a training step in one.
struct GemmPasses {
    std::vector<GemmCall> pass, last;   // a whole pass's calls; the last pass's (empty if none)
    int passes = 0;                     // whole passes
    std::unique_ptr<GemmRunner> runner;
    void run();
};
GemmPasses gemm_passes(const ViT& net, const Active& a, int rows, bool train, bool packed);

}  // namespace ufo
