// packed_matmul.cpp — PackedMatmuls over oneDNN's matmul primitive (Debian's libdnnl 2.6).
#include "layers/packed_matmul.h"

#include "base/common.h"

#include <oneapi/dnnl/dnnl.hpp>
#include <omp.h>

#include <map>
#include <tuple>
#include <unordered_map>
#include <vector>

namespace ufo {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

struct PackedMatmuls::Impl {
    dnnl::engine engine{dnnl::engine::kind::cpu, 0};
    dnnl::stream stream{engine};

    // A primitive for one call shape, with memory objects whose data handles change per call
    // and the argument map that names them (built once: no allocation per product).
    struct Call {
        dnnl::matmul prim;
        dnnl::memory src, weights, bias, dst, res;
        std::unordered_map<int, dnnl::memory> args;
    };
    // (w, ldw, IC, OC) -> packed copies, one per weight layout primitives asked for: calls of
    // several row counts share one when their primitives want the same layout.
    std::map<std::tuple<const float*, int, int, int>, std::vector<dnnl::memory>> packed;
    // Keyed by the thread count too: oneDNN plans a primitive's split across threads when it
    // is created, so a primitive made on one thread would stay on one.
    std::map<std::tuple<const float*, int, const float*, int, int, int, int, int, Post, int, int>, Call> calls;

    dnnl::memory pack(const float* w, int ldw, int IC, int OC, const dnnl::memory::desc& want) {
        std::vector<dnnl::memory>& copies = packed[std::make_tuple(w, ldw, IC, OC)];
        for (const dnnl::memory& m : copies)
            if (m.get_desc() == want) return m;
        // ufo's w[OC,IC] with row stride ldw is the [IC,OC] matrix matmul takes, transposed.
        dnnl::memory::desc user({IC, OC}, dt::f32, dnnl::memory::dims{1, ldw});
        dnnl::memory src(user, engine, const_cast<float*>(w));
        dnnl::memory dst(want, engine);
        dnnl::reorder(src, dst).execute(stream, src, dst);
        stream.wait();
        copies.push_back(dst);
        return dst;
    }

    Call& call(Post post, int ldo, int ldr, int ldi, const float* w, int ldw, const float* b, int N, int IC, int OC) {
        auto key = std::make_tuple(w, ldw, b, N, IC, OC, ldi, ldo, post, ldr, omp_get_max_threads());
        auto it = calls.find(key);
        if (it != calls.end()) return it->second;
        const dnnl::memory::desc src_md({N, IC}, dt::f32, dnnl::memory::dims{ldi, 1});
        const dnnl::memory::desc w_any({IC, OC}, dt::f32, tag::any);
        const dnnl::memory::desc dst_md({N, OC}, dt::f32, dnnl::memory::dims{ldo, 1});
        dnnl::memory::desc res_md;   // the residual, for Post::add
        if (post == Post::add) res_md = dnnl::memory::desc({N, OC}, dt::f32, dnnl::memory::dims{ldr, 1});
        dnnl::primitive_attr attr;
        dnnl::post_ops ops;   // applied after the bias
        if (post == Post::sum) ops.append_sum(1.0f);   // dst = dst + product: a residual add in place
        if (post == Post::gelu) ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_gelu_tanh, 0.0f, 0.0f);
        if (post == Post::add) ops.append_binary(dnnl::algorithm::binary_add, res_md);   // dst = res + product
        attr.set_post_ops(ops);
        dnnl::matmul::primitive_desc pd =
            b ? dnnl::matmul::primitive_desc(
                    dnnl::matmul::desc(src_md, w_any, dnnl::memory::desc({1, OC}, dt::f32, tag::ab), dst_md), attr, engine)
              : dnnl::matmul::primitive_desc(dnnl::matmul::desc(src_md, w_any, dst_md), attr, engine);
        Call c;
        c.prim = dnnl::matmul(pd);
        c.weights = pack(w, ldw, IC, OC, pd.weights_desc());
        c.src = dnnl::memory(src_md, engine, DNNL_MEMORY_NONE);
        c.dst = dnnl::memory(dst_md, engine, DNNL_MEMORY_NONE);
        c.args = {{DNNL_ARG_SRC, c.src}, {DNNL_ARG_WEIGHTS, c.weights}, {DNNL_ARG_DST, c.dst}};
        if (b) {
            c.bias = dnnl::memory(pd.bias_desc(), engine, DNNL_MEMORY_NONE);
            c.args.emplace(DNNL_ARG_BIAS, c.bias);
        }
        if (post == Post::add) {
            c.res = dnnl::memory(res_md, engine, DNNL_MEMORY_NONE);
            c.args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, c.res);
        }
        return calls.emplace(key, std::move(c)).first->second;
    }
};

PackedMatmuls::PackedMatmuls() : impl_(std::make_unique<Impl>()) {}
PackedMatmuls::~PackedMatmuls() = default;

size_t PackedMatmuls::packed_weights() const {
    size_t n = 0;
    for (const auto& kv : impl_->packed) n += kv.second.size();
    return n;
}

void PackedMatmuls::forward(float* out, int ldo, const float* inp, int ldi, const float* w, int ldw, const float* b,
                            int N, int IC, int OC, bool accumulate) {
    run(accumulate ? Post::sum : Post::none, out, ldo, nullptr, 0, inp, ldi, w, ldw, b, N, IC, OC);
}

void PackedMatmuls::forward_gelu(float* out, int ldo, const float* inp, int ldi, const float* w, int ldw,
                                 const float* b, int N, int IC, int OC) {
    run(Post::gelu, out, ldo, nullptr, 0, inp, ldi, w, ldw, b, N, IC, OC);
}

void PackedMatmuls::forward_residual(float* out, int ldo, const float* res, int ldr, const float* inp, int ldi,
                                     const float* w, int ldw, const float* b, int N, int IC, int OC) {
    run(Post::add, out, ldo, res, ldr, inp, ldi, w, ldw, b, N, IC, OC);
}

void PackedMatmuls::run(Post post, float* out, int ldo, const float* res, int ldr, const float* inp, int ldi,
                        const float* w, int ldw, const float* b, int N, int IC, int OC) {
    if (N <= 0 || OC <= 0) return;
    try {
        Impl::Call& c = impl_->call(post, ldo, ldr, ldi, w, ldw, b, N, IC, OC);
        // The handles in c.args share these objects, so setting the pointers here is enough.
        c.src.set_data_handle(const_cast<float*>(inp));
        c.dst.set_data_handle(out);
        if (b) c.bias.set_data_handle(const_cast<float*>(b));
        if (res) c.res.set_data_handle(const_cast<float*>(res));
        c.prim.execute(impl_->stream, c.args);
        impl_->stream.wait();
    } catch (const dnnl::error& e) {
        fail("oneDNN", std::string("matrix product ") + std::to_string(N) + "x" + std::to_string(IC) + "x" +
                           std::to_string(OC) + " failed: " + e.what());
    }
}

}  // namespace ufo
