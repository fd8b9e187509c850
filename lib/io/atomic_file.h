// atomic_file.h — never leave a partial output file behind, and cheap file checksums.
#pragma once
#include <cstdint>
#include <string>

namespace ufo {

// Write to tmp() (same directory as the final path, so rename is atomic), then commit().
// The temp file carries an open-file-description lock for as long as its writer lives; the
// next AtomicPath for the same name removes temp files whose lock is free (their writer was
// killed), so `.NAME.tmp.*` left by kill -9 do not pile up.
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
    int fd_ = -1;              // holds the lock on tmp_
    bool committed_ = false;
};

// True when a and b name the same file: the same device and inode when both exist, else the
// same absolute path after resolving symlinks and "..". "" and "-" never match.
bool same_file(const std::string& a, const std::string& b);

// 64-bit FNV-1a of a file's bytes, for provenance (e.g. a parent checkpoint's checksum).
uint64_t fnv1a_file(const std::string& path);
// Such a checksum as recorded in files: 16 lower-case hex digits.
std::string hex64(uint64_t v);
// The time recorded in a file's `created` attribute, ISO 8601 UTC; SOURCE_DATE_EPOCH
// (reproducible-builds convention) pins it, so identical runs give byte-identical files.
std::string utc_now();

}  // namespace ufo
