// gemm_plan.cpp — the model's sgemm calls, listed in the order model.cpp and layers.cpp issue them.
#include "tool/gemm_plan.h"

#include "layers/blas.h"
#include "layers/fused_attention.h"

#include <algorithm>

namespace ufo {

namespace {

// A linear layer out[Nr,OC] = inp[Nr,IC] w[OC,IC]^T (matmul_forward).
GemmCall linear_fwd(int Nr, int IC, int OC, bool acc) {
    return {false, true, Nr, OC, IC, acc ? 1.0f : 0.0f, 1, false, true};
}
// Its input gradient dinp[Nr,IC] = dout[Nr,OC] w[OC,IC] and weight gradient dw[OC,IC] += dout^T inp.
GemmCall linear_dinp(int Nr, int IC, int OC, bool acc) { return {false, false, Nr, IC, OC, acc ? 1.0f : 0.0f, 1}; }
GemmCall linear_dw(int Nr, int IC, int OC) { return {true, false, OC, IC, Nr, 1.0f, 1}; }

}  // namespace

std::vector<GemmCall> gemm_plan(const ViTConfig& cfg, const Active& in, int B, bool train) {
    Active a = in;
    resolve_active(cfg, a);
    const int T = cfg.tokens(), C = cfg.dim, P = cfg.num_patches(), pd = cfg.patch_dim(), hd = cfg.head_dim();
    const int Nt = B * T, K = cfg.tasks[size_t(a.task)].num_classes;
    std::vector<GemmCall> plan;
    auto qkv_calls = [&](int l, int A, auto make) {   // fused when all the block's heads are active, else q, k, v slices
        if (A == cfg.heads_at(l) * hd) plan.push_back(make(3 * A, false));
        else for (int part = 0; part < 3; ++part) plan.push_back(make(A, part > 0));
    };

    plan.push_back(linear_fwd(B * P, pd, C, false));
    for (int l = 0; l < a.depth; ++l) {
        const int nh = a.heads[size_t(l)], A = nh * hd, H = a.hidden[size_t(l)];
        plan.push_back(linear_fwd(Nt, C, 3 * A, false));          // q, k, v (fewer heads: gathered first,
        plan.back().packable = A == cfg.heads_at(l) * hd;         // a weight made per call: not packed)
        plan.push_back({false, true, T, T, hd, 0.0f, B * nh, true});    // q k^T
        plan.push_back({false, false, T, hd, T, 0.0f, B * nh, true});   // att v
        plan.push_back(linear_fwd(Nt, A, C, true));               // proj, into the residual
        plan.push_back(linear_fwd(Nt, C, H, false));              // fc1
        plan.push_back(linear_fwd(Nt, H, C, true));               // fc2, into the residual
    }
    plan.push_back(linear_fwd(B, C, K, false));                   // head
    if (!train) return plan;

    plan.push_back(linear_dinp(B, C, K, false));
    plan.push_back(linear_dw(B, C, K));
    for (int l = a.depth - 1; l >= 0; --l) {
        const int nh = a.heads[size_t(l)], A = nh * hd, H = a.hidden[size_t(l)];
        plan.push_back(linear_dinp(Nt, H, C, false));             // fc2
        plan.push_back(linear_dw(Nt, H, C));
        plan.push_back(linear_dinp(Nt, C, H, false));             // fc1
        plan.push_back(linear_dw(Nt, C, H));
        plan.push_back(linear_dinp(Nt, A, C, false));             // proj
        plan.push_back(linear_dw(Nt, A, C));
        plan.push_back({true, false, T, hd, T, 1.0f, B * nh});    // dv += att^T dy
        plan.push_back({false, true, T, T, hd, 0.0f, B * nh});    // d att = dy v^T
        plan.push_back({false, false, T, hd, T, 1.0f, B * nh});   // dq += ds k
        plan.push_back({true, false, T, hd, T, 1.0f, B * nh});    // dk += ds^T q
        qkv_calls(l, A, [&](int oc, bool acc) { return linear_dinp(Nt, C, oc, acc || cfg.parallel_block); });
        qkv_calls(l, A, [&](int oc, bool) { return linear_dw(Nt, C, oc); });
    }
    plan.push_back(linear_dw(B * P, pd, C));                      // patch embedding: no input gradient
    return plan;
}

std::vector<GemmCall> gemm_plan_inference(const ViTConfig& cfg, const Active& a, int B) {
    std::vector<GemmCall> plan = gemm_plan(cfg, a, B, false);
    if (attention_fused_supported(cfg.tokens()))
        plan.erase(std::remove_if(plan.begin(), plan.end(), [](const GemmCall& g) { return g.attention; }), plan.end());
    return plan;
}

double gemm_flops(const std::vector<GemmCall>& plan) {
    double f = 0;
    for (const auto& g : plan) f += g.flops();
    return f;
}

GemmRunner::~GemmRunner() = default;

GemmRunner::GemmRunner(const std::vector<GemmCall>& plan, bool packed) {
    size_t a = 1, b = 1, c = 1;
    for (const auto& g : plan) {
        a = std::max(a, size_t(g.M) * g.K);
        b = std::max(b, size_t(g.K) * g.N);
        c = std::max(c, size_t(g.M) * g.N);
    }
    // Small constants: thousands of accumulating calls stay far from overflow and denormals.
    a_.assign(a, 1e-3f);
    b_.assign(b, 1e-3f);
    c_.assign(c, 0.0f);
    if (!packed) return;
    packed_ = std::make_unique<PackedMatmuls>();
    weights_.resize(plan.size());
    for (size_t i = 0; i < plan.size(); ++i)
        if (plan[i].packable) weights_[i].assign(size_t(plan[i].N) * plan[i].K, 1e-3f);
}

void GemmRunner::run(const std::vector<GemmCall>& plan) {
    for (size_t c = 0; c < plan.size(); ++c) {
        const GemmCall& g = plan[c];
        if (packed_ && g.packable) {   // out [M,N] = a [M,K] w[N,K]^T, as matmul_forward
            packed_->forward(c_.data(), g.N, a_.data(), g.K, weights_.at(c).data(), g.K, nullptr, g.M, g.K, g.N,
                             g.beta != 0.0f);
            continue;
        }
        for (int i = 0; i < g.count; ++i)
            sgemm(g.trans_a, g.trans_b, g.M, g.N, g.K, 1.0f, a_.data(), g.trans_a ? g.M : g.K, b_.data(),
                  g.trans_b ? g.K : g.N, g.beta, c_.data(), g.N);
    }
}

GemmPasses gemm_passes(const ViT& net, const Active& a, int rows, bool train, bool packed) {
    GemmPasses g;
    if (train) {
        g.pass = gemm_plan(net.cfg, a, rows, true);
        g.passes = 1;
    } else {
        const int chunk = net.inference_chunk() > 0 ? std::min(net.inference_chunk(), rows) : rows;
        g.pass = gemm_plan_inference(net.cfg, a, chunk);
        g.passes = rows / chunk;
        if (rows % chunk) g.last = gemm_plan_inference(net.cfg, a, rows % chunk);
    }
    g.runner = std::make_unique<GemmRunner>(g.pass, packed);
    return g;
}

void GemmPasses::run() {
    for (int p = 0; p < passes; ++p) runner->run(pass);
    if (!last.empty()) runner->run(last);
}

}  // namespace ufo
