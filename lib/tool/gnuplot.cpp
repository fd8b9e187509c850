// gnuplot.cpp — run gnuplot on a script file, its messages kept for the error line.
#include "tool/gnuplot.h"

#include "base/common.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

extern char** environ;

namespace ufo {

namespace {

// A temp file removed when it goes out of scope.
struct TempFile {
    std::string path;
    explicit TempFile(const char* stem) {
        const char* env = std::getenv("TMPDIR");
        std::string t = std::string(env && *env ? env : "/tmp") + "/" + stem + ".XXXXXX";
        std::vector<char> buf(t.begin(), t.end());
        buf.push_back('\0');
        const int fd = ::mkstemp(buf.data());
        if (fd < 0) fail(t, std::string("cannot create a temporary file: ") + std::strerror(errno));
        ::close(fd);
        path = buf.data();
    }
    ~TempFile() { ::unlink(path.c_str()); }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
};

// The last non-empty line of a file, for gnuplot's error message.
std::string last_line(const std::string& path) {
    std::ifstream f(path);
    std::string line, last;
    while (std::getline(f, line))
        if (line.find_first_not_of(" \t\r^") != std::string::npos) last = line;
    return last;
}

}  // namespace

std::string gp_quote(const std::string& s) {
    std::string o = "'";
    for (char c : s) {
        if (c == '\'') o += "''";
        else if (c == '\n' || c == '\r') o += ' ';
        else o += c;
    }
    return o + "'";
}

std::string gp_png_terminal(int width, int height) {
    const std::string size = " size " + std::to_string(width) + "," + std::to_string(height) + " noenhanced";
    return "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) { set terminal pngcairo" + size +
           " } else { set terminal png" + size + " }";
}

void run_gnuplot(const std::string& script_text, AtomicPath& out) {
    TempFile script("ufo-plot"), errs("ufo-gnuplot");
    {
        std::ofstream f(script.path);
        f << script_text;
        if (!f.flush()) fail(script.path, "cannot write the gnuplot script");
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, errs.path.c_str(), O_WRONLY | O_TRUNC, 0);
    std::string prog = "gnuplot";
    std::vector<char*> argv = {prog.data(), const_cast<char*>(script.path.c_str()), nullptr};
    pid_t pid = 0;
    const int rc = posix_spawnp(&pid, "gnuplot", &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc == ENOENT) fail(out.path(), "cannot plot: gnuplot is not installed (Debian: gnuplot-nox)");
    if (rc != 0) fail(out.path(), std::string("cannot run gnuplot: ") + std::strerror(rc));
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        const std::string why = last_line(errs.path);
        fail(out.path(), "gnuplot failed" + (why.empty() ? std::string() : ": " + why));
    }
    struct stat st {};
    if (::stat(out.tmp().c_str(), &st) != 0 || st.st_size == 0) fail(out.path(), "gnuplot wrote no image");
}

}  // namespace ufo
