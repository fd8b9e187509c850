// atomic_file.cpp — temp-then-rename output files.
#include "io/atomic_file.h"

#include "base/common.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <filesystem>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace ufo {

namespace {

std::string parent_dir(const std::string& path) {
    auto slash = path.find_last_of('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

std::string base_name(const std::string& path) {
    auto slash = path.find_last_of('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

// mkstemp creates 0600; outputs should get the usual umask-derived mode instead.
mode_t file_mode() {
    mode_t mask = ::umask(0);
    ::umask(mask);
    return 0666 & ~mask;
}

// An open-file-description lock (F_OFD_SETLK) marks a temp file as in use. It is released by
// the kernel when its writer dies, however it dies. flock() would not do: HDF5 takes flock()
// locks on the files it opens, and the two kinds of lock do not interact on Linux.
bool ofd_lock(int fd, short type) {
    struct flock fl {};
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    return ::fcntl(fd, F_OFD_SETLK, &fl) == 0;
}

// Creates the temp file from templ_path ("...XXXXXX") and returns it with its lock held in *fd.
std::string make_temp(const std::string& where, const std::string& templ_path, int* fd) {
    std::vector<char> templ(templ_path.begin(), templ_path.end());
    templ.push_back('\0');
    *fd = ::mkostemp(templ.data(), O_CLOEXEC);
    if (*fd < 0) fail(where, std::string("cannot create a temporary file: ") + std::strerror(errno));
    ::fchmod(*fd, file_mode());
    ofd_lock(*fd, F_WRLCK);   // best effort: without it the file is merely never cleaned up
    return templ.data();
}

// Removes dir/<prefix>XXXXXX files (our temp names) that no live writer holds a lock on.
void remove_stale_temps(const std::string& dir, const std::string& prefix) {
    DIR* d = ::opendir(dir.c_str());
    if (!d) return;
    while (const dirent* e = ::readdir(d)) {
        const std::string name = e->d_name;
        if (name.size() != prefix.size() + 6 || name.compare(0, prefix.size(), prefix) != 0) continue;
        const std::string path = dir + "/" + name;
        const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0) continue;
        struct stat st {};
        // A read lock is refused while the writer holds its write lock.
        if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == ::geteuid() && ofd_lock(fd, F_RDLCK))
            ::unlink(path.c_str());
        ::close(fd);
    }
    ::closedir(d);
}

}  // namespace

AtomicPath::AtomicPath(std::string final_path) : path_(std::move(final_path)) {
    if (path_.empty()) fail("", "empty output path");
    if (path_ == "-") {
        const char* env = std::getenv("TMPDIR");
        std::string dir = env && *env ? env : "/tmp";
        remove_stale_temps(dir, "ufo-stdout.");
        tmp_ = make_temp("<stdout>", dir + "/ufo-stdout.XXXXXX", &fd_);
        return;
    }
    if (path_.back() == '/') fail(path_, "is a directory");
    std::string dir = parent_dir(path_);
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) fail(path_, "directory does not exist");
    if (::access(dir.c_str(), W_OK | X_OK) != 0) fail(path_, "directory is not writable");
    if (::stat(path_.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) fail(path_, "is a directory");
    remove_stale_temps(dir, "." + base_name(path_) + ".tmp.");
    tmp_ = make_temp(path_, dir + "/." + base_name(path_) + ".tmp.XXXXXX", &fd_);
}

AtomicPath::~AtomicPath() {
    if (!committed_ && !tmp_.empty()) ::unlink(tmp_.c_str());
    if (fd_ >= 0) ::close(fd_);
}

void AtomicPath::commit() {
    if (committed_) return;
    if (path_ != "-") {
        if (::rename(tmp_.c_str(), path_.c_str()) != 0)
            fail(path_, std::string("cannot rename temporary file into place: ") + std::strerror(errno));
        committed_ = true;
        ::close(fd_);
        fd_ = -1;
        return;
    }
    std::FILE* in = std::fopen(tmp_.c_str(), "rb");
    if (!in) fail("<stdout>", "temporary file vanished");
    char buf[1 << 16];
    size_t n;
    bool ok = true;
    while (ok && (n = std::fread(buf, 1, sizeof buf, in)) > 0) ok = std::fwrite(buf, 1, n, stdout) == n;
    ok = ok && !std::ferror(in) && std::fflush(stdout) == 0;
    std::fclose(in);
    ::unlink(tmp_.c_str());
    committed_ = true;
    if (!ok) fail("<stdout>", "write error");
}

bool same_file(const std::string& a, const std::string& b) {
    if (a.empty() || b.empty() || a == "-" || b == "-") return false;
    struct stat sa {}, sb {};
    const bool ea = ::stat(a.c_str(), &sa) == 0, eb = ::stat(b.c_str(), &sb) == 0;
    if (ea && eb) return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    if (ea != eb) return false;
    std::error_code e1, e2;
    const auto ca = std::filesystem::weakly_canonical(std::filesystem::absolute(a, e1), e1);
    const auto cb = std::filesystem::weakly_canonical(std::filesystem::absolute(b, e2), e2);
    return !e1 && !e2 && ca == cb;
}

uint64_t fnv1a_file(const std::string& path) {
    std::FILE* in = path == "-" ? stdin : std::fopen(path.c_str(), "rb");
    if (!in) fail(path, errno == ENOENT ? "no such file" : std::strerror(errno));
    uint64_t h = 14695981039346656037ull;
    unsigned char buf[1 << 16];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, in)) > 0)
        for (size_t i = 0; i < n; ++i) h = (h ^ buf[i]) * 1099511628211ull;
    bool bad = std::ferror(in);
    if (in != stdin) std::fclose(in);
    if (bad) fail(path, "read error");
    return h;
}

std::string hex64(uint64_t v) {
    char b[24];
    std::snprintf(b, sizeof b, "%016llx", (unsigned long long)v);
    return b;
}

std::string utc_now() {
    std::time_t t = std::time(nullptr);
    if (const char* e = std::getenv("SOURCE_DATE_EPOCH")) t = std::time_t(std::strtoll(e, nullptr, 10));
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

}  // namespace ufo
