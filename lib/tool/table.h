// table.h — one printer for every table a tool writes on stdout: markdown (aligned), CSV
// (RFC 4180), TSV (cells escaped as cli::tsv does), a JSON array or JSON Lines. Cells arrive
// as text already rounded; numeric columns are right-aligned in markdown and written as JSON
// numbers. CSV, TSV and JSON Lines stream row by row, so a long run shows results early.
#pragma once
#include <iosfwd>
#include <string>
#include <vector>

namespace ufo {

enum class TableFormat { md, csv, tsv, json, jsonl };
// "md", "csv", "tsv", "json", "jsonl"; else a usage error naming --format and `allowed`.
TableFormat parse_table_format(const std::string& s);

struct Column {
    std::string name;
    bool numeric = false;
};

class TablePrinter {
public:
    TablePrinter(std::ostream& out, TableFormat f, std::vector<Column> columns);
    void add(const std::vector<std::string>& cells);
    // Prints what was held back (md, json) or the header of an empty CSV/TSV table.
    void finish();

private:
    void line(const std::vector<std::string>& cells, char sep);
    std::ostream& out_;
    TableFormat f_;
    std::vector<Column> cols_;
    std::vector<std::vector<std::string>> rows_;
    bool header_done_ = false, finished_ = false;
};

// Fixed-point text of x with `digits` decimals.
std::string fixed_text(double x, int digits);

}  // namespace ufo
