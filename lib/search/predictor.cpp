// predictor.cpp — measured tables in, GP-NAS predictors fitted, cross-validated, stored.
#include "search/predictor.h"

#include "base/common.h"
#include "io/atomic_file.h"
#include "io/checkpoint.h"
#include "io/h5.h"
#include "nn/elastic.h"
#include "search/rank_metrics.h"
#include "search/space.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace ufo {

namespace {

constexpr const char* kPredictorFormat = "ufo-predictor";
constexpr int64_t kPredictorVersion = 1;

std::string read_all(const std::string& path, const std::string& where) {
    const bool in = path == "-";
    std::FILE* f = in ? stdin : std::fopen(path.c_str(), "rb");
    if (!f) fail(path, std::string("cannot open: ") + std::strerror(errno));
    std::string s;
    char buf[65536];
    size_t got;
    while ((got = std::fread(buf, 1, sizeof buf, f)) > 0) {
        s.append(buf, got);
        if (int64_t(s.size()) > kMaxTableBytes) {
            if (!in) std::fclose(f);
            fail(where, "is larger than " + std::to_string(kMaxTableBytes >> 20) + " MiB; a measured table is expected");
        }
    }
    const bool err = std::ferror(f);
    if (!in) std::fclose(f);
    if (err) fail(where, "read error");
    return s;
}

// A TSV cell as cli::tsv escapes it: \\ \t \r \n.
std::string unescape(const std::string& c) {
    std::string o;
    for (size_t i = 0; i < c.size(); ++i) {
        if (c[i] == '\\' && i + 1 < c.size()) {
            const char n = c[++i];
            o += n == 't' ? '\t' : n == 'n' ? '\n' : n == 'r' ? '\r' : n;
        } else {
            o += c[i];
        }
    }
    return o;
}

std::vector<std::string> split_tabs(const std::string& line) {
    std::vector<std::string> out;
    size_t start = 0;
    while (true) {
        const size_t tab = line.find('\t', start);
        out.push_back(unescape(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start)));
        if (tab == std::string::npos) break;
        start = tab + 1;
    }
    return out;
}

std::string join(const std::vector<std::string>& v) {
    std::string s;
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
    return s;
}

std::string cell_text(const nlohmann::ordered_json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_number_integer()) return v.dump();
    if (v.is_number()) {
        char b[40];
        std::snprintf(b, sizeof b, "%.17g", v.get<double>());
        return b;
    }
    return v.dump();
}

// Calls fn(line, line number) for each line of text (a final line without '\n' too).
template <class Fn>
void for_each_line(const std::string& text, Fn fn) {
    size_t pos = 0;
    int64_t line_no = 0;
    while (pos < text.size()) {
        size_t end = text.find('\n', pos);
        if (end == std::string::npos) end = text.size();
        fn(text.substr(pos, end - pos), ++line_no);
        pos = end + 1;
    }
}

void add_row(MeasuredTable& t, std::vector<std::string> row, int64_t line_no) {
    if (int64_t(t.rows.size()) >= kMaxTableRows) fail(t.where, "has more than " + std::to_string(kMaxTableRows) + " rows");
    t.rows.push_back(std::move(row));
    t.lines.push_back(line_no);
}

void set_columns(MeasuredTable& t, std::vector<std::string> columns) {
    if (int64_t(columns.size()) > kMaxTableColumns)
        fail(t.where, "has more than " + std::to_string(kMaxTableColumns) + " columns");
    t.columns = std::move(columns);
}

void parse_jsonl(const std::string& text, MeasuredTable& t) {
    for_each_line(text, [&](const std::string& line, int64_t line_no) {
        if (line.find_first_not_of(" \t\r") == std::string::npos) return;
        const std::string at = "line " + std::to_string(line_no);
        nlohmann::ordered_json j;
        try {
            j = nlohmann::ordered_json::parse(line);
        } catch (const std::exception&) {
            fail(t.where, at + " is not a JSON object");
        }
        if (!j.is_object()) fail(t.where, at + " is not a JSON object");
        if (t.columns.empty()) {
            std::vector<std::string> cols;
            for (auto it = j.begin(); it != j.end(); ++it) cols.push_back(it.key());
            set_columns(t, std::move(cols));
        }
        std::vector<std::string> row;
        for (const auto& c : t.columns) {
            if (!j.contains(c)) fail(t.where, at + " has no '" + c + "'");
            row.push_back(cell_text(j[c]));
        }
        add_row(t, std::move(row), line_no);
    });
}

void parse_tsv(const std::string& text, MeasuredTable& t) {
    for_each_line(text, [&](std::string line, int64_t line_no) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty() || line[0] == '#') return;
        std::vector<std::string> cells = split_tabs(line);
        if (t.columns.empty()) return set_columns(t, std::move(cells));
        if (cells.size() != t.columns.size())
            fail(t.where, "line " + std::to_string(line_no) + " has " + std::to_string(cells.size()) +
                              " cells, the header " + std::to_string(t.columns.size()));
        add_row(t, std::move(cells), line_no);
    });
}

// A float64 array of exactly `shape` at `dset`, every value within [lo, hi] (finite; the
// default bound keeps sums of squares far from overflow).
std::vector<double> read_doubles(const h5::File& f, const std::string& dset, const std::vector<hsize_t>& shape,
                                 double lo = -1e150, double hi = 1e150) {
    size_t n = 1;
    for (auto s : shape) n *= size_t(s);
    std::vector<double> v(n);
    h5::read_f64(f, dset, v.data(), shape);
    for (size_t i = 0; i < n; ++i)
        if (!(v[i] >= lo && v[i] <= hi))
            fail(f.path(), dset + "[" + std::to_string(i) + "] is " + std::to_string(v[i]) + ", not a number within " +
                               (lo == 0 ? "0.." + std::to_string(int(hi)) : std::string("-1e150..1e150")));
    return v;
}

double positive_attr(const h5::File& f, const std::string& obj, const char* name) {
    const double v = h5::get_double(f, obj, name);
    if (!(v > 0 && v <= 1e150)) fail(f.path(), obj + "@" + name + " is not a finite positive number");
    return v;
}

}  // namespace

int MeasuredTable::column(const std::string& name) const {
    for (size_t i = 0; i < columns.size(); ++i)
        if (columns[i] == name) return int(i);
    return -1;
}

std::vector<double> MeasuredTable::numbers(const std::string& name) const {
    const int c = column(name);
    if (c < 0) fail(where, "no column '" + name + "' (columns: " + join(columns) + ")");
    std::vector<double> v;
    for (size_t r = 0; r < rows.size(); ++r) {
        const std::string& s = rows[r][size_t(c)];
        errno = 0;
        char* end = nullptr;
        const double x = std::strtod(s.c_str(), &end);
        if (s.empty() || *end != '\0' || errno == ERANGE || !std::isfinite(x))
            fail(where, "line " + std::to_string(lines[r]) + ": " + name + " '" + s + "' is not a finite number");
        // Squares of the values are summed in double: keep them far from overflow.
        if (std::fabs(x) > 1e150)
            fail(where, "line " + std::to_string(lines[r]) + ": " + name + " " + s + " is outside -1e150..1e150");
        v.push_back(x);
    }
    return v;
}

MeasuredTable read_measured_table(const std::string& path) {
    const std::string where = path == "-" ? "<stdin>" : path;
    return parse_measured_table(read_all(path, where), where);
}

MeasuredTable parse_measured_table(const std::string& text, const std::string& where) {
    MeasuredTable t;
    t.where = where;
    if (int64_t(text.size()) > kMaxTableBytes)
        fail(t.where, "is larger than " + std::to_string(kMaxTableBytes >> 20) + " MiB; a measured table is expected");
    if (text.find('\0') != std::string::npos) fail(t.where, "is not text (a NUL byte); a measured table is expected");
    const size_t first = text.find_first_not_of(" \t\r\n");
    if (first == std::string::npos) fail(t.where, "is empty (expected a table from ufo-bench --sample)");
    if (text[first] == '{') parse_jsonl(text, t);
    else parse_tsv(text, t);
    if (t.column("arch") < 0)
        fail(t.where, "has no 'arch' column (columns: " + join(t.columns) + "); expected a table from ufo-bench --sample");
    if (t.rows.empty()) fail(t.where, "has a header but no rows (an empty table)");
    return t;
}

std::vector<Active> table_archs(const MeasuredTable& t, const ViTConfig& cfg) {
    const int c = t.column("arch");
    std::vector<Active> out;
    for (size_t r = 0; r < t.rows.size(); ++r)
        out.push_back(parse_arch(t.rows[r][size_t(c)], cfg, t.where + ": line " + std::to_string(t.lines[r])));
    return out;
}

bool is_exact_column(const std::string& name) { return name == "depth" || name == "params" || name == "mflops"; }

int Predictor::d() const { return feature_count(cfg); }

int Predictor::target_index(const std::string& name) const {
    for (size_t i = 0; i < targets.size(); ++i)
        if (targets[i].name == name) return int(i);
    return -1;
}

double Predictor::predict(int t, const Active& a, double* sd) const {
    std::vector<double> x(static_cast<size_t>(d()));
    encode_arch(cfg, a, x.data());
    return targets[size_t(t)].model.predict(x.data(), sd);
}

Predictor fit_predictor(const MeasuredTable& table, const ViTConfig& cfg, const std::vector<std::string>& targets,
                        const GPNASOptions& o) {
    if (!cfg.is_elastic()) fail("", "internal error: a predictor needs an elastic model");
    Predictor p;
    p.cfg = cfg;
    const std::vector<Active> archs = table_archs(table, cfg);
    const int d = feature_count(cfg), n = int(archs.size());
    p.X.resize(size_t(n) * d);
    for (int i = 0; i < n; ++i) {
        p.archs.push_back(format_arch(archs[size_t(i)]));
        encode_arch(cfg, archs[size_t(i)], p.X.data() + size_t(i) * d);
    }
    for (const auto& name : targets) {
        Predictor::Target t;
        t.name = name;
        t.y = table.numbers(name);
        t.model = gpnas_fit(p.X.data(), n, d, t.y.data(), o);
        p.targets.push_back(std::move(t));
    }
    return p;
}

std::vector<double> cross_validate(const std::vector<double>& X, int n, int d, const std::vector<double>& y,
                                   int folds, uint64_t seed, const GPNASOptions& o) {
    const std::vector<int> fold = kfold_assignment(n, folds, seed);
    std::vector<double> out(static_cast<size_t>(n));
    for (int k = 0; k < folds; ++k) {
        std::vector<double> Xt, yt;
        for (int i = 0; i < n; ++i)
            if (fold[size_t(i)] != k) {
                Xt.insert(Xt.end(), X.begin() + ptrdiff_t(size_t(i) * d), X.begin() + ptrdiff_t(size_t(i + 1) * d));
                yt.push_back(y[size_t(i)]);
            }
        const GPNASModel m = gpnas_fit(Xt.data(), int(yt.size()), d, yt.data(), o);
        for (int i = 0; i < n; ++i)
            if (fold[size_t(i)] == k) out[size_t(i)] = m.predict(X.data() + size_t(i) * d);
    }
    return out;
}

void save_predictor(const std::string& path, const Predictor& p) {
    AtomicPath out(path);
    {
        h5::File f = h5::File::create(out.tmp(), path);
        h5::set_attr(f, "/", "format", kPredictorFormat);
        h5::set_attr(f, "/", "format_version", kPredictorVersion);
        h5::set_attr(f, "/", "kind", "gp-nas");
        h5::set_attr(f, "/", "ufo_version", std::string(kVersion));
        h5::set_attr(f, "/", "tool", "ufo-search");
        h5::set_attr(f, "/", "command", p.command);
        h5::set_attr(f, "/", "created", utc_now());
        h5::set_attr(f, "/", "model", p.model_path);
        h5::set_attr(f, "/", "model_checksum", p.model_path.empty() ? std::string() : hex64(p.model_checksum));
        h5::set_attr(f, "/", "table", p.table_path);
        h5::set_attr(f, "/", "features", "depth/D, heads_l/H, hidden_l/M (l = 0..D-1; 0 beyond the depth)");
        write_vit_arch(f, p.cfg);
        const hsize_t n = hsize_t(p.n()), d = hsize_t(p.d());
        h5::write_f64(f, "/train/features", p.X.data(), {n, d}, 0);
        h5::set_attr(f, "/train", "arch", p.archs);
        std::vector<std::string> names;
        for (const auto& t : p.targets) names.push_back(t.name);
        h5::set_attr(f, "/", "targets", names);
        for (const auto& t : p.targets) {
            const std::string g = "/targets/" + t.name;
            const GPNASModel& m = t.model;
            h5::write_f64(f, g + "/y", t.y.data(), {n}, 0);
            h5::write_f64(f, g + "/w", m.w.data(), {d + 1}, 0);
            h5::set_attr(f, g, "model", m.has_gp ? "gp-nas" : "linear");
            h5::set_attr(f, g, "y_mean", m.y_mean);
            h5::set_attr(f, g, "y_scale", m.y_scale);
            if (m.has_gp) {
                h5::write_f64(f, g + "/alpha", m.gp.alpha.data(), {n}, 0);
                h5::set_attr(f, g, "length_scale", m.gp.hyper.length);
                h5::set_attr(f, g, "noise", m.gp.hyper.noise);
                h5::set_attr(f, g, "signal", m.gp.hyper.signal);
                h5::set_attr(f, g, "log_marginal_likelihood", m.log_ml);
                h5::set_attr(f, g, "fitted_by", m.fitted_by);
            }
        }
        f.close();
    }
    out.commit();
}

Predictor load_predictor(const std::string& path) {
    h5::File f = h5::File::open_read(path);
    if (!h5::has_attr(f, "/", "format") || h5::get_str(f, "/", "format") != kPredictorFormat)
        fail(f.path(), "not a ufo predictor file (make one with ufo-search fit)");
    const int64_t v = h5::get_int(f, "/", "format_version");
    if (v != kPredictorVersion)
        fail(f.path(), "predictor format version " + std::to_string(v) + " is not supported (this ufo reads " +
                           std::to_string(kPredictorVersion) + ")");
    Predictor p;
    p.cfg = read_vit_arch(f);
    if (!p.cfg.is_elastic() || p.cfg.tasks.size() != 1)
        fail(f.path(), "the stored architecture is not a single-task elastic model");
    p.model_path = h5::get_str(f, "/", "model");
    p.table_path = h5::get_str(f, "/", "table");
    p.command = h5::get_str(f, "/", "command");
    const std::string sum = h5::get_str(f, "/", "model_checksum");
    p.model_checksum = sum.empty() ? 0 : std::strtoull(sum.c_str(), nullptr, 16);
    const auto sh = h5::shape(f, "/train/features");
    const hsize_t d = hsize_t(p.d());
    if (sh.size() != 2 || sh[0] < 2 || int64_t(sh[0]) > kMaxTableRows || sh[1] != d)
        fail(f.path(), "/train/features has shape " + h5::shape_str(sh) + ", expected [2.." +
                           std::to_string(kMaxTableRows) + ", " + std::to_string(d) + "]");
    const hsize_t n = sh[0];
    p.X = read_doubles(f, "/train/features", {n, d}, 0.0, 1.0);   // features are scaled to [0, 1]
    p.archs = h5::get_strs(f, "/train", "arch");
    if (p.archs.size() != n)
        fail(f.path(), "/train@arch lists " + std::to_string(p.archs.size()) + " specs for " + std::to_string(n) + " rows");
    const std::vector<std::string> names = h5::get_strs(f, "/", "targets");
    if (names.empty() || int64_t(names.size()) > kMaxTableColumns)
        fail(f.path(), "/@targets must list 1.." + std::to_string(kMaxTableColumns) + " targets");
    for (const auto& name : names) {
        if (name.empty() || name.find('/') != std::string::npos)
            fail(f.path(), "/@targets holds an invalid name '" + name + "'");
        const std::string g = "/targets/" + name;
        Predictor::Target t;
        t.name = name;
        t.y = read_doubles(f, g + "/y", {n});
        GPNASModel& m = t.model;
        m.d = int(d);
        m.w = read_doubles(f, g + "/w", {d + 1});
        m.y_mean = h5::get_double(f, g, "y_mean");
        m.y_scale = positive_attr(f, g, "y_scale");
        if (!(std::fabs(m.y_mean) <= 1e150)) fail(f.path(), g + "@y_mean is not a number within -1e150..1e150");
        const std::string kind = h5::get_str(f, g, "model");
        if (kind != "gp-nas" && kind != "linear") fail(f.path(), g + "@model is '" + kind + "', not gp-nas or linear");
        if (kind == "gp-nas") {
            GPHyper h{positive_attr(f, g, "length_scale"), h5::get_double(f, g, "noise"), positive_attr(f, g, "signal")};
            if (!(h.noise >= 0 && h.noise <= 1e150)) fail(f.path(), g + "@noise is not a finite non-negative number");
            m.log_ml = h5::get_double(f, g, "log_marginal_likelihood");
            m.fitted_by = h5::get_str(f, g, "fitted_by");
            // The factor is rebuilt from the points (one Cholesky); alpha is the stored one, so
            // a file predicts exactly what it says in every program that reads it.
            std::vector<double> zero(size_t(n), 0.0);
            try {
                m.gp = gp_fit(p.X.data(), int(n), int(d), zero.data(), h);
            } catch (const Error& e) {
                fail(f.path(), g + ": " + e.what());
            }
            m.gp.alpha = read_doubles(f, g + "/alpha", {n});
            m.has_gp = true;
        }
        p.targets.push_back(std::move(t));
    }
    return p;
}

}  // namespace ufo
