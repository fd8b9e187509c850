// onednn_isa.h — the instruction set oneDNN's kernels are JIT-compiled for, as a short name
// ("avx2", "avx512_core_bf16"), for benchmark reports (libufo and scripts/gemm-candidates).
#pragma once
#include <oneapi/dnnl/dnnl.h>

#include <string>

namespace ufo {

inline std::string onednn_isa_name() {
    switch (dnnl_get_effective_cpu_isa()) {
        case dnnl_cpu_isa_sse41: return "sse4.1";
        case dnnl_cpu_isa_avx: return "avx";
        case dnnl_cpu_isa_avx2: return "avx2";
        case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
        case dnnl_cpu_isa_avx512_core: return "avx512_core";
        case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
        case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
        case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
        default: return "isa_" + std::to_string(int(dnnl_get_effective_cpu_isa()));
    }
}

}  // namespace ufo
