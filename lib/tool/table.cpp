// table.cpp — the five table formats of table.h.
#include "tool/table.h"

#include "base/common.h"
#include "tool/cli.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <ostream>

namespace ufo {

TableFormat parse_table_format(const std::string& s) {
    if (s == "md") return TableFormat::md;
    if (s == "csv") return TableFormat::csv;
    if (s == "tsv") return TableFormat::tsv;
    if (s == "json") return TableFormat::json;
    if (s == "jsonl") return TableFormat::jsonl;
    throw UsageError("option --format: '" + s + "' is not one of md, csv, tsv, json, jsonl");
}

std::string fixed_text(double x, int digits) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", digits, x);
    return buf;
}

namespace {

// RFC 4180: quote a field only when it holds a separator, a quote or a line break.
std::string csv_field(const std::string& s) {
    if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
    std::string q = "\"";
    for (char c : s) {
        if (c == '"') q += '"';
        q += c;
    }
    return q + '"';
}

// A pipe inside a cell would split it.
std::string md_cell(const std::string& s) {
    std::string o;
    for (char c : s) {
        if (c == '|') o += '\\';
        o += c;
    }
    return o;
}

// Numeric cells become JSON numbers (an empty one null), the others strings.
nlohmann::ordered_json json_row(const std::vector<Column>& cols, const std::vector<std::string>& cells) {
    nlohmann::ordered_json j;
    for (size_t i = 0; i < cells.size(); ++i) {
        if (cols[i].numeric && !cells[i].empty()) j[cols[i].name] = nlohmann::ordered_json::parse(cells[i]);
        else if (cols[i].numeric) j[cols[i].name] = nullptr;
        else j[cols[i].name] = cells[i];
    }
    return j;
}

}  // namespace

TablePrinter::TablePrinter(std::ostream& out, TableFormat f, std::vector<Column> columns)
    : out_(out), f_(f), cols_(std::move(columns)) {}

void TablePrinter::line(const std::vector<std::string>& cells, char sep) {
    for (size_t i = 0; i < cells.size(); ++i)
        out_ << (i ? std::string(1, sep) : "") << (sep == ',' ? csv_field(cells[i]) : cli::tsv(cells[i]));
    out_ << '\n';
}

void TablePrinter::add(const std::vector<std::string>& cells) {
    if (cells.size() != cols_.size()) fail("", "internal error: a table row has the wrong number of cells");
    switch (f_) {
    case TableFormat::csv:
    case TableFormat::tsv: {
        const char sep = f_ == TableFormat::csv ? ',' : '\t';
        if (!header_done_) {
            std::vector<std::string> h;
            for (const auto& c : cols_) h.push_back(c.name);
            line(h, sep);
        }
        header_done_ = true;
        line(cells, sep);
        out_.flush();
        break;
    }
    case TableFormat::jsonl:
        out_ << json_row(cols_, cells).dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << '\n';
        out_.flush();
        break;
    case TableFormat::md:
    case TableFormat::json:
        rows_.push_back(cells);
        break;
    }
}

void TablePrinter::finish() {
    if (finished_) return;
    finished_ = true;
    std::vector<std::string> head;
    for (const auto& c : cols_) head.push_back(c.name);
    switch (f_) {
    case TableFormat::csv:
    case TableFormat::tsv:
        // An empty table still gets its header, so a reader always finds the columns.
        if (!header_done_) line(head, f_ == TableFormat::csv ? ',' : '\t');
        break;
    case TableFormat::jsonl:
        break;
    case TableFormat::md: {
        std::vector<size_t> w(head.size(), 3);
        for (size_t i = 0; i < head.size(); ++i) w[i] = std::max(w[i], head[i].size());
        for (auto& r : rows_)
            for (size_t i = 0; i < r.size(); ++i) {
                r[i] = md_cell(r[i]);
                w[i] = std::max(w[i], r[i].size());
            }
        auto row = [&](const std::vector<std::string>& v) {
            out_ << '|';
            for (size_t i = 0; i < v.size(); ++i) {
                std::string pad(w[i] - v[i].size(), ' ');
                out_ << ' ' << (cols_[i].numeric ? pad + v[i] : v[i] + pad) << " |";
            }
            out_ << '\n';
        };
        row(head);
        out_ << '|';
        for (size_t i = 0; i < head.size(); ++i)
            out_ << (cols_[i].numeric ? std::string(w[i] + 1, '-') + ":|" : ":" + std::string(w[i] + 1, '-') + '|');
        out_ << '\n';
        for (const auto& r : rows_) row(r);
        break;
    }
    case TableFormat::json: {
        auto a = nlohmann::ordered_json::array();
        for (const auto& r : rows_) a.push_back(json_row(cols_, r));
        out_ << a.dump(1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << '\n';
        break;
    }
    }
    out_.flush();
}

}  // namespace ufo
