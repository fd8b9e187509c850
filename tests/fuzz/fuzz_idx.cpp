// fuzz_idx — import_idx (lib/io/image_io.h). It reads paths, so the input is split into two files:
//
//   byte 0      flags: 1 gzip the images part, 2 gzip the labels part, 4 pass class names a,b,c,
//               8 read the images from stdin ("-"), 16 read the labels from stdin
//   bytes 1..4  little-endian length L of the images part (clamped to what is there)
//   then        L bytes of images IDX, the rest is the labels IDX
//
// Seeds (tests/fuzz/make-seeds) are valid pairs in this layout. The gzip flags compress the
// mutated bytes, so the fuzzer reaches the IDX parser through zlib as ufo-data does for .gz
// files. Oracle: an accepted import is a valid Dataset whose shape is the header's.
#include "base/common.h"
#include "io/dataset.h"
#include "fuzz_common.h"
#include "io/image_io.h"

#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace {

std::string gzip(const std::string& raw) {
    z_stream z{};
    if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) fuzz::finding("deflateInit2");
    std::string out(deflateBound(&z, uLong(raw.size())) + 32, '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
    z.avail_in = uInt(raw.size());
    z.next_out = reinterpret_cast<Bytef*>(&out[0]);
    z.avail_out = uInt(out.size());
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) fuzz::finding("deflate");
    out.resize(z.total_out);
    deflateEnd(&z);
    return out;
}

void put(const std::string& path, const std::string& bytes) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f || std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size() || std::fclose(f) != 0)
        fuzz::finding("cannot write " + path);
}

uint32_t be32(const std::string& s, size_t at) {
    return uint32_t(uint8_t(s[at])) << 24 | uint32_t(uint8_t(s[at + 1])) << 16 | uint32_t(uint8_t(s[at + 2])) << 8 |
           uint8_t(s[at + 3]);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 5) return 0;
    const uint8_t flags = data[0];
    size_t len = size_t(data[1]) | size_t(data[2]) << 8 | size_t(data[3]) << 16 | size_t(data[4]) << 24;
    len = std::min(len, size - 5);
    const std::string images(reinterpret_cast<const char*>(data) + 5, len);
    const std::string labels(reinterpret_cast<const char*>(data) + 5 + len, size - 5 - len);
    const std::string ipath = fuzz::scratch("images.idx"), lpath = fuzz::scratch("labels.idx");
    put(ipath, flags & 1 ? gzip(images) : images);
    put(lpath, flags & 2 ? gzip(labels) : labels);
    std::string iarg = ipath, larg = lpath;
    if (flags & 8) fuzz::stdin_from(ipath), iarg = "-";
    if (flags & 16) fuzz::stdin_from(lpath), larg = "-";
    std::vector<std::string> names;
    if (flags & 4) names = {"a", "b", "c"};
    try {
        ufo::Dataset ds = ufo::import_idx(iarg, larg, names);
        try {
            ds.validate("accepted import");
        } catch (const ufo::Error& e) {
            fuzz::finding(e.what());
        }
        // Accepted means both headers were complete: images rank 3 at 4..15 (unless the part
        // is itself gzip data, which the reader inflates).
        const bool gz = images.size() >= 2 && uint8_t(images[0]) == 0x1f && uint8_t(images[1]) == 0x8b;
        if (images.size() >= 16 && !gz &&
            (uint64_t(ds.n) != be32(images, 4) || uint64_t(ds.h) != be32(images, 8) ||
             uint64_t(ds.w) != be32(images, 12) || ds.c != 1))
            fuzz::finding("accepted IDX images " + std::to_string(be32(images, 4)) + "x" + std::to_string(be32(images, 8)) +
                          "x" + std::to_string(be32(images, 12)) + " as " + std::to_string(ds.n) + "x" +
                          std::to_string(ds.h) + "x" + std::to_string(ds.w));
    } catch (const ufo::Error& e) {
        fuzz::rejected(e);
    }
    return 0;
}
