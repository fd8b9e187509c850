// packed_matmul.h — inference matrix products whose weights are packed once.
//
// OpenBLAS packs the weight matrix of every product again on every call, which costs most
// when the products are small (a batch of one image: 50 token rows). A PackedMatmuls object
// packs each weight once, on first use, into the layout oneDNN's matmul primitive prefers
// for that shape, JIT-compiles the kernel for it (AVX-512 where the CPU has it), and reuses
// both for every later call. Its contract is matmul_forward's (layers/layers.h), which stays
// the plain reference twin; the weights must not change while the object lives (the tools
// that run a fixed model ask for it; training never does).
//
// One object per thread (each DataParallel shard has its own); oneDNN runs each product on
// the OpenMP threads of the caller (one inside a parallel region).
#pragma once
#include <memory>

namespace ufo {

class PackedMatmuls {
public:
    PackedMatmuls();
    ~PackedMatmuls();
    PackedMatmuls(const PackedMatmuls&) = delete;
    PackedMatmuls& operator=(const PackedMatmuls&) = delete;

    // out[n,o] = (accumulate ? out[n,o] : 0) + sum_i inp[n,i] * w[o,i] + b[o]   (b may be null)
    // out [N,OC] (ldo), inp [N,IC] (ldi), w [OC,IC] (ldw), b [OC]
    void forward(float* out, int ldo, const float* inp, int ldi, const float* w, int ldw, const float* b, int N,
                 int IC, int OC, bool accumulate);
    // The same product with the next layer folded into oneDNN's kernel (a post-op applied to
    // each output tile while it is in registers), which saves a pass over the output:
    // out[n,o] = gelu(sum_i inp[n,i] * w[o,i] + b[o])   (tanh form, as gelu_forward)
    void forward_gelu(float* out, int ldo, const float* inp, int ldi, const float* w, int ldw, const float* b, int N,
                      int IC, int OC);
    // out[n,o] = res[n,o] + sum_i inp[n,i] * w[o,i] + b[o]   res [N,OC] (ldr); out != res
    void forward_residual(float* out, int ldo, const float* res, int ldr, const float* inp, int ldi, const float* w,
                          int ldw, const float* b, int N, int IC, int OC);

    // Packed weight copies held (for tests and memory accounting).
    size_t packed_weights() const;

private:
    enum class Post { none, sum, gelu, add };
    void run(Post post, float* out, int ldo, const float* res, int ldr, const float* inp, int ldi, const float* w,
             int ldw, const float* b, int N, int IC, int OC);
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace ufo
