// rng.h — a small, portable, serialisable random generator (xoshiro256**), so that runs are
// bit-reproducible across machines and a training run can resume exactly.
#pragma once
#include <cmath>
#include <cstdint>

namespace ufo {

inline uint64_t splitmix64(uint64_t& x) {
    uint64_t z = (x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// Derives an independent seed from a base seed and up to three counters; used to give every
// (step, sample) its own stream, which makes data order and augmentation stateless.
inline uint64_t mix_seed(uint64_t seed, uint64_t a, uint64_t b = 0, uint64_t c = 0) {
    uint64_t x = seed;
    uint64_t h = splitmix64(x);
    x ^= a * 0xD6E8FEB86659FD93ull; h ^= splitmix64(x);
    x ^= b * 0xA0761D6478BD642Full; h ^= splitmix64(x);
    x ^= c * 0xE7037ED1A0B428DBull; h ^= splitmix64(x);
    return h;
}

struct Rng {
    uint64_t s[4];

    explicit Rng(uint64_t seed = 0) { reseed(seed); }
    void reseed(uint64_t seed) {
        uint64_t x = seed;
        for (auto& v : s) v = splitmix64(x);
    }
    static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    uint64_t next() {
        uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
        s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
        s[2] ^= t; s[3] = rotl(s[3], 45);
        return r;
    }
    // Uniform in [0, 1) with 24 random bits: exact in float.
    float uniform() { return float(next() >> 40) * (1.0f / 16777216.0f); }
    // Uniform integer in [0, n).
    uint64_t below(uint64_t n) { return n ? next() % n : 0; }
    float normal() {
        double u1 = (double(next() >> 11) + 1.0) * (1.0 / 9007199254740993.0);
        double u2 = double(next() >> 11) * (1.0 / 9007199254740992.0);
        return float(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
    }
};

}  // namespace ufo
