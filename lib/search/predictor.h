// predictor.h — GP-NAS predictors of an elastic model's sub-networks: the measured table they
// learn from (ufo-bench --sample), one GPNASModel per target column, k-fold cross-validation,
// and the predictor file (formats/predictor.md).
#pragma once
#include "nn/vit.h"
#include "search/gp.h"

#include <cstdint>
#include <string>
#include <vector>

namespace ufo {

// Limits on what a table may hold. Fitting costs O(n³) per likelihood evaluation and a few
// hundred evaluations: 2000 rows take 25 s per target column on 2 cores.
inline constexpr int64_t kMaxTableRows = 2000;
inline constexpr int64_t kMaxTableColumns = 256;
inline constexpr int64_t kMaxTableBytes = int64_t(64) << 20;

// A table of measured sub-networks: TSV with a header (ufo-bench's default) or JSON Lines
// (ufo-bench -o jsonl). It must have an "arch" column of specs.
struct MeasuredTable {
    std::string where;                           // the file's name for messages ("<stdin>" for -)
    std::vector<std::string> columns;
    std::vector<std::vector<std::string>> rows;  // cells as text, one vector per row
    std::vector<int64_t> lines;                  // the source line of each row

    int column(const std::string& name) const;   // -1 when absent
    // A numeric column; errors name the file, line and column ("no column 'x' (columns: ...)",
    // "line 7: accuracy 'n/a' is not a finite number").
    std::vector<double> numbers(const std::string& name) const;
};

// Reads and checks a table ('-' = stdin): an empty table, a missing arch column, a row with
// the wrong number of cells, too many rows are errors naming the file.
MeasuredTable read_measured_table(const std::string& path);
// The same from text in memory; `where` names it in errors.
MeasuredTable parse_measured_table(const std::string& text, const std::string& where);

// The sub-architectures of a table's arch column, parsed against the elastic model (errors name
// the file and line).
std::vector<Active> table_archs(const MeasuredTable& t, const ViTConfig& cfg);

// Columns a table has that are not predicted because ufo computes them exactly.
bool is_exact_column(const std::string& name);   // depth, params, mflops

struct Predictor {
    ViTConfig cfg;                       // the elastic model's architecture and space
    std::vector<std::string> archs;      // [n] training sub-architectures (canonical specs)
    std::vector<double> X;               // [n, d] their features (search/space.h)
    struct Target {
        std::string name;
        std::vector<double> y;           // [n] measured values
        GPNASModel model;
    };
    std::vector<Target> targets;
    // Provenance
    std::string model_path, table_path, command;
    uint64_t model_checksum = 0;

    int n() const { return int(archs.size()); }
    int d() const;
    int target_index(const std::string& name) const;   // -1 when absent
    // Predicted mean (and sd) of target t for a sub-architecture.
    double predict(int t, const Active& a, double* sd = nullptr) const;
};

// One model per target column, trained on every row of the table.
Predictor fit_predictor(const MeasuredTable& table, const ViTConfig& cfg, const std::vector<std::string>& targets,
                        const GPNASOptions& o);

// Out-of-fold predictions: row i predicted by a model fitted on the other folds.
std::vector<double> cross_validate(const std::vector<double>& X, int n, int d, const std::vector<double>& y,
                                   int folds, uint64_t seed, const GPNASOptions& o);

// Atomic write (temp file + rename) of an HDF5 predictor file; the loader checks every shape
// and number and rebuilds each GP's Cholesky factor from the stored points.
void save_predictor(const std::string& path, const Predictor& p);
Predictor load_predictor(const std::string& path);

}  // namespace ufo
