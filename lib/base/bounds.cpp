// bounds.cpp — overflow-checked sizes and the memory check behind every bounded reader.
#include "base/bounds.h"

#include <cstdio>
#include <limits>
#include <unistd.h>

namespace ufo::bounds {

bool mul(int64_t a, int64_t b, int64_t* out) {
    if (a < 0 || b < 0) return false;
    return !__builtin_mul_overflow(a, b, out);
}

bool product(const std::vector<int64_t>& factors, int64_t* out) {
    int64_t p = 1;
    for (int64_t f : factors)
        if (!mul(p, f, &p)) return false;
    *out = p;
    return true;
}

int64_t physical_memory() {
    const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
    int64_t bytes = 0;
    if (pages <= 0 || page <= 0 || !mul(pages, page, &bytes)) return std::numeric_limits<int64_t>::max();
    return bytes;
}

std::string human_bytes(double bytes) {
    const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    int u = 0;
    while (bytes >= 1024 && u < 6) {
        bytes /= 1024;
        ++u;
    }
    char buf[48];
    if (u == 0) std::snprintf(buf, sizeof buf, "%.0f bytes", bytes);
    else std::snprintf(buf, sizeof buf, "%.1f %s", bytes, units[u]);
    return buf;
}

void check_memory(const std::string& where, const std::string& what, int64_t bytes) {
    const int64_t have = physical_memory();
    if (bytes > have)
        fail(where, what + " needs " + human_bytes(double(bytes)) + ", more than this machine's " +
                        human_bytes(double(have)) + " of memory");
}

void check_range(const std::string& where, const std::string& what, int64_t value, int64_t lo, int64_t hi) {
    if (value < lo || value > hi)
        fail(where, what + " is " + std::to_string(value) + ", outside " + std::to_string(lo) + ".." +
                        std::to_string(hi));
}

}  // namespace ufo::bounds
