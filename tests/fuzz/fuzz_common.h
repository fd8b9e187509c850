// fuzz_common.h — helpers shared by the libFuzzer targets in tests/fuzz (see tests/fuzz/README.md).
//
// Contract of every target: a reader may reject its input only by throwing ufo::Error. Any other
// exception (std::length_error, std::out_of_range, ...) escapes to libFuzzer and is a finding, and
// so is std::bad_alloc: an allocation sized by the file must be bounded before it happens, not
// caught afterwards. Findings of "oracle" checks (a value accepted but read wrongly, a leaked
// HDF5 handle) abort with a one-line reason on stderr.
#pragma once
#include <hdf5.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <unistd.h>
#include <vector>

namespace fuzz {

[[noreturn]] inline void finding(const std::string& what) {
    std::fprintf(stderr, "\n==FUZZ FINDING== %s\n", what.c_str());
    std::fflush(stderr);
    std::abort();
}

// A per-process scratch file on tmpfs (/dev/shm when writable, else $TMPDIR or /tmp), removed at
// exit. Per process because libFuzzer's -fork/-jobs modes run several targets at once.
inline std::string scratch(const std::string& name) {
    static auto* made = new std::vector<std::string>;  // never destroyed: atexit handlers use it
    static const std::string dir = [] {
        std::atexit([] { for (const auto& p : *made) ::unlink(p.c_str()); });
        if (::access("/dev/shm", W_OK) == 0) return std::string("/dev/shm");
        const char* t = std::getenv("TMPDIR");
        return std::string(t && *t ? t : "/tmp");
    }();
    std::string p = dir + "/ufo-fuzz-" + std::to_string(::getpid()) + "-" + name;
    if (std::find(made->begin(), made->end(), p) == made->end()) made->push_back(p);
    return p;
}

// The readers open and close every HDF5 object they touch, also when they throw. A handle left
// open would pin the scratch file (the next H5Fcreate fails) and is a leak in a long-running tool.
inline void check_hdf5_handles(const char* after) {
    ssize_t n = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
    if (n > 0) finding(std::to_string(n) + " HDF5 object(s) still open after " + after);
}

// HDF5 allocates its metadata cache (~0.5 MiB, calloc) per open file. Under ASan a block that
// size is a fresh mmap each time, which made page faults most of an execution; keeping HDF5's
// own free lists unbounded lets it reuse the blocks. Call once, from LLVMFuzzerInitialize.
inline void hdf5_init() {
    H5set_free_list_limits(-1, -1, -1, -1, -1, -1);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

// UFO_FUZZ_VERBOSE=1 prints why each input was rejected (to see how deep the inputs get).
inline void rejected(const std::exception& e) {
    static const bool verbose = std::getenv("UFO_FUZZ_VERBOSE") != nullptr;
    if (verbose) std::fprintf(stderr, "rejected: %s\n", e.what());
}

// Points stdin at `path`, so that a reader given "-" reads the same bytes through its stdin path.
inline void stdin_from(const std::string& path) {
    if (!std::freopen(path.c_str(), "rb", stdin)) finding("cannot reopen stdin from " + path);
}

}  // namespace fuzz
