// cuda_backend.cpp — what libufo answers when it was built without CUDA (make CUDA=0, or no nvcc).
#ifndef UFO_CUDA
#include "cuda_backend.h"

#include "base/common.h"

namespace ufo::cuda {

bool available() { return false; }

std::string describe() { return "built without CUDA (make CUDA=1 with nvcc to enable)"; }

void sgemm_host(bool, bool, int, int, int, float, const float*, int, const float*, int, float, float*, int) {
    fail("", "this build of libufo has no CUDA backend");
}

void gelu_forward_host(float*, const float*, long) { fail("", "this build of libufo has no CUDA backend"); }

}  // namespace ufo::cuda
#endif
