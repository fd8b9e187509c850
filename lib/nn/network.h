// network.h — what every network (the ViT, the CNN) gives the trainer, the tools and the
// checkpoint format: a parameter table whose tensors carry structured roles, a workspace of
// activations, forward and backward over an active sub-network, and exact FLOP counts.
//
// A network declares its tensors once, in one function run against a ParamBinder: the first
// run lays the tensors out in one allocation, later runs hand out pointers into buffers of that
// layout (parameters, gradients, optimiser moments). Weight decay, initialisation,
// learning-rate multipliers, freezing and extraction are all derived from the roles; nothing
// matches on tensor names (the names are only the HDF5 paths inside a checkpoint).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "layers/packed_matmul.h"

namespace ufo {

struct TaskInfo {
    std::string name;
    int num_classes = 0;
    std::vector<std::string> class_names;
    // Task-MoE supernets only: per block, 0 = the shared FFN, 1 = this task's own FFN (the
    // hardened route that inference, extraction and frozen training use).
    std::vector<int> route;
};

// What every network shares: the images it takes (uint8 [B,H,W,C], normalised per channel as
// (pixel/255 - mean) / std) and its task heads.
struct NetSpec {
    int img_h = 28, img_w = 28, img_c = 1;
    std::vector<float> in_mean{0.5f}, in_std{0.5f};
    std::vector<TaskInfo> tasks{TaskInfo{"main", 10, {}, {}}};
    size_t image_size() const { return size_t(img_h) * img_w * img_c; }
    int max_classes() const;
    // Index of the task called `name`; else "<where>: no task NAME (tasks: a, b)".
    int task_index(const std::string& name, const std::string& where) const;
    // The task a tool runs: `name` when given (named), else the only one; with several and no
    // name, "<where>: has 2 tasks (a, b); choose one with --task".
    int choose_task(const std::string& name, bool named, const std::string& where) const;
};

// ---------------------------------------------------------------- parameter roles

enum class Kind : uint8_t {
    Matrix,      // weight of a linear map or a convolution, [out, in, ...]
    Bias,        // additive bias of a linear map or convolution
    Norm,        // LayerNorm / BatchNorm scale (weight) or shift (not weight)
    Embedding,   // class token, position table
    Router,      // Task-MoE router logits of one task, [depth, 2]
    Head,        // a task's classifier, weight [K, C] or bias [K]
    Statistic,   // BatchNorm running mean / variance: stored and used, never trained
};
// The groups `ufo-train --freeze` names.
enum class Part : uint8_t { Embed, Attn, Ffn, Norm, Head, Router, Conv };
const char* part_name(Part p);
// "embed,attn" -> parts; throws ufo::Error naming `where` on an unknown name.
std::vector<Part> parse_parts(const std::string& list, const std::string& where);

enum class Init : uint8_t {
    Zero, One,
    XavierUniform,   // U(±sqrt(6 / (fan_in + fan_out))), linear maps
    HeNormal,        // N(0, 2 / fan_out), convolutions followed by ReLU (He et al. 2015)
    Normal002,       // N(0, 0.02²), the class token
    Custom,          // the network's own rule (Network::init_custom), e.g. sine-cosine positions
};

struct Role {
    Kind kind = Kind::Matrix;
    Part part = Part::Embed;
    Init init = Init::Zero;
    bool weight = true;    // Norm/Head: scale or weight (true) vs shift or bias (false)
    int block = -1;        // transformer block or CNN stage; -1 = none
    int ffn_set = -1;      // ViT FFN weight set of the block (0 = shared); -1 = none
    int task = -1;         // owning task (head, router, a task's own FFN); -1 = shared
    int unit = 0;          // tells apart tensors of one kind in one place (e.g. fc1 0, fc2 1)
    // AdamW weight decay: weights of linear maps, convolutions and heads; never biases,
    // norms, embeddings, router logits or statistics.
    bool decays() const { return (kind == Kind::Matrix || kind == Kind::Head) && weight; }
    bool trained() const { return kind != Kind::Statistic; }
    bool same_slot(const Role& o) const {
        return kind == o.kind && part == o.part && weight == o.weight && block == o.block &&
               ffn_set == o.ffn_set && task == o.task && unit == o.unit;
    }
};

// A network's roles are unique: no two tensors share a slot (same_slot), which is what lets
// extraction and fine-tuning match tensors without names.
struct ParamInfo {
    std::string name;              // HDF5 path inside a checkpoint, e.g. "blocks/0/attn/qkv/w"
    std::vector<int64_t> shape;
    size_t offset = 0, size = 0;   // in floats, inside the one parameter allocation
    Role role;
    bool decay() const { return role.decays(); }
};

// The one function a network declares its tensors in is run against a binder. Layout mode
// appends ParamInfo entries (64-byte aligned offsets); pointer mode returns base + offset for
// each declared tensor in the same order, checking that the declaration did not change, and
// nullptr for tensors in `skip` (frozen tensors get no gradient buffer, so backward skips
// their weight-gradient work).
class ParamBinder {
public:
    explicit ParamBinder(std::vector<ParamInfo>* layout) : out_(layout) {}
    ParamBinder(const std::vector<ParamInfo>& layout, float* base, const std::vector<char>* skip = nullptr)
        : in_(&layout), base_(base), skip_(skip) {}
    float* operator()(const std::string& name, std::vector<int64_t> shape, Role role);
    size_t total() const { return next_; }   // floats (layout mode)

private:
    std::vector<ParamInfo>* out_ = nullptr;
    const std::vector<ParamInfo>* in_ = nullptr;
    float* base_ = nullptr;
    const std::vector<char>* skip_ = nullptr;
    size_t next_ = 0, index_ = 0;
};

// Activation sizes come from the code that hands out the pointers: a workspace's bind function
// runs once against a counting arena, then against the allocated one.
class Arena {
public:
    explicit Arena(float* base = nullptr) : base_(base) {}
    float* take(size_t n) {
        float* p = base_ ? base_ + used_ : nullptr;
        used_ += n;
        return p;
    }
    size_t used() const { return used_; }

private:
    float* base_;
    size_t used_ = 0;
};

// ---------------------------------------------------------------- active sub-network

// The active sub-network for one forward/backward. Empty vectors mean "full". The elastic
// fields (depth, heads, hidden, ffn_set) are the ViT's; the CNN has none yet.
struct Active {
    int task = 0;
    int depth = -1;                  // first `depth` blocks; -1 = all
    std::vector<int> heads;          // per block, 1..heads
    std::vector<int> hidden;         // per block, 1..mlp_hidden
    std::vector<int> ffn_set;        // per block, 0..ffn_sets-1
    // Task-MoE routing (supernet training): every block runs the shared FFN and the task's
    // own one and mixes them per sample with straight-through Gumbel-softmax gates that the
    // network draws from its router logits; backward adds the router's gradient. The noise
    // of (seed, step, task, block, sample) is a pure function of those five numbers, so
    // any split of a batch (threads, processes) draws the same noise.
    struct Routing {
        bool on = false;
        float tau = 5.0f;
        bool hard = true;            // one-hot forward, soft gradient (straight-through)
        bool per_sample = true;      // false: one draw per batch and block
        uint64_t seed = 0;
        int64_t step = 0;
    } routing;
    int64_t first_sample = 0;        // global index of this batch's row 0 (set per shard)
    // A training forward: BatchNorm uses (and keeps) the batch's statistics; otherwise the
    // running ones. Set by DataParallel::train_step.
    bool train = false;
    // Given gates instead of routing, [depth,B,2] weights of (shared, own): tests and
    // experiments; backward then leaves dL/d(gates) in the workspace.
    const float* gates = nullptr;
    bool mixing() const { return routing.on || gates; }
};

// ---------------------------------------------------------------- workspace and network

// Activations kept for backward, sized for max_batch at full widths: one allocation.
struct Workspace {
    virtual ~Workspace() = default;
    int max_batch = 0;
    bool training = false;
    std::vector<float> buf;
    // Set for inference on weights that stay fixed while the workspace lives: the products
    // then run with weights packed once (layers/packed_matmul.h). Null: the plain kernels.
    std::unique_ptr<PackedMatmuls> packed;
    float* logits = nullptr;     // [B,K] of the active task
    float* probs = nullptr;      // [B,K] softmax of logits
    float* d_logits = nullptr;   // [B,K] written by the loss (training)
};

class Network {
public:
    virtual ~Network() = default;
    Network() = default;
    Network(const Network&) = delete;
    Network& operator=(const Network&) = delete;

    std::vector<ParamInfo> layout;
    std::vector<float> params;       // one allocation

    virtual NetSpec& spec() = 0;
    virtual const NetSpec& spec() const = 0;
    virtual const char* family() const = 0;    // "vit", "cnn": the checkpoint's /arch@model
    virtual std::string describe() const = 0;  // one line, for logs

    // A fresh network (zero weights) of the same architecture with spec's tasks and input
    // normalisation (the image shape stays this one's).
    virtual std::unique_ptr<Network> rebuild(const NetSpec& spec) const = 0;
    // Checks that `o` has the same architecture; else false with the differences in *why.
    virtual bool same_architecture(const Network& o, std::string* why) const = 0;

    virtual std::unique_ptr<Workspace> workspace(int max_batch, bool training) const = 0;
    // images [B,H,W,C] uint8 -> ws.logits, ws.probs [B,K] of a.task.
    virtual void forward(Workspace& ws, const uint8_t* images, int B, const Active& a) const = 0;
    // From ws.d_logits, accumulates (+=) parameter gradients into `grads` (a buffer of this
    // layout; tensors marked frozen get no gradient).
    virtual void backward(Workspace& ws, int B, const Active& a, float* grads) const = 0;
    // FLOPs of one forward pass of one image (multiply-add = 2).
    virtual double forward_flops(const Active& a) const = 0;
    virtual size_t num_active_params(const Active& a) const = 0;
    // Fills defaults of `a` and checks it against this network; throws on a bad one.
    virtual void resolve(Active& a) const = 0;
    // BatchNorm networks: statistics over the whole batch, so a batch is never split across
    // threads, and after each training step the batch statistics of the last forward pass
    // are folded into the running ones.
    virtual bool whole_batch() const { return false; }
    virtual void update_statistics(const Workspace&) {}
    // Inference runs a large batch in passes of this many images, so that a layer's output
    // is still in cache when the next layer reads it; 0: the whole batch in one pass.
    virtual int inference_chunk() const { return 0; }

    size_t num_params() const;       // trained tensors (not statistics), without the padding
    size_t total_floats() const { return params.size(); }
    void init_weights(uint64_t seed);
    // Per layout tensor: 1 = frozen (no gradient, no update).
    const std::vector<char>& frozen() const { return frozen_; }
    void set_frozen(std::vector<char> f);
    // Changes with every set_frozen, so cached gradient pointers know to rebind.
    uint64_t frozen_version() const { return frozen_version_; }

protected:
    // Takes the layout a network's declaration produced and allocates the parameters (zero).
    void set_layout(std::vector<ParamInfo> layout, size_t total_floats);
    // Init::Custom tensors; the base class has none.
    virtual void init_custom(const ParamInfo& info, float* w) const;

private:
    std::vector<char> frozen_;
    uint64_t frozen_version_ = 0;
};

}  // namespace ufo
