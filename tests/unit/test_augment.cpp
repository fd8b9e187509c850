// Augmentation (ufo-train --crop-pad, --hflip, --erase): each output is checked against what the
// option promises, by search over the transformations it may have drawn, not against a copy of
// the implementation: a crop is the input shifted by at most the padding with zeros where the
// shift leaves the image, a flip is the mirror image, erasing overwrites one rectangle of 2%..25%
// of the image with aspect 0.3..3.3, the same sample seed gives the same output, and all-off is
// the identity.
#include "train/augment.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <set>
#include <utility>
#include <vector>

using namespace ufo;

namespace {

// Every pixel and channel distinct and non-zero, so a zero in the output can only be padding.
std::vector<uint8_t> test_image(int H, int W, int C) {
    std::vector<uint8_t> img(size_t(H) * W * C);
    for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x)
            for (int c = 0; c < C; ++c) img[(size_t(y) * W + x) * C + c] = uint8_t(1 + (y * 31 + x * 7 + c * 3) % 255);
    return img;
}

// in shifted by (dy, dx) (out(y,x) = in(y+dy, x+dx), zero outside), then mirrored when flip.
std::vector<uint8_t> shifted(const std::vector<uint8_t>& in, int H, int W, int C, int dy, int dx, bool flip) {
    std::vector<uint8_t> out(in.size(), 0);
    for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x) {
            const int xs = flip ? W - 1 - x : x;   // mirror of the shifted image
            const int sy = y + dy, sx = xs + dx;
            if (sy < 0 || sy >= H || sx < 0 || sx >= W) continue;
            for (int c = 0; c < C; ++c) out[(size_t(y) * W + x) * C + c] = in[(size_t(sy) * W + sx) * C + c];
        }
    return out;
}

std::vector<uint8_t> augment(const std::vector<uint8_t>& in, int H, int W, int C, const AugmentConfig& cfg,
                             uint64_t seed) {
    std::vector<uint8_t> out(in.size(), 0xAB);
    augment_image(out.data(), in.data(), H, W, C, cfg, seed);
    return out;
}

// All (dy, dx, flip) with |dy|,|dx| <= P (flip only when allowed) that explain `out` exactly.
std::vector<std::tuple<int, int, bool>> explanations(const std::vector<uint8_t>& in, const std::vector<uint8_t>& out,
                                                     int H, int W, int C, int P, bool flips) {
    std::vector<std::tuple<int, int, bool>> found;
    for (int f = 0; f <= (flips ? 1 : 0); ++f)
        for (int dy = -P; dy <= P; ++dy)
            for (int dx = -P; dx <= P; ++dx)
                if (shifted(in, H, W, C, dy, dx, f) == out) found.emplace_back(dy, dx, f == 1);
    return found;
}

}  // namespace

TEST(Augment, AllOffIsTheIdentity) {
    const int H = 6, W = 5, C = 3;
    const auto in = test_image(H, W, C);
    AugmentConfig off;
    ASSERT_FALSE(off.any());
    for (uint64_t seed : {0ull, 1ull, 12345ull, ~0ull}) EXPECT_EQ(augment(in, H, W, C, off, seed), in);
    AugmentConfig zero;   // explicit zeros, as --crop-pad 0 --erase 0 give
    zero.crop_pad = 0;
    zero.erase_prob = 0.0f;
    zero.hflip = false;
    EXPECT_FALSE(zero.any());
    EXPECT_EQ(augment(in, H, W, C, zero, 7), in);
    // any() is what the trainer asks before calling augment_image at all
    AugmentConfig c1; c1.crop_pad = 1;
    AugmentConfig c2; c2.hflip = true;
    AugmentConfig c3; c3.erase_prob = 0.5f;
    EXPECT_TRUE(c1.any());
    EXPECT_TRUE(c2.any());
    EXPECT_TRUE(c3.any());
}

TEST(Augment, CropIsAShiftedCopyWithZeroPaddingAndCoversEveryShift) {
    const int H = 7, W = 9, C = 2, P = 2;
    const auto in = test_image(H, W, C);
    AugmentConfig cfg;
    cfg.crop_pad = P;
    std::set<std::pair<int, int>> seen;
    for (uint64_t seed = 0; seed < 600; ++seed) {
        const auto out = augment(in, H, W, C, cfg, seed);
        const auto ex = explanations(in, out, H, W, C, P, false);
        ASSERT_EQ(ex.size(), 1u) << "seed " << seed << ": not exactly one shift within the padding explains the crop";
        const auto [dy, dx, f] = ex[0];
        seen.insert({dy, dx});
        // the rows/columns the shift brings in from outside are zero (the padding), the rest not
        size_t zeros = 0;
        for (uint8_t v : out) zeros += v == 0;
        const size_t inside = size_t(H - std::abs(dy)) * size_t(W - std::abs(dx)) * C;
        EXPECT_EQ(zeros, out.size() - inside) << "seed " << seed;
    }
    EXPECT_EQ(seen.size(), size_t((2 * P + 1) * (2 * P + 1))) << "every shift in [-P,P]^2 occurs";
}

TEST(Augment, HflipMirrorsAboutHalfTheSamples) {
    const int H = 4, W = 6, C = 3;
    const auto in = test_image(H, W, C);
    const auto mirror = shifted(in, H, W, C, 0, 0, true);
    ASSERT_NE(mirror, in);
    // the mirror by hand: out(y, x) = in(y, W-1-x), channels kept together
    for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x)
            for (int c = 0; c < C; ++c)
                ASSERT_EQ(mirror[(size_t(y) * W + x) * C + c], in[(size_t(y) * W + W - 1 - x) * C + c]);
    AugmentConfig cfg;
    cfg.hflip = true;
    const int n = 2000;
    int flipped = 0;
    for (uint64_t seed = 0; seed < uint64_t(n); ++seed) {
        const auto out = augment(in, H, W, C, cfg, seed);
        ASSERT_TRUE(out == in || out == mirror) << "seed " << seed << ": neither the image nor its mirror";
        flipped += out == mirror;
    }
    // p = 1/2: standard error sqrt(n)/2 = 22; 5 sigma
    EXPECT_NEAR(flipped, n / 2, 112);
}

TEST(Augment, CropAndFlipTogetherAreAMirroredShift) {
    const int H = 6, W = 6, C = 1, P = 1;
    const auto in = test_image(H, W, C);
    AugmentConfig cfg;
    cfg.crop_pad = P;
    cfg.hflip = true;
    std::set<std::tuple<int, int, bool>> seen;
    for (uint64_t seed = 0; seed < 400; ++seed) {
        const auto ex = explanations(in, augment(in, H, W, C, cfg, seed), H, W, C, P, true);
        ASSERT_EQ(ex.size(), 1u) << "seed " << seed;
        seen.insert(ex[0]);
    }
    EXPECT_EQ(seen.size(), size_t(2 * (2 * P + 1) * (2 * P + 1)));
}

TEST(Augment, EraseOverwritesOneRectangleWithinTheAreaAndAspectBounds) {
    const int H = 64, W = 64, C = 1;
    const auto in = test_image(H, W, C);
    AugmentConfig cfg;
    cfg.erase_prob = 1.0f;
    const double amin = 0.02 * H * W, amax = 0.25 * H * W;
    double smallest = 1e9, largest = 0, min_aspect = 1e9, max_aspect = 0;
    for (uint64_t seed = 0; seed < 1000; ++seed) {
        const auto out = augment(in, H, W, C, cfg, seed);
        int y0 = H, y1 = -1, x0 = W, x1 = -1;
        for (int y = 0; y < H; ++y)
            for (int x = 0; x < W; ++x)
                if (out[size_t(y) * W + x] != in[size_t(y) * W + x]) {
                    y0 = std::min(y0, y); y1 = std::max(y1, y);
                    x0 = std::min(x0, x); x1 = std::max(x1, x);
                }
        ASSERT_GE(y1, 0) << "seed " << seed << ": probability 1 must erase";
        const int bh = y1 - y0 + 1, bw = x1 - x0 + 1;
        // Inside the bounding box nearly every pixel is new noise (a draw equals the old value
        // with probability 1/256), and the noise is not one flat value.
        int changed = 0;
        std::set<uint8_t> values;
        for (int y = y0; y <= y1; ++y)
            for (int x = x0; x <= x1; ++x) {
                changed += out[size_t(y) * W + x] != in[size_t(y) * W + x];
                values.insert(out[size_t(y) * W + x]);
            }
        EXPECT_GE(changed, 0.9 * bh * bw) << "seed " << seed << ": the changed pixels are not one rectangle";
        if (bh * bw >= 16) {
            EXPECT_GE(values.size(), 8u) << "seed " << seed;
        }
        // The sides are round(sqrt(area*aspect)) and round(sqrt(area/aspect)): within 0.5 of
        // real sides whose product is in [2%, 25%] of H*W and whose ratio is in [0.3, 3.3].
        EXPECT_LE((bh - 0.5) * (bw - 0.5), amax) << "seed " << seed << ": " << bh << "x" << bw;
        EXPECT_GE((bh + 0.5) * (bw + 0.5), amin) << "seed " << seed << ": " << bh << "x" << bw;
        EXPECT_LE((bh - 0.5) / (bw + 0.5), 3.3) << "seed " << seed << ": " << bh << "x" << bw;
        EXPECT_GE((bh + 0.5) / (bw - 0.5), 0.3) << "seed " << seed << ": " << bh << "x" << bw;
        smallest = std::min(smallest, double(bh) * bw);
        largest = std::max(largest, double(bh) * bw);
        min_aspect = std::min(min_aspect, double(bh) / bw);
        max_aspect = std::max(max_aspect, double(bh) / bw);
    }
    // The draws span the stated ranges, not a corner of them.
    EXPECT_LT(smallest, 0.04 * H * W);
    EXPECT_GT(largest, 0.20 * H * W);
    EXPECT_LT(min_aspect, 0.5);
    EXPECT_GT(max_aspect, 2.0);
}

TEST(Augment, EraseProbabilityIsTheFractionOfErasedSamples) {
    const int H = 16, W = 16, C = 1, n = 4000;
    const auto in = test_image(H, W, C);
    for (float p : {0.25f, 0.75f}) {
        AugmentConfig cfg;
        cfg.erase_prob = p;
        int erased = 0;
        for (uint64_t seed = 0; seed < uint64_t(n); ++seed) erased += augment(in, H, W, C, cfg, seed) != in;
        // standard error sqrt(p(1-p)/n) = 0.0068; 5 sigma
        EXPECT_NEAR(double(erased) / n, p, 0.035) << "erase probability " << p;
    }
}

TEST(Augment, SameSampleSeedSameImageOtherSeedOtherImage) {
    const int H = 8, W = 8, C = 3;
    const auto in = test_image(H, W, C);
    AugmentConfig cfg;
    cfg.crop_pad = 2;
    cfg.hflip = true;
    cfg.erase_prob = 0.5f;
    std::set<std::vector<uint8_t>> distinct;
    for (uint64_t seed = 100; seed < 140; ++seed) {
        const auto a = augment(in, H, W, C, cfg, seed);
        EXPECT_EQ(a, augment(in, H, W, C, cfg, seed)) << "seed " << seed;
        distinct.insert(a);
    }
    EXPECT_GE(distinct.size(), 30u);   // 50 crop/flip cases times erasing: seeds rarely collide
    // The output does not depend on what the output buffer held before (no stale pixels).
    std::vector<uint8_t> o1(in.size(), 0), o2(in.size(), 0xFF);
    augment_image(o1.data(), in.data(), H, W, C, cfg, 5);
    augment_image(o2.data(), in.data(), H, W, C, cfg, 5);
    EXPECT_EQ(o1, o2);
}
