// fuzz_jpeg — decode_jpeg (lib/io/image_io.h) from memory. Raw bytes; seeds are small JPEGs
// (gray, RGB, 4:2:0 and 4:4:4, progressive, restart markers: tests/fuzz/seed_images.cpp). An image
// that decodes is decoded again as gray and as RGB. Oracle: the buffer matches the reported size.
#include "base/common.h"
#include "fuzz_common.h"
#include "io/image_io.h"

#include <cstdint>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::vector<uint8_t> bytes(data, data + size);
    for (int channels : {0, 1, 3}) {
        try {
            ufo::Image im = ufo::decode_jpeg(bytes, "fuzz.jpg", channels);
            if (im.h <= 0 || im.w <= 0 || (channels && im.c != channels) || (im.c != 1 && im.c != 3) ||
                im.px.size() != size_t(im.h) * size_t(im.w) * size_t(im.c))
                fuzz::finding("decode_jpeg returned " + std::to_string(im.h) + "x" + std::to_string(im.w) + "x" +
                              std::to_string(im.c) + " with " + std::to_string(im.px.size()) + " bytes");
        } catch (const ufo::Error& e) {
            fuzz::rejected(e);
            return 0;
        }
    }
    return 0;
}
