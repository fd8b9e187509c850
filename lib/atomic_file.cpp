// atomic_file.cpp — temp-then-rename output files.
#include "atomic_file.h"

#include "common.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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

std::string make_temp(const std::string& where, const std::string& templ_path) {
    std::vector<char> templ(templ_path.begin(), templ_path.end());
    templ.push_back('\0');
    int fd = ::mkstemp(templ.data());
    if (fd < 0) fail(where, std::string("cannot create a temporary file: ") + std::strerror(errno));
    ::fchmod(fd, file_mode());
    ::close(fd);
    return templ.data();
}

}  // namespace

AtomicPath::AtomicPath(std::string final_path) : path_(std::move(final_path)) {
    if (path_.empty()) fail("", "empty output path");
    if (path_ == "-") {
        const char* env = std::getenv("TMPDIR");
        std::string dir = env && *env ? env : "/tmp";
        tmp_ = make_temp("<stdout>", dir + "/ufo-stdout.XXXXXX");
        return;
    }
    if (path_.back() == '/') fail(path_, "is a directory");
    std::string dir = parent_dir(path_);
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) fail(path_, "directory does not exist");
    if (::access(dir.c_str(), W_OK | X_OK) != 0) fail(path_, "directory is not writable");
    if (::stat(path_.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) fail(path_, "is a directory");
    tmp_ = make_temp(path_, dir + "/." + base_name(path_) + ".tmp.XXXXXX");
}

AtomicPath::~AtomicPath() {
    if (!committed_ && !tmp_.empty()) ::unlink(tmp_.c_str());
}

void AtomicPath::commit() {
    if (committed_) return;
    if (path_ != "-") {
        if (::rename(tmp_.c_str(), path_.c_str()) != 0)
            fail(path_, std::string("cannot rename temporary file into place: ") + std::strerror(errno));
        committed_ = true;
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

}  // namespace ufo
