// cli.cpp — shared main() plumbing for the ufo tools.
#include "tool/cli.h"
#include "io/atomic_file.h"
#include "base/common.h"
#include "dist/process_group.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <sstream>
#include <unistd.h>

namespace ufo::cli {

namespace {
// One line on stderr (under MPI, ranks other than 0 name themselves); a failing rank ends the whole job
// (the others may be waiting in a collective).
int report(const char* tool, const char* what, int code, bool usage_hint = false) {
    // A usage error is the same on every rank (same arguments): rank 0 alone says it, and the
    // others give it a moment to do so before they end the job.
    if (code == 2 && dist::size() > 1 && !dist::root()) {
        sleep(2);
        dist::abort(code);
    }
    const std::string who = dist::root() ? tool : std::string(tool) + ": rank " + std::to_string(dist::rank());
    if (usage_hint)
        std::fprintf(stderr, "%s: %s (see %s --help)\n", who.c_str(), what, tool);
    else
        std::fprintf(stderr, "%s: %s\n", who.c_str(), what);
    if (dist::size() > 1) dist::abort(code);
    return code;
}
}  // namespace

int run(const char* tool, const std::function<int()>& body) {
    try {
        return body();
    } catch (const po::error& e) {
        return report(tool, e.what(), 2, true);
    } catch (const ufo::UsageError& e) {
        return report(tool, e.what(), 2);
    } catch (const ufo::Error& e) {
        return report(tool, e.what(), 1);
    } catch (const std::bad_alloc&) {
        return report(tool, "out of memory", 1);
    } catch (const std::exception& e) {
        return report(tool, e.what(), 1);
    }
}

bool parse(int argc, char** argv, const po::options_description& opts,
           const po::positional_options_description& pos, po::variables_map& vm,
           const std::string& usage) {
    po::store(po::command_line_parser(argc, argv).options(opts).positional(pos).run(), vm);
    if (vm.count("help")) {
        std::cout << usage << "\n\n" << opts << std::endl;
        return false;
    }
    po::notify(vm);
    return true;
}

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::string cur;
    std::istringstream in(s);
    while (std::getline(in, cur, sep)) out.push_back(cur);
    if (!s.empty() && s.back() == sep) out.emplace_back();
    return out;
}

std::vector<std::string> read_specs(const std::string& path, size_t max_lines) {
    const bool in = path == "-";
    const std::string where = in ? "<stdin>" : path;
    std::FILE* f = in ? stdin : std::fopen(path.c_str(), "rb");
    if (!f) fail(path, std::string("cannot open: ") + std::strerror(errno));
    std::vector<std::string> out;
    std::string line;
    bool too_long = false, binary = false, first_line = true, short_row = false, bad_json = false;
    int arch_col = -1;   // a table whose header names an "arch" column: its cells are the specs
    auto take = [&] {
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
        const size_t first = line.find_first_not_of(" \t");
        if (first != std::string::npos && line[first] == '{') {
            // A JSON object with an "arch" string (ufo-search select --json, ufo-bench --json).
            const auto j = nlohmann::json::parse(line, nullptr, false);
            if (j.is_object() && j.contains("arch") && j["arch"].is_string()) out.push_back(j["arch"].get<std::string>());
            else bad_json = true;
            first_line = false;
        } else if (first != std::string::npos && line[first] != '#') {
            const std::vector<std::string> cells = split(line.substr(first), '\t');
            if (first_line && cells.size() > 1) {
                for (size_t c = 0; c < cells.size(); ++c)
                    if (cells[c] == "arch") arch_col = int(c);
            }
            if (!(first_line && arch_col >= 0)) {
                if (arch_col >= 0 && size_t(arch_col) >= cells.size()) short_row = true;
                else out.push_back(arch_col >= 0 ? cells[size_t(arch_col)] : cells[0]);
            }
            first_line = false;
        }
        line.clear();
    };
    int c;
    while ((c = std::fgetc(f)) != EOF && !too_long && !binary && out.size() <= max_lines) {
        if (c == '\n') { take(); continue; }
        if (c == 0) binary = true;
        line += char(c);
        if (line.size() > 65536) too_long = true;
    }
    const bool err = std::ferror(f);
    if (!in) std::fclose(f);
    if (err) fail(where, "read error");
    if (binary) fail(where, "is not text (a NUL byte); expected one sub-architecture spec per line");
    if (too_long) fail(where, "a line is longer than 65536 bytes; expected one sub-architecture spec per line");
    if (!line.empty()) take();
    if (short_row) fail(where, "a row has no cell in the table's arch column");
    if (bad_json) fail(where, "a line starting with '{' is not a JSON object with an \"arch\" string");
    if (out.size() > max_lines) fail(where, "holds more than " + std::to_string(max_lines) + " specs");
    if (out.empty()) fail(where, "holds no sub-architecture spec (expected lines such as depth=4 heads=2 mlp=96)");
    return out;
}

std::string read_spec_line() {
    return read_specs("-", size_t(1) << 20).front();
}

std::vector<int> int_list(const std::string& opt, const std::string& s) {
    std::vector<int> out;
    for (const auto& tok : split(s, ',')) {
        try {
            size_t used = 0;
            int v = std::stoi(tok, &used);
            if (used != tok.size() || v <= 0) throw std::invalid_argument(tok);
            out.push_back(v);
        } catch (const std::exception&) {
            throw UsageError("option --" + opt + ": '" + tok + "' is not a positive integer");
        }
    }
    if (out.empty()) throw UsageError("option --" + opt + ": empty list");
    return out;
}

void check_outputs(const std::vector<std::string>& outputs, const std::vector<std::string>& inputs) {
    for (size_t i = 0; i < outputs.size(); ++i) {
        for (const auto& in : inputs)
            if (same_file(outputs[i], in))
                throw UsageError(outputs[i] + ": output would replace the input " + in + "; choose another output path");
        for (size_t j = 0; j < i; ++j)
            if (same_file(outputs[i], outputs[j]))
                throw UsageError(outputs[i] + ": named twice as an output (also " + outputs[j] + ")");
    }
}

uint64_t seed(const std::string& s) {
    // Digits only: boost would read "-1" as 2^64 - 1.
    errno = 0;
    char* end = nullptr;
    const unsigned long long v = s.empty() || s.find_first_not_of("0123456789") != std::string::npos
                                     ? 0 : std::strtoull(s.c_str(), &end, 10);
    if (s.empty() || !end || *end || errno == ERANGE)
        throw UsageError("option --seed: '" + s + "' is not an integer in 0.." + std::to_string(UINT64_MAX));
    return v;
}

bool stderr_is_tty() { return isatty(STDERR_FILENO) == 1; }

std::string command_line(int argc, char** argv) {
    std::string s;
    for (int i = 0; i < argc; ++i) {
        if (i) s += ' ';
        s += argv[i];
    }
    return s;
}

Progress::Progress(std::string label, long total, const char* unit)
    : label_(std::move(label)), total_(total), unit_(unit), enabled_(stderr_is_tty() && dist::root()),
      start_(std::chrono::steady_clock::now()), last_(start_) {}

void Progress::update(long done) {
    if (!enabled_) return;
    auto now = std::chrono::steady_clock::now();
    if (done < total_ && now - last_ < std::chrono::milliseconds(200)) return;
    last_ = now;
    double secs = std::chrono::duration<double>(now - start_).count();
    double rate = secs > 0 ? done / secs : 0.0;
    double eta = rate > 0 ? (total_ - done) / rate : 0.0;
    int width = 30, fill = total_ > 0 ? int(width * double(done) / total_) : 0;
    std::string bar(fill, '#');
    bar.resize(width, '.');
    std::fprintf(stderr, "\r%s [%s] %ld/%ld %.1f %s/s ETA %.0fs   ", label_.c_str(), bar.c_str(),
                 done, total_, rate, unit_, eta);
    std::fflush(stderr);
}

void Progress::finish() {
    if (enabled_) std::fprintf(stderr, "\n");
}

std::string tsv(const std::string& s) {
    std::string o;
    for (char c : s) {
        if (c == '\\') o += "\\\\";
        else if (c == '\t') o += "\\t";
        else if (c == '\n') o += "\\n";
        else if (c == '\r') o += "\\r";
        else o += c;
    }
    return o;
}

}  // namespace ufo::cli
