// atomic_file.h — never leave a partial output file behind, and cheap file checksums.
#pragma once
#include <cstdint>
#include <string>

namespace ufo {

// Write to tmp() (same directory as the final path, so rename is atomic), then commit().
// Without commit() the destructor removes the temp file. The constructor checks the
// destination before any work is done: "<path>: directory does not exist" / "... not writable".
// For "-", tmp() lives under $TMPDIR (or /tmp) and commit() copies it to stdout.
// Close every handle on tmp() (e.g. h5::File::close()) before commit().
class AtomicPath {
public:
    explicit AtomicPath(std::string final_path);
    ~AtomicPath();
    AtomicPath(const AtomicPath&) = delete;
    AtomicPath& operator=(const AtomicPath&) = delete;
    const std::string& tmp() const { return tmp_; }
    const std::string& path() const { return path_; }
    bool is_stdout() const { return path_ == "-"; }
    void commit();
private:
    std::string path_, tmp_;
    bool committed_ = false;
};

// 64-bit FNV-1a of a file's bytes, for provenance (e.g. a parent checkpoint's checksum).
uint64_t fnv1a_file(const std::string& path);

}  // namespace ufo
