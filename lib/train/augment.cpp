// augment.cpp — random crop with padding, horizontal flip, random erasing.
#include "train/augment.h"

#include "base/rng.h"

#include <cmath>
#include <cstring>

namespace ufo {

void augment_image(uint8_t* out, const uint8_t* in, int H, int W, int C, const AugmentConfig& cfg,
                   uint64_t sample_seed) {
    Rng r(sample_seed);
    const int P = cfg.crop_pad;
    const int dy = P > 0 ? int(r.below(2 * P + 1)) - P : 0;
    const int dx = P > 0 ? int(r.below(2 * P + 1)) - P : 0;
    const bool flip = cfg.hflip && (r.next() & 1);
    for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x) {
            const int sy = y + dy, sx0 = x + dx;
            const int sx = flip ? W - 1 - sx0 : sx0;
            uint8_t* o = out + (size_t(y) * W + x) * C;
            if (sy < 0 || sy >= H || sx < 0 || sx >= W) std::memset(o, 0, C);
            else std::memcpy(o, in + (size_t(sy) * W + sx) * C, C);
        }
    if (cfg.erase_prob > 0 && r.uniform() < cfg.erase_prob) {
        const float area = (0.02f + 0.23f * r.uniform()) * H * W;
        const float aspect = std::exp(std::log(0.3f) + (std::log(3.3f) - std::log(0.3f)) * r.uniform());
        int eh = int(std::lround(std::sqrt(area * aspect))), ew = int(std::lround(std::sqrt(area / aspect)));
        if (eh < 1) eh = 1;
        if (ew < 1) ew = 1;
        if (eh <= H && ew <= W) {
            const int y0 = int(r.below(H - eh + 1)), x0 = int(r.below(W - ew + 1));
            for (int y = y0; y < y0 + eh; ++y)
                for (int x = x0; x < x0 + ew; ++x)
                    for (int c = 0; c < C; ++c) out[(size_t(y) * W + x) * C + c] = uint8_t(r.next() >> 56);
        }
    }
}

}  // namespace ufo
