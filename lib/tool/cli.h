// cli.h — what every ufo tool shares: error handling around main, option parsing
// conventions, TTY detection and a stderr progress bar.
#pragma once
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace ufo::cli {

namespace po = boost::program_options;

// Runs body(); turns any ufo::Error / option error / std::exception into one line
// "<tool>: <message>" on stderr and a non-zero exit (2 for usage errors, 1 otherwise).
int run(const char* tool, const std::function<int()>& body);

// Parses argv against opts (+ positional), handles --help by printing usage to stdout
// and returning false (caller exits 0). Unknown options throw po::error.
bool parse(int argc, char** argv, const po::options_description& opts,
           const po::positional_options_description& pos, po::variables_map& vm,
           const std::string& usage);

// Splits "1,64,256" into integers; throws ufo::Error naming the option on bad input.
std::vector<int> int_list(const std::string& opt, const std::string& s);
std::vector<std::string> split(const std::string& s, char sep);

// Usage error (exit 2) when an output path names one of the inputs (the same file, by device
// and inode, or the same path once made canonical) or another output. "" and "-" are skipped.
void check_outputs(const std::vector<std::string>& outputs, const std::vector<std::string>& inputs);

// --seed S: a non-negative integer below 2^64 (usage error otherwise).
uint64_t seed(const std::string& s);

bool stderr_is_tty();

// A TSV cell: backslash, tab, CR and newline escaped as \\ \t \r \n, so user text (paths,
// class names) cannot break a row.
std::string tsv(const std::string& s);

// Sub-architecture specs, one per line, from a file or '-' (stdin): blank lines and lines
// starting with '#' are skipped; a TSV line keeps its first column, or, when the first line is
// a header with an "arch" column (a sampling table of ufo-bench), that column of every row; a
// line starting with '{' is a JSON object whose "arch" string is the spec (JSON Lines tables,
// ufo-search select --json). At most max_lines specs of at
// most 65536 bytes each; errors name the file.
std::vector<std::string> read_specs(const std::string& path, size_t max_lines);
// The first spec of stdin ('--arch -').
std::string read_spec_line();

// The command line as one string, recorded in output files as provenance.
std::string command_line(int argc, char** argv);

// A one-line progress bar with rate and ETA, drawn on stderr only when it is a TTY.
class Progress {
public:
    Progress(std::string label, long total, const char* unit);
    void update(long done);
    void finish();
private:
    std::string label_;
    long total_;
    const char* unit_;
    bool enabled_;
    std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace ufo::cli
