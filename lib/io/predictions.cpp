// predictions.cpp — streaming writer and validating reader of the predictions file
// (formats/predictions.md).
#include "io/predictions.h"

#include "io/atomic_file.h"
#include "base/common.h"
#include "io/h5.h"
#include "base/bounds.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace ufo {

namespace {

void quiet() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

h5::Handle check_id(hid_t id, herr_t (*close)(hid_t), const std::string& where, const std::string& what) {
    if (id < 0) fail(where, "cannot " + what);
    return h5::Handle(id, close);
}

h5::Handle vlen_string_type() {
    h5::Handle t(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(t.get(), H5T_VARIABLE);
    H5Tset_cset(t.get(), H5T_CSET_UTF8);
    return t;
}

// The chunk rule of every other ufo tensor (formats/checkpoint.md): the whole dataset up to
// 2^20 elements, else runs of whole rows of at most 2^20 elements. Uncompressed.
h5::Handle create_rows(h5::File& f, const std::string& name, hid_t type, int64_t n, int cols) {
    const int rank = cols > 0 ? 2 : 1;
    const hsize_t dims[2] = {hsize_t(n), hsize_t(std::max(cols, 1))};
    const hsize_t budget = hsize_t(1) << 20;
    const hsize_t chunk[2] = {std::max<hsize_t>(1, std::min<hsize_t>(dims[0], budget / dims[1])), dims[1]};
    const std::string what = "create " + name;
    h5::Handle space = check_id(H5Screate_simple(rank, dims, nullptr), H5Sclose, f.path(), what);
    h5::Handle dcpl = check_id(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, f.path(), what);
    H5Pset_obj_track_times(dcpl.get(), 0);   // the same predictions give the same bytes
    if (H5Pset_chunk(dcpl.get(), rank, chunk) < 0) fail(f.path(), "cannot " + what);
    return check_id(H5Dcreate2(f.id(), name.c_str(), type, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
                    H5Dclose, f.path(), what);
}

// Rows [first, first + count) of a dataset made by create_rows.
void write_rows(const h5::File& f, const h5::Handle& d, const std::string& name, hid_t mem_type, int64_t first,
                int64_t count, int cols, const void* data) {
    const int rank = cols > 0 ? 2 : 1;
    const hsize_t start[2] = {hsize_t(first), 0}, size[2] = {hsize_t(count), hsize_t(std::max(cols, 1))};
    h5::Handle fs = check_id(H5Dget_space(d.get()), H5Sclose, f.path(), "write " + name);
    h5::Handle ms = check_id(H5Screate_simple(rank, size, nullptr), H5Sclose, f.path(), "write " + name);
    if (H5Sselect_hyperslab(fs.get(), H5S_SELECT_SET, start, nullptr, size, nullptr) < 0 ||
        H5Dwrite(d.get(), mem_type, ms.get(), fs.get(), H5P_DEFAULT, data) < 0)
        fail(f.path(), "cannot write " + name + " (disk full?)");
}

// ---------------------------------------------------------------- reading

std::string optional_str(const h5::File& f, const char* name) {
    return h5::has_attr(f, "/", name) ? h5::get_str(f, "/", name) : std::string();
}

// "" (none) or 16 hex digits; *has tells which.
uint64_t checksum_attr(const h5::File& f, const char* name, bool* has) {
    const std::string s = optional_str(f, name);
    *has = !s.empty();
    if (s.empty()) return 0;
    if (s.size() != 16 || s.find_first_not_of("0123456789abcdef") != std::string::npos)
        fail(f.path(), std::string("attribute /@") + name + " is '" + s + "', expected 16 lowercase hex digits or ''");
    return std::strtoull(s.c_str(), nullptr, 16);
}

std::vector<std::string> read_sources(const h5::File& f, int64_t n) {
    const std::string name = "/sources";
    const auto shape = h5::shape(f, name);
    if (shape != std::vector<hsize_t>{hsize_t(n)})
        fail(f.path(), name + " has shape " + h5::shape_str(shape) + ", expected [" + std::to_string(n) +
                           "] to match /probs");
    h5::Handle d = check_id(H5Dopen2(f.id(), name.c_str(), H5P_DEFAULT), H5Dclose, f.path(), "open " + name);
    h5::Handle t = check_id(H5Dget_type(d.get()), H5Tclose, f.path(), "read the type of " + name);
    if (H5Tget_class(t.get()) != H5T_STRING || H5Tis_variable_str(t.get()) <= 0)
        fail(f.path(), name + " has type " + h5::type_name(f, name) + ", expected variable-length strings");
    h5::check_stored(f, name);
    std::vector<char*> ptrs;
    bounds::resize_or_fail(ptrs, n, f.path(), name);
    h5::Handle mem = vlen_string_type();
    H5Tset_cset(mem.get(), H5Tget_cset(t.get()));
    h5::Handle space = check_id(H5Dget_space(d.get()), H5Sclose, f.path(), "read " + name);
    if (H5Dread(d.get(), mem.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) < 0)
        fail(f.path(), "cannot read " + name + " (truncated or corrupt data)");
    std::vector<std::string> out;
    try {
        out.reserve(size_t(n));
        for (char* p : ptrs) out.emplace_back(p ? p : "");
    } catch (const std::bad_alloc&) {
        H5Dvlen_reclaim(mem.get(), space.get(), H5P_DEFAULT, ptrs.data());
        fail(f.path(), "cannot allocate memory for " + name + " (out of memory)");
    }
    H5Dvlen_reclaim(mem.get(), space.get(), H5P_DEFAULT, ptrs.data());
    return out;
}

std::string row_name(int64_t i) { return "row " + std::to_string(i); }

void check_values(const std::string& where, const Predictions& p) {
    const size_t K = size_t(p.k);
    // Softmax in float32: each sum may be off by rounding, a little more for many classes.
    const double tol = 1e-3 + double(p.k) * std::ldexp(1.0, -23);
    for (int64_t i = 0; i < p.n; ++i) {
        const float* pr = p.probs.data() + size_t(i) * K;
        const float* lg = p.logits.data() + size_t(i) * K;
        double sum = 0.0;
        float top = 0.0f;
        for (size_t k = 0; k < K; ++k) {
            if (!std::isfinite(lg[k])) fail(where, "/logits " + row_name(i) + " holds a non-finite value");
            if (!(pr[k] >= 0.0f && pr[k] <= 1.0f))
                fail(where, "/probs " + row_name(i) + " holds " + std::to_string(pr[k]) + ", not a probability in [0,1]");
            sum += pr[k];
            top = std::max(top, pr[k]);
        }
        if (std::fabs(sum - 1.0) > tol)
            fail(where, "/probs " + row_name(i) + " sums to " + std::to_string(sum) + ", not 1");
        const int32_t y = p.prediction[size_t(i)];
        if (y < 0 || y >= p.k)
            fail(where, "/prediction " + row_name(i) + " is " + std::to_string(y) + ", outside [0," +
                            std::to_string(p.k) + ")");
        if (pr[y] != top)
            fail(where, "/prediction " + row_name(i) + " is class " + std::to_string(y) +
                            ", which is not a largest probability of the row");
        if (!p.labels.empty() && (p.labels[size_t(i)] < 0 || p.labels[size_t(i)] >= p.k))
            fail(where, "/labels " + row_name(i) + " is " + std::to_string(p.labels[size_t(i)]) + ", outside [0," +
                            std::to_string(p.k) + ")");
    }
}

}  // namespace

// ---------------------------------------------------------------- writer

struct PredictionsWriter::Impl {
    h5::File f;                          // declared first: closed after the datasets
    h5::Handle probs, logits, prediction;
    PredictionsInfo info;
    int64_t n = 0, next = 0;
    int k = 0;
    std::vector<int32_t> pred;           // one batch
};

PredictionsWriter::PredictionsWriter(AtomicPath& out, const PredictionsInfo& info, int64_t n,
                                     const std::vector<int32_t>& labels, const std::vector<std::string>& sources) {
    const std::string shown = out.is_stdout() ? "<stdout>" : out.path();
    if (n < 1 || n > bounds::kMaxImages)
        fail(shown, "cannot store " + std::to_string(n) + " predictions (1.." + std::to_string(bounds::kMaxImages) + ")");
    if (info.num_classes < 1 || info.num_classes > bounds::kMaxClasses)
        fail(shown, "cannot store " + std::to_string(info.num_classes) + " classes");
    if (!info.class_names.empty() && int64_t(info.class_names.size()) != info.num_classes)
        fail(shown, std::to_string(info.class_names.size()) + " class names for " + std::to_string(info.num_classes) +
                        " classes");
    if ((!labels.empty() && int64_t(labels.size()) != n) || (!sources.empty() && int64_t(sources.size()) != n))
        fail(shown, "labels or sources do not match the " + std::to_string(n) + " rows");
    impl_.reset(new Impl{h5::File::create(out.tmp(), shown), {}, {}, {}, info, n, 0, info.num_classes, {}});
    Impl& m = *impl_;
    quiet();
    m.probs = create_rows(m.f, "/probs", H5T_IEEE_F32LE, n, m.k);
    m.logits = create_rows(m.f, "/logits", H5T_IEEE_F32LE, n, m.k);
    m.prediction = create_rows(m.f, "/prediction", H5T_STD_I32LE, n, 0);
    if (!labels.empty()) {
        h5::Handle d = create_rows(m.f, "/labels", H5T_STD_I32LE, n, 0);
        write_rows(m.f, d, "/labels", H5T_NATIVE_INT32, 0, n, 0, labels.data());
    }
    if (!sources.empty()) {
        h5::Handle t = vlen_string_type();
        h5::Handle d = create_rows(m.f, "/sources", t.get(), n, 0);
        std::vector<const char*> ptrs;
        ptrs.reserve(sources.size());
        for (const auto& s : sources) ptrs.push_back(s.c_str());
        write_rows(m.f, d, "/sources", t.get(), 0, n, 0, ptrs.data());
    }
}

PredictionsWriter::~PredictionsWriter() = default;

void PredictionsWriter::append(int64_t first, int B, const float* probs, const float* logits) {
    Impl& m = *impl_;
    if (first != m.next || B < 1 || first + B > m.n)
        fail(m.f.path(), "internal error: rows " + std::to_string(first) + ".." + std::to_string(first + B) +
                             " appended after " + std::to_string(m.next) + " of " + std::to_string(m.n));
    const size_t K = size_t(m.k);
    m.pred.resize(size_t(B));
    for (int b = 0; b < B; ++b) {
        const float* p = probs + size_t(b) * K;
        const float* z = logits + size_t(b) * K;
        for (size_t k = 0; k < K; ++k)
            if (!std::isfinite(z[k]) || !std::isfinite(p[k]))
                fail(m.f.path(), "the logits of image " + std::to_string(first + b) +
                                     " are not finite; no predictions file is written");
        m.pred[size_t(b)] = int32_t(std::max_element(p, p + K) - p);
    }
    quiet();
    write_rows(m.f, m.probs, "/probs", H5T_NATIVE_FLOAT, first, B, m.k, probs);
    write_rows(m.f, m.logits, "/logits", H5T_NATIVE_FLOAT, first, B, m.k, logits);
    write_rows(m.f, m.prediction, "/prediction", H5T_NATIVE_INT32, first, B, 0, m.pred.data());
    m.next = first + B;
}

void PredictionsWriter::finish() {
    Impl& m = *impl_;
    if (m.next != m.n)
        fail(m.f.path(), "internal error: " + std::to_string(m.next) + " of " + std::to_string(m.n) + " rows written");
    m.probs.reset();
    m.logits.reset();
    m.prediction.reset();
    const PredictionsInfo& i = m.info;
    h5::set_attr(m.f, "/", "format", kPredictionsFormat);
    h5::set_attr(m.f, "/", "format_version", int64_t(kPredictionsVersion));
    h5::set_attr(m.f, "/", "task", i.task);
    h5::set_attr(m.f, "/", "num_classes", int64_t(i.num_classes));
    if (!i.class_names.empty()) h5::set_attr(m.f, "/", "class_names", i.class_names);
    h5::set_attr(m.f, "/", "model", i.model);
    h5::set_attr(m.f, "/", "model_checksum", i.model.empty() ? std::string() : hex64(i.model_checksum));
    if (!i.arch.empty()) h5::set_attr(m.f, "/", "arch", i.arch);
    h5::set_attr(m.f, "/", "input_kind", i.input_kind);
    h5::set_attr(m.f, "/", "input", i.input);
    h5::set_attr(m.f, "/", "input_checksum", i.has_input_checksum ? hex64(i.input_checksum) : std::string());
    h5::set_attr(m.f, "/", "tool", i.tool);
    h5::set_attr(m.f, "/", "command", i.command);
    h5::set_attr(m.f, "/", "ufo_version", kVersion);
    h5::set_attr(m.f, "/", "created", utc_now());
    m.f.close();
}

// ---------------------------------------------------------------- reader

Predictions load_predictions(const std::string& path) {
    h5::File f = h5::File::open_read(path);
    const std::string& name = f.path();
    if (!h5::has_attr(f, "/", "format")) fail(name, "not a ufo predictions file (no format attribute)");
    const std::string format = h5::get_str(f, "/", "format");
    if (format != kPredictionsFormat) fail(name, "not a ufo predictions file (format=" + format + ")");
    const int64_t version = h5::get_int(f, "/", "format_version");
    if (version != kPredictionsVersion)
        fail(name, "unsupported predictions format_version " + std::to_string(version) + " (this ufo reads " +
                       std::to_string(kPredictionsVersion) + ")");

    Predictions p;
    PredictionsInfo& info = p.info;
    info.task = h5::get_str(f, "/", "task");
    info.num_classes = int(h5::get_int_in(f, "/", "num_classes", 1, bounds::kMaxClasses));
    p.k = info.num_classes;
    if (h5::has_attr(f, "/", "class_names")) {
        info.class_names = h5::get_strs(f, "/", "class_names");
        if (int64_t(info.class_names.size()) != p.k)
            fail(name, "num_classes=" + std::to_string(p.k) + " but class_names has " +
                           std::to_string(info.class_names.size()) + " entries");
    }
    bool has_model_checksum = false;
    info.model = optional_str(f, "model");
    info.arch = optional_str(f, "arch");
    info.model_checksum = checksum_attr(f, "model_checksum", &has_model_checksum);
    info.input_kind = optional_str(f, "input_kind");
    if (!info.input_kind.empty() && info.input_kind != "dataset" && info.input_kind != "images")
        fail(name, "attribute /@input_kind is '" + info.input_kind + "', expected 'dataset' or 'images'");
    info.input = optional_str(f, "input");
    info.input_checksum = checksum_attr(f, "input_checksum", &info.has_input_checksum);
    info.tool = optional_str(f, "tool");
    info.command = optional_str(f, "command");
    info.created = optional_str(f, "created");
    info.ufo_version = optional_str(f, "ufo_version");

    // Every extent is checked as a 64-bit value before it is narrowed or allocated from.
    const auto pshape = h5::shape(f, "/probs");
    if (pshape.size() != 2 || pshape[1] != hsize_t(p.k))
        fail(name, "/probs has shape " + h5::shape_str(pshape) + ", expected [N," + std::to_string(p.k) +
                       "] (num_classes=" + std::to_string(p.k) + ")");
    if (pshape[0] > hsize_t(bounds::kMaxImages))
        fail(name, "/probs has shape " + h5::shape_str(pshape) + ": N is above the limit of " +
                       std::to_string(bounds::kMaxImages));
    if (pshape[0] == 0) fail(name, "holds no predictions (/probs has shape " + h5::shape_str(pshape) + ")");
    p.n = int64_t(pshape[0]);
    const std::vector<hsize_t> rows{pshape[0]};
    const auto lshape = h5::shape(f, "/logits");
    if (lshape != pshape)
        fail(name, "/logits has shape " + h5::shape_str(lshape) + ", expected " + h5::shape_str(pshape) + " to match /probs");
    const bool has_labels = h5::exists(f, "/labels"), has_sources = h5::exists(f, "/sources");
    std::vector<std::string> stored{"/probs", "/logits", "/prediction"};
    if (has_labels) stored.push_back("/labels");
    for (size_t i = 2; i < stored.size(); ++i) {
        const auto s = h5::shape(f, stored[i]);
        if (s != rows)
            fail(name, stored[i] + " has shape " + h5::shape_str(s) + ", expected " + h5::shape_str(rows) +
                           " to match /probs");
    }
    for (const auto& d : stored) h5::check_stored(f, d);

    int64_t elems = 0, bytes = 0;
    if (!bounds::mul(p.n, p.k, &elems) || !bounds::mul(elems, 2 * int64_t(sizeof(float)), &bytes))
        fail(name, "/probs has shape " + h5::shape_str(pshape) + ", too large");
    bounds::check_memory(name, "/probs and /logits " + h5::shape_str(pshape), bytes);
    bounds::resize_or_fail(p.probs, elems, name, "/probs " + h5::shape_str(pshape));
    bounds::resize_or_fail(p.logits, elems, name, "/logits " + h5::shape_str(pshape));
    bounds::resize_or_fail(p.prediction, p.n, name, "/prediction");
    h5::read_f32(f, "/probs", p.probs.data(), pshape);
    h5::read_f32(f, "/logits", p.logits.data(), pshape);
    h5::read_i32(f, "/prediction", p.prediction.data(), rows);
    if (has_labels) {
        bounds::resize_or_fail(p.labels, p.n, name, "/labels");
        h5::read_i32(f, "/labels", p.labels.data(), rows);
    }
    if (has_sources) p.sources = read_sources(f, p.n);
    check_values(name, p);
    return p;
}

}  // namespace ufo
