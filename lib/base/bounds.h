// bounds.h — the bounds every reader checks before it allocates (formats/*.md, "Limits").
//
// Sizes read from a file (HDF5 extents and attributes, IDX headers, PNG/JPEG headers, route
// tables) are untrusted: each is range-checked as a 64-bit value against the limits below,
// products are computed with overflow checks, and the memory a buffer needs is compared with
// what the machine has *before* the buffer exists. A file that breaks a limit gets one error
// line naming the file, the value and the limit, never a wrapped size or an allocation bomb.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ufo::bounds {

// Images (datasets, PNG/JPEG decoding, IDX import).
inline constexpr int64_t kMaxImageSide = 16384;                 // pixels per axis
inline constexpr int64_t kMaxImagePixels = int64_t(1) << 26;    // H*W of one image (8192x8192)
inline constexpr int64_t kMaxChannels = 4;
inline constexpr int64_t kMaxImages = (int64_t(1) << 31) - 1;   // N of a dataset (int32 labels)
inline constexpr int64_t kMaxClasses = 100000;                  // K of a dataset or task
inline constexpr int64_t kMaxEncodedImageBytes = int64_t(256) << 20;  // one PNG/JPEG file

// Architectures (checkpoints and command-line flags alike).
inline constexpr int64_t kMaxDim = 8192;
inline constexpr int64_t kMaxDepth = 128;
inline constexpr int64_t kMaxHeads = 128;
inline constexpr int64_t kMaxMlpHidden = 65536;
inline constexpr int64_t kMaxTasks = 64;
inline constexpr int64_t kMaxTokens = 4097;                     // patches + class token
inline constexpr int64_t kMaxParams = int64_t(1) << 30;         // floats in one model (4 GiB)
inline constexpr int64_t kMaxSteps = int64_t(1) << 40;          // optimisation steps of a run

// Route tables and other small text files.
inline constexpr int64_t kMaxTextFileBytes = int64_t(16) << 20;

// a*b (and a*b*c...) in 64 bits; false on overflow or a negative factor.
bool mul(int64_t a, int64_t b, int64_t* out);
bool product(const std::vector<int64_t>& factors, int64_t* out);

// Physical memory of this machine in bytes (sysconf), or INT64_MAX when unknown.
int64_t physical_memory();

// "1.5 GiB", "200 MiB", "12 KiB", "17 bytes".
std::string human_bytes(double bytes);

// Fails "<where>: <what> needs N GiB, more than this machine's M GiB of memory" when bytes
// exceeds physical memory. Call before allocating a buffer whose size came from a file.
void check_memory(const std::string& where, const std::string& what, int64_t bytes);

// value in [lo, hi], else "<where>: <what> is V, outside LO..HI".
void check_range(const std::string& where, const std::string& what, int64_t value, int64_t lo, int64_t hi);

// v.resize(n) with std::bad_alloc / std::length_error turned into an error naming `where`.
template <class Vec>
void resize_or_fail(Vec& v, int64_t n, const std::string& where, const std::string& what);

}  // namespace ufo::bounds

#include "base/common.h"

#include <new>
#include <stdexcept>

namespace ufo::bounds {

template <class Vec>
void resize_or_fail(Vec& v, int64_t n, const std::string& where, const std::string& what) {
    int64_t bytes = 0;
    if (n < 0) fail(where, what + " has a negative size");
    if (!mul(n, int64_t(sizeof(typename Vec::value_type)), &bytes)) fail(where, what + " is too large (size overflows)");
    check_memory(where, what, bytes);
    try {
        v.resize(size_t(n));
    } catch (const std::bad_alloc&) {
        fail(where, "cannot allocate " + human_bytes(double(bytes)) + " for " + what + " (out of memory)");
    } catch (const std::length_error&) {
        fail(where, "cannot allocate " + human_bytes(double(bytes)) + " for " + what + " (too large)");
    }
}

}  // namespace ufo::bounds
