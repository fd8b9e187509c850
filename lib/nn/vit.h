// vit.h — the ViT (and its Task-MoE supernet): configuration, parameter declaration (one
// allocation), activations (one allocation) and forward/backward over an *active* sub-network.
//
// A model is a supernet description plus an active sub-network. A dense ViT is the special case
// of one task, one FFN weight set per block and full widths. Active depth, heads per block, FFN
// hidden units per block and the FFN weight set per block are runtime arguments, so later work
// (task routing, elastic chip supernets) reuses this path without touching the dense speed.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "nn/network.h"

namespace ufo {

// An elastic (One-for-All "chip supernet") model's search space: the depths (first d blocks),
// head counts (first h heads of a block, head size fixed) and FFN widths (first n hidden units of
// a block) its sub-networks may take. Each block picks its own heads and width. Ascending and
// distinct; the largest of each is the model's own size, so the largest sub-network is the model.
struct ElasticSpace {
    std::vector<int> depth, heads, hidden;
    bool empty() const { return depth.empty(); }
    bool operator==(const ElasticSpace& o) const { return depth == o.depth && heads == o.heads && hidden == o.hidden; }
};

struct ViTConfig : NetSpec {
    int patch = 4;
    int dim = 192;
    int depth = 6;
    int heads = 3;
    int mlp_hidden = 768;
    bool qk_norm = false;          // ViT-22B: LayerNorm over the head dim of q and k
    bool parallel_block = false;   // ViT-22B: y = x + Attn(LN(x)) + MLP(LN(x))
    bool qkv_bias = true;
    int ffn_sets = 1;              // FFN weight sets per block; set 0 is the shared one
    // Per-block sizes of a sub-architecture cut out of an elastic model (ufo-extract --arch) or
    // trained alone (ufo-train --arch): empty = `heads` and `mlp_hidden` in every block. `heads`
    // stays the count that fixes the head size (dim / heads) and bounds every block's.
    std::vector<int> block_heads, block_hidden;
    ElasticSpace elastic;          // empty unless the model is an elastic one

    int heads_at(int l) const { return block_heads.empty() ? heads : block_heads[size_t(l)]; }
    int hidden_at(int l) const { return block_hidden.empty() ? mlp_hidden : block_hidden[size_t(l)]; }
    bool is_elastic() const { return !elastic.empty(); }

    int grid_h() const { return img_h / patch; }
    int grid_w() const { return img_w / patch; }
    int num_patches() const { return grid_h() * grid_w(); }
    int tokens() const { return num_patches() + 1; }   // + class token
    int patch_dim() const { return patch * patch * img_c; }
    int head_dim() const { return dim / heads; }
    // Throws ufo::Error (prefixed by `where`) when the numbers cannot form a model.
    void validate(const std::string& where) const;
    bool same_architecture(const ViTConfig& o, std::string* why) const;
    std::string describe() const;  // one line, for logs
    // A Task-MoE supernet: two or more tasks, FFN set 0 shared and set t+1 owned by task t,
    // router logits per task and block, and a route per task.
    bool is_supernet() const { return tasks.size() >= 2 && ffn_sets == int(tasks.size()) + 1; }
    // Turns a config into a supernet over its tasks (routes all shared).
    void make_supernet();
};

// Named presets: "tiny" (tests), "ref" (the reference ViT: 28x28x1, patch 4, dim 192, depth 6, 3 heads), "fmnist", "digits".
ViTConfig preset(const std::string& name);
std::vector<std::string> preset_names();

// The task's hardened route on a supernet (ffn_set from cfg.tasks[task].route); the full
// network on any other model. Resolved against cfg.
Active active_for_task(const ViTConfig& cfg, int task);
Active active_full(const ViTConfig& cfg, int task = 0);
void resolve_active(const ViTConfig& cfg, Active& a);  // fills defaults, validates ranges

// Pointers into one flat buffer (parameters, gradients and optimiser moments share the layout).
struct FFNParams { float *fc1_w, *fc1_b, *fc2_w, *fc2_b; };   // [H,C] [H] [C,H] [C]
struct BlockParams {
    float *ln1_w, *ln1_b;            // [C]
    float *qkv_w, *qkv_b;            // [3C,C] [3C] (qkv_b null without bias)
    float *qn_w, *qn_b, *kn_w, *kn_b;// [hd] each (null without qk-norm)
    float *proj_w, *proj_b;          // [C,C] [C]
    float *ln2_w, *ln2_b;            // [C] (null in a parallel block)
    std::vector<FFNParams> ffn;      // ffn_sets entries
};
struct TaskParams { float *w, *b, *router; };  // head [K,C] [K]; router logits [depth,2] (supernets)
struct ParamPtrs {
    float *patch_w, *patch_b;        // [C, p*p*c] [C]
    float *cls, *pos;                // [C] [T,C]
    std::vector<BlockParams> blocks;
    float *lnf_w, *lnf_b;            // [C]
    std::vector<TaskParams> heads;   // per task
};

// The one declaration of the ViT's tensors (see ParamBinder): fills `p` in binder mode.
void declare_vit(const ViTConfig& cfg, ParamBinder& b, ParamPtrs& p);
std::vector<ParamInfo> vit_layout(const ViTConfig& cfg, size_t* total_floats = nullptr);

// Activations kept for backward, sized for max_batch and the full widths. One allocation; its
// size is counted by the same bind() that hands out the pointers.
struct Activations : Workspace {
    float* patches;                   // [B,P,p*p*c] normalised pixels, im2col order
    float* emb;                       // [B,P,C] patch embeddings
    std::vector<float*> res;          // depth+1 x [B,T,C] residual stream entering each block
    struct Block {
        float *ln1, *ln1_mean, *ln1_rstd;    // [B,T,C] [B,T] [B,T]
        float *qkv;                          // [B,T,3A]
        float *qn, *kn;                      // [B,T,A] (qk-norm)
        float *qn_mean, *qn_rstd, *kn_mean, *kn_rstd;  // [B,T,NH]
        float *att;                          // [B,NH,T,T] probabilities
        float *atty;                         // [B,T,A] attention output before projection
        float *x1;                           // [B,T,C] residual after attention (sequential)
        float *ln2, *ln2_mean, *ln2_rstd;    // [B,T,C] [B,T] [B,T]
        float *fc1, *gelu;                   // [B,T,H] [B,T,H]
        // Task-MoE mixing only (training a supernet): the own expert's fc1/gelu and the two
        // experts' outputs before mixing.
        float *fc1_own, *gelu_own;           // [B,T,H]
        float *expert_out[2];                // [B,T,C] shared, own
    };
    std::vector<Block> blocks;
    float *qkv_w_part, *qkv_b_part;   // [3C,C] [3C] scratch: the active heads' q, k, v weights
    float *cls_in;                    // [B,C] class-token rows of the last residual
    float *lnf, *lnf_mean, *lnf_rstd; // [B,C] [B] [B]
    // Backward scratch, one block's worth, reused across blocks.
    float *d_res;                     // [B,T,C]
    float *d_ln, *d_qkv, *d_qn, *d_kn, *d_atty, *d_fc1, *d_gelu;
    float *d_cls, *d_lnf, *d_emb;
    float *d_mix;                     // [B,T,C] one expert's share of d(out) (mixing)
    float *gates, *soft;              // [depth,B,2] gates used and their soft values (routing)
    float *d_gates;                   // [depth,B,2] dL/d(gates), written by backward (mixing)
    // Gradient pointers of the last buffer backward wrote into (rebuilt when it changes).
    ParamPtrs grad_ptrs{};
    const float* grad_base = nullptr;
    uint64_t grad_version = 0;

    void allocate(const ViTConfig& cfg, int max_batch, bool for_training);

private:
    void bind(Arena& a, const ViTConfig& cfg, int B, bool training);
};

class ViT : public Network {
public:
    ViTConfig cfg;
    ParamPtrs p;

    explicit ViT(const ViTConfig& cfg);

    NetSpec& spec() override { return cfg; }
    const NetSpec& spec() const override { return cfg; }
    const char* family() const override { return "vit"; }
    std::string describe() const override { return cfg.describe(); }
    std::unique_ptr<Network> rebuild(const NetSpec& spec) const override;
    bool same_architecture(const Network& o, std::string* why) const override;
    std::unique_ptr<Workspace> workspace(int max_batch, bool training) const override;
    void forward(Workspace& ws, const uint8_t* images, int B, const Active& a) const override;
    void backward(Workspace& ws, int B, const Active& a, float* grads) const override;
    double forward_flops(const Active& a) const override;
    int inference_chunk() const override;
    size_t num_active_params(const Active& a) const override;
    void resolve(Active& a) const override { resolve_active(cfg, a); }

    // Pointers of another buffer of this layout (gradients, optimiser moments); tensors in
    // `skip` get nullptr.
    ParamPtrs bind(float* base, const std::vector<char>* skip = nullptr) const;

protected:
    void init_custom(const ParamInfo& info, float* w) const override;
};

}  // namespace ufo
