// augment.h — augmentation for small images, on uint8 pixels before normalisation.
// Each sample gets its own generator seeded from (seed, step, index): augmentation is
// stateless, so a resumed run sees exactly the images an uninterrupted run would.
#pragma once
#include <cstdint>

namespace ufo {

struct AugmentConfig {
    int crop_pad = 0;        // random crop from the image zero-padded by this many pixels
    bool hflip = false;      // horizontal flip with probability 1/2
    float erase_prob = 0.0f; // random erasing (area 2%..25%, aspect 0.3..3.3, noise fill)
    bool any() const { return crop_pad > 0 || hflip || erase_prob > 0; }
};

// out, in: [H,W,C]
void augment_image(uint8_t* out, const uint8_t* in, int H, int W, int C, const AugmentConfig& cfg,
                   uint64_t sample_seed);

}  // namespace ufo
