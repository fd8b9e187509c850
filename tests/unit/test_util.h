// test_util.h — helpers shared by the unit tests: a self-removing temp directory and a way to
// capture the message of the ufo::Error a call throws.
#pragma once
#include "base/common.h"
#include "base/rng.h"
#include "train/data_parallel.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>
#include <unistd.h>

namespace ufo::test {

struct TempDir {
    std::string path;
    TempDir() {
        std::string t = (std::filesystem::temp_directory_path() / "ufo-test-XXXXXX").string();
        path = ::mkdtemp(t.data());
    }
    ~TempDir() { std::filesystem::remove_all(path); }
    std::string operator/(const std::string& name) const { return path + "/" + name; }
};

inline std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "(no error)";
}

// n normal random floats times scale, fixed by seed.
inline std::vector<float> randv(size_t n, uint64_t seed, float scale = 1.0f) {
    Rng r(seed);
    std::vector<float> v(n);
    for (auto& x : v) x = scale * r.normal();
    return v;
}

// One training pass of B rows with label-smoothed cross-entropy weighted by `weight`,
// accumulating into grads.
inline StepResult train_step(DataParallel& dp, Network& m, const uint8_t* images, const int32_t* labels, int B,
                             const Active& a, float smoothing, float weight, std::vector<float>& grads) {
    if (grads.size() != m.params.size()) grads.assign(m.params.size(), 0.0f);
    Targets y;
    y.labels = labels;
    y.smoothing = smoothing;
    y.weight = weight;
    return dp.train_step(m, images, y, B, a, grads.data());
}

// Central differences of L() (eps) on every trained parameter of m against grads, each within
// 2e-3 + 2e-2 * max(0.1, |analytic|, |numeric|) (the callers justify it); returns how many
// were checked. `label` prefixes failure messages.
inline int check_param_gradients(Network& m, const std::vector<float>& grads, const std::function<double()>& L,
                                 float eps, const std::string& label) {
    int checked = 0;
    for (const auto& t : m.layout) {
        if (!t.role.trained()) continue;
        for (size_t i = 0; i < t.size; ++i) {
            float* w = &m.params[t.offset + i];
            const float keep = *w;
            *w = keep + eps;
            const double lp = L();
            *w = keep - eps;
            const double lm = L();
            *w = keep;
            const double num = (lp - lm) / (2.0 * eps), an = grads[t.offset + i];
            EXPECT_NEAR(an, num, 2e-3 + 2e-2 * std::max({0.1, std::fabs(num), std::fabs(an)}))
                << label << " " << t.name << "[" << i << "]";
            ++checked;
        }
    }
    return checked;
}

}  // namespace ufo::test
