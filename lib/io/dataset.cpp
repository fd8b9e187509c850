// dataset.cpp — load/save/split of the ufo dataset file.
#include "io/dataset.h"

#include "io/atomic_file.h"
#include "base/common.h"
#include "io/h5.h"
#include "base/bounds.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <numeric>

namespace ufo {

namespace {

// splitmix64: tiny, and unlike std::shuffle/std::uniform_int_distribution its output is
// the same on every standard library, so splits are reproducible everywhere.
struct ShuffleRng {
    uint64_t s;
    uint64_t next() {
        uint64_t z = (s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    uint64_t below(uint64_t n) { return uint64_t((unsigned __int128)next() * n >> 64); }
    template <class T> void shuffle(std::vector<T>& v) {
        for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(i)]);
    }
};

std::string tool_of(const std::string& command_line) {
    std::string first = command_line.substr(0, command_line.find(' '));
    auto slash = first.find_last_of('/');
    if (slash != std::string::npos) first = first.substr(slash + 1);
    return first.empty() ? "libufo" : first;
}

std::vector<std::vector<int64_t>> by_class(const std::vector<int32_t>& labels, int num_classes, ShuffleRng& rng) {
    std::vector<std::vector<int64_t>> idx(size_t(std::max(num_classes, 0)));
    for (size_t i = 0; i < labels.size(); ++i) {
        if (labels[i] < 0 || labels[i] >= num_classes)
            fail("", "label " + std::to_string(labels[i]) + " at index " + std::to_string(i) +
                         " is out of range [0," + std::to_string(num_classes) + ")");
        idx[size_t(labels[i])].push_back(int64_t(i));
    }
    for (auto& v : idx) rng.shuffle(v);
    return idx;
}

}  // namespace

void Dataset::validate(const std::string& where, bool allow_empty) const {
    if (n < 0 || h <= 0 || w <= 0 || c <= 0)
        fail(where, "bad image shape " + std::to_string(h) + "x" + std::to_string(w) + "x" + std::to_string(c));
    if (images.size() != size_t(n) * image_size())
        fail(where, "image buffer holds " + std::to_string(images.size()) + " bytes, expected " +
                        std::to_string(size_t(n) * image_size()));
    if (labels.size() != size_t(n))
        fail(where, std::to_string(labels.size()) + " labels for " + std::to_string(n) + " images");
    if (class_names.empty()) fail(where, "no class names");
    if (n == 0 && !allow_empty) fail(where, "dataset is empty");
    for (size_t i = 0; i < labels.size(); ++i)
        if (labels[i] < 0 || labels[i] >= num_classes())
            fail(where, "label " + std::to_string(labels[i]) + " at index " + std::to_string(i) +
                            " is out of range [0," + std::to_string(num_classes()) + ")");
}

Dataset load_dataset(const std::string& path, bool allow_empty) {
    h5::File f = h5::File::open_read(path);
    const std::string& name = f.path();
    if (!h5::has_attr(f, "/", "format")) fail(name, "not a ufo dataset (no format attribute)");
    std::string format = h5::get_str(f, "/", "format");
    if (format != kDatasetFormat) fail(name, "not a ufo dataset (format=" + format + ")");
    int64_t version = h5::get_int(f, "/", "format_version");
    if (version != kDatasetVersion)
        fail(name, "unsupported dataset format_version " + std::to_string(version) + " (this ufo reads " +
                       std::to_string(kDatasetVersion) + ")");

    auto ishape = h5::shape(f, "/images");
    if (ishape.size() != 4) fail(name, "/images has shape " + h5::shape_str(ishape) + ", expected [N,H,W,C]");
    auto lshape = h5::shape(f, "/labels");
    if (lshape != std::vector<hsize_t>{ishape[0]})
        fail(name, "/labels has shape " + h5::shape_str(lshape) + ", expected [" + std::to_string(ishape[0]) +
                       "] to match /images");
    // Every size is checked as a 64-bit value before it is narrowed or allocated.
    const char* axes[] = {"N (images)", "H", "W", "C"};
    const int64_t max_of[] = {bounds::kMaxImages, bounds::kMaxImageSide, bounds::kMaxImageSide, bounds::kMaxChannels};
    for (int i = 0; i < 4; ++i)
        if (ishape[size_t(i)] > hsize_t(max_of[i]))
            fail(name, "/images has shape " + h5::shape_str(ishape) + ": " + axes[i] + " is above the limit of " +
                           std::to_string(max_of[i]));
    const int64_t n = int64_t(ishape[0]), h = int64_t(ishape[1]), w = int64_t(ishape[2]), c = int64_t(ishape[3]);
    if (h * w > bounds::kMaxImagePixels)
        fail(name, "/images has shape " + h5::shape_str(ishape) + ": images of " + std::to_string(h * w) +
                       " pixels are above the limit of " + std::to_string(bounds::kMaxImagePixels));
    Dataset ds;
    ds.n = n;
    ds.h = int(h);
    ds.w = int(w);
    ds.c = int(c);
    ds.class_names = h5::get_strs(f, "/", "class_names");
    int64_t k = h5::get_int_in(f, "/", "num_classes", 1, bounds::kMaxClasses);
    if (k != int64_t(ds.class_names.size()))
        fail(name, "num_classes=" + std::to_string(k) + " but class_names has " +
                       std::to_string(ds.class_names.size()) + " entries");
    if (h5::has_attr(f, "/", "source")) ds.source = h5::get_str(f, "/", "source");
    if (ds.h <= 0 || ds.w <= 0 || ds.c <= 0) fail(name, "/images has shape " + h5::shape_str(ishape) + " with an empty image");
    if (ds.n == 0 && !allow_empty) fail(name, "dataset is empty");
    h5::check_stored(f, "/images");
    h5::check_stored(f, "/labels");

    int64_t pixels = 0;
    if (!bounds::product({n, h, w, c}, &pixels)) fail(name, "/images has shape " + h5::shape_str(ishape) + ", too large");
    bounds::resize_or_fail(ds.images, pixels, name, "/images " + h5::shape_str(ishape));
    bounds::resize_or_fail(ds.labels, n, name, "/labels");
    h5::read_u8(f, "/images", ds.images.data(), ishape);
    h5::read_i32(f, "/labels", ds.labels.data(), lshape);
    ds.validate(name, allow_empty);
    return ds;
}

void save_dataset(const Dataset& ds, const std::string& path, const std::string& command_line, int zstd_level) {
    ds.validate(path == "-" ? "<stdout>" : path, true);
    AtomicPath out(path);
    write_dataset(ds, out, command_line, zstd_level);
    out.commit();
}

void write_dataset(const Dataset& ds, AtomicPath& out, const std::string& command_line, int zstd_level) {
    const std::string shown = out.is_stdout() ? "<stdout>" : out.path();
    ds.validate(shown, true);
    h5::File f = h5::File::create(out.tmp(), shown);
    h5::write_u8(f, "/images", ds.images.data(),
                 {hsize_t(ds.n), hsize_t(ds.h), hsize_t(ds.w), hsize_t(ds.c)}, zstd_level);
    h5::write_i32(f, "/labels", ds.labels.data(), {hsize_t(ds.n)}, zstd_level);
    h5::set_attr(f, "/", "format", kDatasetFormat);
    h5::set_attr(f, "/", "format_version", int64_t(kDatasetVersion));
    h5::set_attr(f, "/", "class_names", ds.class_names);
    h5::set_attr(f, "/", "num_classes", int64_t(ds.num_classes()));
    h5::set_attr(f, "/", "source", ds.source);
    h5::set_attr(f, "/", "tool", tool_of(command_line));
    h5::set_attr(f, "/", "ufo_version", kVersion);
    h5::set_attr(f, "/", "command_line", command_line);
    h5::set_attr(f, "/", "created", utc_now());
    f.close();
}

std::vector<int64_t> class_counts(const Dataset& ds) {
    std::vector<int64_t> counts(size_t(ds.num_classes()), 0);
    for (int32_t l : ds.labels)
        if (l >= 0 && l < ds.num_classes()) ++counts[size_t(l)];
    return counts;
}

Dataset subset(const Dataset& ds, const std::vector<int64_t>& idx) {
    Dataset out;
    out.n = int64_t(idx.size());
    out.h = ds.h;
    out.w = ds.w;
    out.c = ds.c;
    out.class_names = ds.class_names;
    out.source = ds.source;
    size_t sz = ds.image_size();
    out.images.resize(idx.size() * sz);
    out.labels.resize(idx.size());
    for (size_t j = 0; j < idx.size(); ++j) {
        if (idx[j] < 0 || idx[j] >= ds.n) fail("", "subset index " + std::to_string(idx[j]) + " out of range");
        std::memcpy(out.images.data() + j * sz, ds.image(idx[j]), sz);
        out.labels[j] = ds.labels[size_t(idx[j])];
    }
    return out;
}

std::vector<std::vector<int64_t>> split_fractions(const std::vector<int32_t>& labels, int num_classes,
                                                  const std::vector<double>& fractions, uint64_t seed) {
    double sum = 0;
    for (double f : fractions) {
        if (!(f > 0)) fail("", "split fractions must be positive");
        sum += f;
    }
    if (fractions.size() < 2 || std::fabs(sum - 1.0) > 1e-6)
        fail("", "split fractions must be at least 2 parts summing to 1 (got " + std::to_string(sum) + ")");
    ShuffleRng rng{seed};
    auto classes = by_class(labels, num_classes, rng);
    std::vector<std::vector<int64_t>> parts(fractions.size());
    for (const auto& members : classes) {
        double cum = 0;
        size_t begin = 0;
        for (size_t k = 0; k < fractions.size(); ++k) {
            cum += fractions[k];
            // Boundaries at rounded cumulative shares keep every class's parts summing to its size.
            size_t end = k + 1 == fractions.size() ? members.size() : size_t(std::llround(cum * double(members.size())));
            end = std::min(std::max(end, begin), members.size());
            parts[k].insert(parts[k].end(), members.begin() + long(begin), members.begin() + long(end));
            begin = end;
        }
    }
    for (auto& p : parts) rng.shuffle(p);
    return parts;
}

std::vector<std::vector<int64_t>> split_counts(const std::vector<int32_t>& labels, int num_classes,
                                               const std::vector<int64_t>& counts, uint64_t seed) {
    int64_t total = 0, n = int64_t(labels.size());
    for (int64_t c : counts) {
        if (c <= 0) fail("", "split counts must be positive");
        total += c;
    }
    if (total > n)
        fail("", "split counts sum to " + std::to_string(total) + " but the dataset has " + std::to_string(n) + " samples");
    ShuffleRng rng{seed};
    auto classes = by_class(labels, num_classes, rng);
    std::vector<size_t> taken(classes.size(), 0);
    std::vector<std::vector<int64_t>> parts(counts.size());
    for (size_t k = 0; k < counts.size(); ++k) {
        // Largest-remainder apportionment of counts[k] in proportion to class sizes,
        // capped by what each class has left.
        std::vector<int64_t> give(classes.size(), 0);
        std::vector<std::pair<double, size_t>> rem;
        int64_t given = 0;
        for (size_t c = 0; c < classes.size(); ++c) {
            double q = double(counts[k]) * double(classes[c].size()) / double(n);
            int64_t left = int64_t(classes[c].size() - taken[c]);
            give[c] = std::min<int64_t>(int64_t(std::floor(q)), left);
            given += give[c];
            rem.push_back({q - std::floor(q), c});
        }
        std::stable_sort(rem.begin(), rem.end(), [](auto& a, auto& b) { return a.first > b.first; });
        while (given < counts[k]) {
            bool progress = false;
            for (auto& r : rem) {
                size_t c = r.second;
                if (given < counts[k] && give[c] < int64_t(classes[c].size() - taken[c])) {
                    ++give[c];
                    ++given;
                    progress = true;
                }
            }
            if (!progress) break;  // unreachable: total <= n
        }
        for (size_t c = 0; c < classes.size(); ++c) {
            auto b = classes[c].begin() + long(taken[c]);
            parts[k].insert(parts[k].end(), b, b + give[c]);
            taken[c] += size_t(give[c]);
        }
        rng.shuffle(parts[k]);
    }
    return parts;
}

}  // namespace ufo
