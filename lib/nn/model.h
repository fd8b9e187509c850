// model.h — the ViT: configuration, parameter layout (one allocation), activations (one
// allocation) and forward/backward over an *active* sub-network.
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

namespace ufo {

struct TaskInfo {
    std::string name;
    int num_classes = 0;
    std::vector<std::string> class_names;
    // Supernets only: per block, 0 = the shared FFN, 1 = this task's own FFN (the hardened
    // route that inference, extraction and frozen training use).
    std::vector<int> route;
};

struct ViTConfig {
    int img_h = 28, img_w = 28, img_c = 1;
    int patch = 4;
    int dim = 192;
    int depth = 6;
    int heads = 3;
    int mlp_hidden = 768;
    bool qk_norm = false;          // ViT-22B: LayerNorm over the head dim of q and k
    bool parallel_block = false;   // ViT-22B: y = x + Attn(LN(x)) + MLP(LN(x))
    bool qkv_bias = true;
    int ffn_sets = 1;              // FFN weight sets per block; set 0 is the shared one
    std::vector<TaskInfo> tasks{TaskInfo{"main", 10, {}, {}}};
    std::vector<float> in_mean{0.5f}, in_std{0.5f};  // per channel, pixel/255 space

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
    // Index of the task called `name`; else "<where>: no task NAME (tasks: a, b)".
    int task_index(const std::string& name, const std::string& where) const;
    // A Task-MoE supernet: two or more tasks, FFN set 0 shared and set t+1 owned by task t,
    // router logits per task and block, and a route per task.
    bool is_supernet() const { return tasks.size() >= 2 && ffn_sets == int(tasks.size()) + 1; }
    // Turns a config into a supernet over its tasks (routes all shared).
    void make_supernet();
};

// Named presets: "tiny" (tests), "ref" (the reference ViT: 28x28x1, patch 4, dim 192, depth 6, 3 heads), "fmnist", "digits".
ViTConfig preset(const std::string& name);
std::vector<std::string> preset_names();

// The active sub-network for one forward/backward. Empty vectors mean "full".
struct Active {
    int task = 0;
    int depth = -1;                  // first `depth` blocks; -1 = all
    std::vector<int> heads;          // per block, 1..cfg.heads
    std::vector<int> hidden;         // per block, 1..cfg.mlp_hidden
    std::vector<int> ffn_set;        // per block, 0..cfg.ffn_sets-1
    // Task-MoE mixing (supernet training): when set, every block runs both the shared FFN and
    // the task's own one (set task+1) and mixes them per sample: [depth, B, 2] weights of
    // (shared, own). ffn_set is then ignored.
    const float* gates = nullptr;
    static Active full(const ViTConfig& cfg, int task = 0);
    // The task's hardened route on a supernet (ffn_set from cfg.tasks[task].route); full()
    // on any other model.
    static Active for_task(const ViTConfig& cfg, int task);
    void resolve(const ViTConfig& cfg);  // fills defaults, validates ranges
};

struct ParamInfo {
    std::string name;              // HDF5 path inside a checkpoint, e.g. "blocks/0/attn/qkv/w"
    std::vector<int64_t> shape;
    size_t offset = 0, size = 0;   // in floats, inside the one parameter allocation
    bool decay = false;            // AdamW weight decay applies (matrices only)
};

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

std::vector<ParamInfo> param_layout(const ViTConfig& cfg);
ParamPtrs param_ptrs(const ViTConfig& cfg, const std::vector<ParamInfo>& layout, float* base);

// Activations kept for backward, sized for max_batch and the full widths. One allocation.
struct Activations {
    int max_batch = 0;
    std::vector<float> buf;
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
    float *cls_in;                    // [B,C] class-token rows of the last residual
    float *lnf, *lnf_mean, *lnf_rstd; // [B,C] [B] [B]
    float *logits;                    // [B,K]
    float *probs;                     // [B,K]
    // Backward scratch, one block's worth, reused across blocks.
    float *d_res;                     // [B,T,C]
    float *d_ln, *d_qkv, *d_qn, *d_kn, *d_atty, *d_fc1, *d_gelu;
    float *d_cls, *d_lnf, *d_logits, *d_emb;
    float *d_mix;                     // [B,T,C] one expert's share of d(out) (mixing)
    float *d_gates;                   // [depth,B,2] dL/d(gates), written by backward (mixing)
    void allocate(const ViTConfig& cfg, int max_batch, bool for_training);
};

class Model {
public:
    ViTConfig cfg;
    std::vector<ParamInfo> layout;
    std::vector<float> params;        // one allocation
    std::vector<float> grads;         // one allocation (empty until needed)
    ParamPtrs p, g;

    explicit Model(const ViTConfig& cfg);
    Model(const Model&) = delete;
    Model& operator=(const Model&) = delete;
    void init_weights(uint64_t seed);
    void enable_grads();
    void zero_grads();
    size_t num_params() const;   // without the alignment padding between tensors
    size_t num_active_params(const Active& a) const;

    // images: [B,H,W,C] uint8. Fills act.logits/probs. Returns nothing; see loss below.
    void forward(Activations& act, const uint8_t* images, int B, const Active& a) const;
    // Cross-entropy with label smoothing on act.logits; sets act.d_logits (scaled by
    // loss_scale/B) when grad is true. Returns the mean loss; counts correct top-1 in *correct.
    float loss(Activations& act, const int32_t* labels, int B, int num_classes, float smoothing,
               bool grad, float loss_scale, int* correct) const;
    // Accumulates parameter gradients into grads from act.d_logits. In mixing mode it also
    // writes act.d_gates (the router's gradient is the caller's: see router.h).
    void backward(Activations& act, int B, const Active& a);
    // The same into another gradient buffer of this layout (a data-parallel shard's own).
    void backward(Activations& act, int B, const Active& a, const ParamPtrs& grads) const;
    // FLOPs of one forward pass of one image on the active sub-network (multiply-add = 2).
    double forward_flops(const Active& a) const;

private:
    void sincos_position_init(float* pos) const;
};

}  // namespace ufo
