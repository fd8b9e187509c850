// zstd_filter.cpp — HDF5 filter 32015 (Zstandard): each chunk is one zstd frame.
#include "io/zstd_filter.h"

#include <zstd.h>

#include <algorithm>
#include <cstring>

namespace ufo::h5 {
namespace {

// The exact size of a decompressed chunk of the read in progress (0: unknown, capped at 1 GiB).
// libufo's reader sets it from the dataset's chunk shape, so that a forged header cannot make
// the filter allocate more than one chunk nor return a short one.
thread_local size_t t_chunk_bytes = 0;
constexpr size_t kUnknownChunkCap = size_t(1) << 30;
size_t chunk_limit() { return t_chunk_bytes ? t_chunk_bytes : kUnknownChunkCap; }

size_t zstd_decompress_unknown_size(size_t nbytes, size_t* buf_size, void** buf) {
    // Frames written without a content size (streaming writers) are decoded incrementally.
    ZSTD_DStream* ds = ZSTD_createDStream();
    if (!ds) return 0;
    size_t cap = std::min(std::max<size_t>(nbytes * 4, 1 << 16), chunk_limit()), used = 0;
    auto* out = static_cast<char*>(H5allocate_memory(cap, false));
    ZSTD_inBuffer in{*buf, nbytes, 0};
    size_t r = 1;
    while (out && r != 0) {
        if (used == cap) {
            if (cap >= chunk_limit()) {  // more than the chunk can hold: corrupt or hostile
                H5free_memory(out);
                out = nullptr;
                break;
            }
            size_t ncap = std::min(cap * 2, chunk_limit());
            auto* grown = static_cast<char*>(H5allocate_memory(ncap, false));
            if (grown) std::memcpy(grown, out, used);
            H5free_memory(out);
            out = grown;
            cap = ncap;
            if (!out) break;
        }
        ZSTD_outBuffer ob{out, cap, used};
        r = ZSTD_decompressStream(ds, &ob, &in);
        used = ob.pos;
        if (ZSTD_isError(r) || (r != 0 && in.pos == in.size && ob.pos < ob.size)) {
            H5free_memory(out);
            out = nullptr;
        }
    }
    ZSTD_freeDStream(ds);
    if (out && t_chunk_bytes && used != t_chunk_bytes) {
        H5free_memory(out);
        out = nullptr;
    }
    if (!out) return 0;
    H5free_memory(*buf);
    *buf = out;
    *buf_size = cap;
    return used;
}

// HDF5 filter callback: returns the new data size, 0 on failure (HDF5 then fails the I/O).
size_t zstd_filter(unsigned flags, size_t cd_nelmts, const unsigned cd_values[], size_t nbytes,
                   size_t* buf_size, void** buf) {
    if (flags & H5Z_FLAG_REVERSE) {
        unsigned long long n = ZSTD_getFrameContentSize(*buf, nbytes);
        if (n == ZSTD_CONTENTSIZE_ERROR) return 0;
        if (n == ZSTD_CONTENTSIZE_UNKNOWN) return zstd_decompress_unknown_size(nbytes, buf_size, buf);
        if (n > chunk_limit() || (t_chunk_bytes && n != t_chunk_bytes)) return 0;
        void* out = H5allocate_memory(n ? n : 1, false);
        if (!out) return 0;
        size_t r = ZSTD_decompress(out, n, *buf, nbytes);
        if (ZSTD_isError(r) || r != n) {
            H5free_memory(out);
            return 0;
        }
        H5free_memory(*buf);
        *buf = out;
        *buf_size = n ? n : 1;
        return n;
    }
    int level = cd_nelmts > 0 ? int(cd_values[0]) : ZSTD_CLEVEL_DEFAULT;
    size_t cap = ZSTD_compressBound(nbytes);
    void* out = H5allocate_memory(cap, false);
    if (!out) return 0;
    size_t r = ZSTD_compress(out, cap, *buf, nbytes, level);
    if (ZSTD_isError(r)) {
        H5free_memory(out);
        return 0;
    }
    H5free_memory(*buf);
    *buf = out;
    *buf_size = cap;
    return r;
}

}  // namespace

const H5Z_class2_t kZstdClass = {
    H5Z_CLASS_T_VERS, kZstdFilter, 1, 1, "zstd", nullptr, nullptr, zstd_filter,
};

void set_expected_chunk_bytes(size_t n) { t_chunk_bytes = n; }

}  // namespace ufo::h5
