// cnn.h — the CNN family: 3x3 convolutions (stride 1 or 2, padding 1, no bias), each followed
// by BatchNorm and ReLU; 2x2 max or average pooling; global average pooling and one linear
// head per task. Activations are NHWC, convolution weights OIHW as in PyTorch.
//
// The layer list is a short text, stored as /arch@layers in the checkpoint:
//   cN     3x3 convolution to N channels, stride 1, + BatchNorm + ReLU
//   cN/2   the same with stride 2
//   m, a   2x2 max / average pooling, stride 2
// e.g. "c24,c24,m,c48,c48,m,c80" (a global average pool and the heads follow the last layer).
//
// BatchNorm uses the statistics of the batch in training (so a batch is never split across
// threads) and the running statistics, stored in the checkpoint, at inference.
#pragma once
#include "nn/network.h"

#include <string>
#include <vector>

namespace ufo {

struct CnnLayer {
    enum Type { Conv, MaxPool, AvgPool } type = Conv;
    int channels = 0;   // Conv: output channels
    int stride = 1;     // Conv: 1 or 2; pools: 2
};

struct CNNConfig : NetSpec {
    std::string layers = "c24,c24,m,c48,c48,m,c80";
    float bn_momentum = 0.1f;

    // Parses `layers`; throws ufo::Error naming `where` on a bad list.
    std::vector<CnnLayer> parse(const std::string& where) const;
    void validate(const std::string& where) const;
    std::string describe() const;
};

// Output shape (per image) after layer i of `layers` (i = -1: the input).
struct CnnShape { int H, W, C; };
CnnShape cnn_shape_after(const CNNConfig& cfg, const std::vector<CnnLayer>& layers, int i);
// The CNN's tensors without allocating them (checkpoint readers check a file against it).
std::vector<ParamInfo> cnn_layout(const CNNConfig& cfg);

// Presets: "tiny" (tests: c8,m,c16) and "small" (under 100K parameters for 28x28 data).
CNNConfig cnn_preset(const std::string& name);
std::vector<std::string> cnn_preset_names();

// Pointers of one buffer of a CNN's layout. Pools have no parameters (null entries).
struct CnnPtrs {
    struct Conv { float *w = nullptr, *gamma = nullptr, *beta = nullptr, *run_mean = nullptr, *run_var = nullptr; };
    struct Head { float *w = nullptr, *b = nullptr; };
    std::vector<Conv> conv;   // per layer: w [OC,IC,3,3], BatchNorm gamma/beta/running mean/var [OC]
    std::vector<Head> heads;  // per task: w [K,C], b [K]
};

// Activations of every layer for backward; sizes counted by the bind() that hands out pointers.
struct CnnActivations : Workspace {
    struct Layer {
        int H = 0, W = 0, C = 0;             // output shape (per image)
        float* z = nullptr;                  // conv output before BatchNorm [B,H,W,C]
        float* out = nullptr;                // layer output [B,H,W,C] (ReLU(BN(z)) or pooled)
        float *mean = nullptr, *rstd = nullptr;   // [C] batch statistics (training)
        int32_t* idx = nullptr;              // [B,H,W,C] max-pool argmax
    };
    float* input = nullptr;                  // [B,H,W,C0] normalised images
    std::vector<Layer> layers;
    float* pooled = nullptr;                 // [B,C] global average pool
    float *d_a = nullptr, *d_b = nullptr, *d_c = nullptr;   // [max activation] gradient buffers
    float* d_pooled = nullptr;               // [B,C]
    float* scratch = nullptr;                // convolution scratch (forward and backward)
    std::vector<int32_t> idx_buf;
    int last_batch = 0;                      // rows of the last training forward
    // Gradient pointers of the last buffer backward wrote into.
    const float* grad_base = nullptr;
    uint64_t grad_version = 0;
    CnnPtrs grad_ptrs;
};

class CNN : public Network {
public:
    CNNConfig cfg;
    std::vector<CnnLayer> layers;
    CnnPtrs p;

    explicit CNN(const CNNConfig& cfg);

    NetSpec& spec() override { return cfg; }
    const NetSpec& spec() const override { return cfg; }
    const char* family() const override { return "cnn"; }
    std::string describe() const override { return cfg.describe(); }
    std::unique_ptr<Network> rebuild(const NetSpec& spec) const override;
    bool same_architecture(const Network& o, std::string* why) const override;
    std::unique_ptr<Workspace> workspace(int max_batch, bool training) const override;
    void forward(Workspace& ws, const uint8_t* images, int B, const Active& a) const override;
    void backward(Workspace& ws, int B, const Active& a, float* grads) const override;
    double forward_flops(const Active& a) const override;
    size_t num_active_params(const Active& a) const override;
    void resolve(Active& a) const override;
    bool whole_batch() const override { return true; }
    void update_statistics(const Workspace& ws) override;

    using Shape = CnnShape;
    Shape shape_after(int i) const { return cnn_shape_after(cfg, layers, i); }

    void declare(ParamBinder& b, CnnPtrs& out) const;
};

// The one declaration of a CNN's tensors (see ParamBinder).
void declare_cnn(const CNNConfig& cfg, const std::vector<CnnLayer>& layers, ParamBinder& b, CnnPtrs& out);

}  // namespace ufo
