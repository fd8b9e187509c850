// dataset.h — the ufo dataset file (formats/dataset.md): /images uint8 [N,H,W,C],
// /labels int32 [N], class names and provenance as root attributes.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ufo {

inline constexpr const char* kDatasetFormat = "ufo-dataset";
inline constexpr int kDatasetVersion = 1;

struct Dataset {
    int64_t n = 0;
    int h = 0, w = 0, c = 0;
    std::vector<uint8_t> images;  // [n,h,w,c]
    std::vector<int32_t> labels;  // [n], 0..num_classes-1
    std::vector<std::string> class_names;
    std::string source;  // where the data came from (free text, provenance)

    int num_classes() const { return int(class_names.size()); }
    size_t image_size() const { return size_t(h) * w * c; }
    const uint8_t* image(int64_t i) const { return images.data() + size_t(i) * image_size(); }
    // Sizes, label range and class names agree; fails naming `where` otherwise.
    void validate(const std::string& where, bool allow_empty = false) const;
};

// "-" reads stdin. Validates format name/version, dtypes, shapes, label range, non-empty.
Dataset load_dataset(const std::string& path, bool allow_empty = false);
class AtomicPath;
// Writes and closes out.tmp(); the caller commits (several outputs can then appear together).
void write_dataset(const Dataset& ds, AtomicPath& out, const std::string& command_line, int zstd_level = 3);
// Atomic (temp + rename); "-" writes to stdout. zstd_level 0 = uncompressed.
void save_dataset(const Dataset& ds, const std::string& path, const std::string& command_line,
                  int zstd_level = 3);

// Per-class counts, length num_classes().
std::vector<int64_t> class_counts(const Dataset& ds);
// The samples idx (in that order) as a new dataset with the same classes.
Dataset subset(const Dataset& ds, const std::vector<int64_t>& idx);

// Stratified splits: every class is divided in the same proportions. Each part's indices
// come out shuffled; the result depends only on the labels and seed.
// fractions: k parts summing to 1 (each class's share is rounded at cumulative boundaries).
std::vector<std::vector<int64_t>> split_fractions(const std::vector<int32_t>& labels, int num_classes,
                                                  const std::vector<double>& fractions, uint64_t seed);
// counts: exact part sizes (sum <= N), each apportioned over classes by largest remainder.
std::vector<std::vector<int64_t>> split_counts(const std::vector<int32_t>& labels, int num_classes,
                                               const std::vector<int64_t>& counts, uint64_t seed);

}  // namespace ufo
