// h5.cpp — RAII HDF5 access; registers the zstd filter (id 32015, io/zstd_filter.h) in-process.
#include "io/h5.h"

#include "io/zstd_filter.h"

#include "base/common.h"
#include "base/bounds.h"

#include <zstd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sys/stat.h>

namespace ufo::h5 {

// ---------------------------------------------------------------- handles
Handle& Handle::operator=(Handle&& o) noexcept {
    if (this != &o) {
        reset();
        id_ = o.id_;
        close_ = o.close_;
        o.id_ = H5I_INVALID_HID;
    }
    return *this;
}

void Handle::reset() {
    if (id_ >= 0 && close_) close_(id_);
    id_ = H5I_INVALID_HID;
}

namespace {

// H5Eset_auto2 is per thread in thread-safe builds, so every entry point that may fail
// silences the stack for the calling thread.
void quiet() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

Handle plist(hid_t cls) {
    hid_t p = H5Pcreate(cls);
    if (p < 0) fail("hdf5", "cannot create property list");
    return Handle(p, H5Pclose);
}

// ---------------------------------------------------------------- files
const unsigned char kSignature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

// HDF5 looks for its superblock at 0, 512, 1024, 2048, ...
bool has_signature(const unsigned char* data, size_t size) {
    for (size_t off = 0; off + 8 <= size; off = off ? off * 2 : 512)
        if (std::memcmp(data + off, kSignature, 8) == 0) return true;
    return false;
}

bool file_has_signature(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(path, std::strerror(errno));
    in.seekg(0, std::ios::end);
    auto size = static_cast<size_t>(in.tellg());
    unsigned char sig[8];
    for (size_t off = 0; off + 8 <= size; off = off ? off * 2 : 512) {
        in.seekg(static_cast<std::streamoff>(off));
        if (!in.read(reinterpret_cast<char*>(sig), 8)) return false;
        if (std::memcmp(sig, kSignature, 8) == 0) return true;
    }
    return false;
}

std::vector<uint8_t> read_stdin() {
    std::vector<uint8_t> bytes;
    uint8_t chunk[1 << 16];
    size_t n;
    try {
        while ((n = std::fread(chunk, 1, sizeof chunk, stdin)) > 0) bytes.insert(bytes.end(), chunk, chunk + n);
    } catch (const std::bad_alloc&) {
        fail("<stdin>", "input is larger than the memory available to hold it");
    }
    if (std::ferror(stdin)) fail("<stdin>", "read error");
    return bytes;
}

}  // namespace

void register_zstd() {
    static std::once_flag once;
    std::call_once(once, [] {
        // Before the library initialises: no H5_term_library at exit. After a failed H5Fclose
        // (a full disk) HDF5 1.10 keeps a half-closed file in its ID table and crashes closing
        // it again at exit; every handle ufo opens is closed by RAII, so nothing is lost.
        H5dont_atexit();
        quiet();
        if (H5Zregister(&kZstdClass) < 0) fail("hdf5", "cannot register the zstd filter 32015");
    });
}

File File::open_read(const std::string& path) {
    if (path == "-") return open_memory(read_stdin(), "<stdin>");
    register_zstd();
    quiet();
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) fail(path, "no such file");
        fail(path, std::strerror(errno));
    }
    if (S_ISDIR(st.st_mode)) fail(path, "is a directory, expected an HDF5 file");
    if (!file_has_signature(path)) fail(path, "not an HDF5 file");
    hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) fail(path, "truncated or corrupt HDF5 file");
    return File(Handle(f, H5Fclose), path);
}

File File::open_memory(const std::vector<uint8_t>& bytes, const std::string& name) {
    register_zstd();
    quiet();
    if (!has_signature(bytes.data(), bytes.size())) fail(name, "not an HDF5 file");
    // The core driver identifies files by name, so each image gets a unique one.
    static std::atomic<unsigned long> counter{0};
    std::string internal = "ufo-memory-image-" + std::to_string(++counter);
    Handle fapl = plist(H5P_FILE_ACCESS);
    if (H5Pset_fapl_core(fapl.get(), 1 << 20, 0) < 0 ||
        H5Pset_file_image(fapl.get(), const_cast<uint8_t*>(bytes.data()), bytes.size()) < 0)
        fail(name, "cannot set up an in-memory HDF5 image");
    hid_t f = H5Fopen(internal.c_str(), H5F_ACC_RDONLY, fapl.get());
    if (f < 0) fail(name, "truncated or corrupt HDF5 file");
    return File(Handle(f, H5Fclose), name);
}

File File::create(const std::string& path, const std::string& shown_as) {
    register_zstd();
    quiet();
    const std::string& name = shown_as.empty() ? path : shown_as;
    hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) fail(name, "cannot create HDF5 file");
    return File(Handle(f, H5Fclose), name);
}

void File::close() {
    if (!h_.valid()) return;
    quiet();
    herr_t flushed = H5Fflush(h_.get(), H5F_SCOPE_LOCAL);
    herr_t closed = H5Fclose(h_.get());
    h_.release();  // closed above, even when H5Fclose failed: never close it a second time
    if (flushed < 0 || closed < 0) fail(path_, "cannot write HDF5 file (disk full?)");
}

// ---------------------------------------------------------------- helpers
std::string shape_str(const std::vector<hsize_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
    return s + "]";
}

namespace {

std::string type_name_of(hid_t t) {
    size_t bits = H5Tget_size(t) * 8;
    switch (H5Tget_class(t)) {
        case H5T_FLOAT: return "float" + std::to_string(bits);
        case H5T_INTEGER:
            return (H5Tget_sign(t) == H5T_SGN_NONE ? "uint" : "int") + std::to_string(bits);
        case H5T_STRING: return "string";
        case H5T_COMPOUND: return "compound";
        case H5T_ENUM: return "enum";
        case H5T_ARRAY: return "array";
        case H5T_VLEN: return "vlen";
        default: return "opaque";
    }
}

struct Spec {
    const char* name;
    H5T_class_t cls;
    size_t size;
    bool is_signed;
    hid_t mem() const;
    hid_t file() const;
};
hid_t Spec::mem() const {
    if (cls == H5T_FLOAT) return size == 8 ? H5T_NATIVE_DOUBLE : H5T_NATIVE_FLOAT;
    switch (size) {
        case 1: return is_signed ? H5T_NATIVE_INT8 : H5T_NATIVE_UINT8;
        case 4: return is_signed ? H5T_NATIVE_INT32 : H5T_NATIVE_UINT32;
        default: return is_signed ? H5T_NATIVE_INT64 : H5T_NATIVE_UINT64;
    }
}
hid_t Spec::file() const {
    if (cls == H5T_FLOAT) return size == 8 ? H5T_IEEE_F64LE : H5T_IEEE_F32LE;
    switch (size) {
        case 1: return is_signed ? H5T_STD_I8LE : H5T_STD_U8LE;
        case 4: return is_signed ? H5T_STD_I32LE : H5T_STD_U32LE;
        default: return is_signed ? H5T_STD_I64LE : H5T_STD_U64LE;
    }
}
const Spec kF32{"float32", H5T_FLOAT, 4, true};
const Spec kF64{"float64", H5T_FLOAT, 8, true};
const Spec kI32{"int32", H5T_INTEGER, 4, true};
const Spec kU8{"uint8", H5T_INTEGER, 1, false};
const Spec kI64{"int64", H5T_INTEGER, 8, true};
const Spec kU64{"uint64", H5T_INTEGER, 8, false};

// Whole tensor up to ~1M elements, else slices along the leading dims of that size.
std::vector<hsize_t> chunk_shape(const std::vector<hsize_t>& shape) {
    const hsize_t budget = hsize_t(1) << 20;
    std::vector<hsize_t> chunk(shape);
    for (size_t d = 0; d < shape.size(); ++d) {
        hsize_t inner = 1;
        for (size_t e = d + 1; e < shape.size(); ++e) inner *= shape[e];
        if (inner <= budget) {
            chunk[d] = std::max<hsize_t>(1, std::min(shape[d], budget / inner));
            break;
        }
        chunk[d] = 1;
    }
    return chunk;
}

Handle open_dataset(const File& f, const std::string& dset) {
    quiet();
    if (!exists(f, dset)) fail(f.path(), "missing dataset " + dset);
    hid_t d = H5Dopen2(f.id(), dset.c_str(), H5P_DEFAULT);
    if (d < 0) fail(f.path(), "cannot open dataset " + dset + " (not a dataset or corrupt file)");
    return Handle(d, H5Dclose);
}

std::vector<hsize_t> extent(const File& f, const std::string& obj, hid_t space) {
    int rank = H5Sget_simple_extent_ndims(space);
    if (rank < 0) fail(f.path(), "cannot read the shape of " + obj);
    std::vector<hsize_t> dims(rank);
    if (rank > 0) H5Sget_simple_extent_dims(space, dims.data(), nullptr);
    return dims;
}

void write_any(File& f, const std::string& dset, const void* data, const std::vector<hsize_t>& shape,
               int zstd_level, const Spec& spec) {
    quiet();
    if (zstd_level < 0 || zstd_level > ZSTD_maxCLevel())
        fail(f.path(), "zstd level " + std::to_string(zstd_level) + " is outside 0.." +
                           std::to_string(ZSTD_maxCLevel()));
    if (exists(f, dset) && H5Ldelete(f.id(), dset.c_str(), H5P_DEFAULT) < 0)
        fail(f.path(), "cannot replace " + dset);
    hid_t sp = shape.empty() ? H5Screate(H5S_SCALAR)
                             : H5Screate_simple(int(shape.size()), shape.data(), nullptr);
    Handle space(sp, H5Sclose);
    Handle lcpl = plist(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl.get(), 1);
    Handle dcpl = plist(H5P_DATASET_CREATE);
    // No timestamps, so the same data gives the same bytes.
    H5Pset_obj_track_times(dcpl.get(), 0);
    hsize_t total = 1;
    for (auto s : shape) total *= s;
    // Chunking (and so filters) needs a non-empty, non-scalar extent.
    if (!shape.empty() && total > 0) {
        auto chunk = chunk_shape(shape);
        H5Pset_chunk(dcpl.get(), int(chunk.size()), chunk.data());
        if (zstd_level > 0) {
            unsigned cd = unsigned(zstd_level);
            if (H5Pset_filter(dcpl.get(), kZstdFilter, H5Z_FLAG_MANDATORY, 1, &cd) < 0)
                fail(f.path(), "cannot enable the zstd filter on " + dset);
        }
    }
    Handle d(H5Dcreate2(f.id(), dset.c_str(), spec.file(), space.get(), lcpl.get(), dcpl.get(),
                        H5P_DEFAULT),
             H5Dclose);
    if (!d.valid()) fail(f.path(), "cannot create dataset " + dset);
    if (total > 0 && H5Dwrite(d.get(), spec.mem(), H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        fail(f.path(), "cannot write dataset " + dset);
}

void read_any(const File& f, const std::string& dset, void* out, const std::vector<hsize_t>& expected,
              const Spec& spec) {
    Handle d = open_dataset(f, dset);
    Handle t(H5Dget_type(d.get()), H5Tclose);
    bool ok = H5Tget_class(t.get()) == spec.cls && H5Tget_size(t.get()) == spec.size &&
              (spec.cls != H5T_INTEGER || (H5Tget_sign(t.get()) != H5T_SGN_NONE) == spec.is_signed);
    if (!ok)
        fail(f.path(), dset + " has type " + type_name_of(t.get()) + ", expected " + spec.name);
    Handle space(H5Dget_space(d.get()), H5Sclose);
    auto dims = extent(f, dset, space.get());
    if (!expected.empty() && dims != expected)
        fail(f.path(), dset + " has shape " + shape_str(dims) + ", expected " + shape_str(expected));
    hsize_t total = 1;
    for (auto s : dims) total *= s;
    if (total == 0) return;
    check_stored(f, dset);
    // What the zstd filter must produce: exactly one chunk of this dataset.
    size_t chunk_bytes = 0;
    Handle dcpl(H5Dget_create_plist(d.get()), H5Pclose);
    if (dcpl.valid() && H5Pget_layout(dcpl.get()) == H5D_CHUNKED) {
        std::vector<hsize_t> cdims(dims.size() ? dims.size() : 1);
        int crank = H5Pget_chunk(dcpl.get(), int(cdims.size()), cdims.data());
        int64_t elems = 1;
        bool ok = crank > 0;
        for (int i = 0; ok && i < crank; ++i) ok = bounds::mul(elems, int64_t(cdims[size_t(i)]), &elems);
        int64_t bytes = 0;
        if (ok && bounds::mul(elems, int64_t(H5Tget_size(t.get())), &bytes)) chunk_bytes = size_t(bytes);
    }
    set_expected_chunk_bytes(chunk_bytes);
    const herr_t r = H5Dread(d.get(), spec.mem(), H5S_ALL, H5S_ALL, H5P_DEFAULT, out);
    set_expected_chunk_bytes(0);
    if (r < 0) fail(f.path(), "cannot read " + dset + " (truncated or corrupt data)");
}

}  // namespace

bool exists(const File& f, const std::string& obj_path) {
    quiet();
    size_t pos = 0;
    while (pos < obj_path.size()) {
        size_t next = obj_path.find('/', pos + 1);
        if (next == std::string::npos) next = obj_path.size();
        std::string prefix = obj_path.substr(0, next);
        pos = next;
        if (prefix.empty() || prefix == "/" || prefix.back() == '/') continue;
        if (H5Lexists(f.id(), prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    }
    return H5Oexists_by_name(f.id(), obj_path.empty() ? "/" : obj_path.c_str(), H5P_DEFAULT) > 0;
}

std::vector<hsize_t> shape(const File& f, const std::string& dset) {
    Handle d = open_dataset(f, dset);
    Handle space(H5Dget_space(d.get()), H5Sclose);
    return extent(f, dset, space.get());
}

void check_stored(const File& f, const std::string& dset) {
    Handle d = open_dataset(f, dset);
    Handle space(H5Dget_space(d.get()), H5Sclose);
    auto dims = extent(f, dset, space.get());
    hsize_t total = 1;
    for (auto s : dims) total *= s;
    if (total == 0) return;
    // Chunked data is complete when every chunk of the extent is written (H5Dget_space_status
    // compares bytes, which compression makes smaller); other layouts when storage exists.
    Handle dcpl(H5Dget_create_plist(d.get()), H5Pclose);
    hsize_t have = 0, want = 1;
    if (dcpl.valid() && H5Pget_layout(dcpl.get()) == H5D_CHUNKED) {
        std::vector<hsize_t> chunk(dims.size());
        if (H5Pget_chunk(dcpl.get(), int(chunk.size()), chunk.data()) != int(dims.size()))
            fail(f.path(), "cannot read the chunk shape of " + dset);
        for (size_t i = 0; i < dims.size(); ++i) {
            if (chunk[i] == 0) fail(f.path(), dset + " has an empty chunk shape");
            const hsize_t n = (dims[i] + chunk[i] - 1) / chunk[i];
            want = want > ~hsize_t(0) / n ? ~hsize_t(0) : want * n;
        }
        if (H5Dget_num_chunks(d.get(), space.get(), &have) < 0) have = 0;
    } else {
        have = H5Dget_storage_size(d.get()) > 0 ? 1 : 0;
    }
    if (have < want)
        fail(f.path(), dset + " declares shape " + shape_str(dims) + " but stores " +
                           (have > 0 ? "only part of its data" : "no data"));
}

std::string type_name(const File& f, const std::string& dset) {
    Handle d = open_dataset(f, dset);
    Handle t(H5Dget_type(d.get()), H5Tclose);
    return type_name_of(t.get());
}

void make_group(File& f, const std::string& group) {
    quiet();
    if (exists(f, group)) return;
    Handle lcpl = plist(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl.get(), 1);
    Handle g(H5Gcreate2(f.id(), group.c_str(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
    if (!g.valid()) fail(f.path(), "cannot create group " + group);
}

void write_f32(File& f, const std::string& d, const float* p, const std::vector<hsize_t>& s, int z) { write_any(f, d, p, s, z, kF32); }
void write_f64(File& f, const std::string& d, const double* p, const std::vector<hsize_t>& s, int z) { write_any(f, d, p, s, z, kF64); }
void write_i32(File& f, const std::string& d, const int32_t* p, const std::vector<hsize_t>& s, int z) { write_any(f, d, p, s, z, kI32); }
void write_u8(File& f, const std::string& d, const uint8_t* p, const std::vector<hsize_t>& s, int z) { write_any(f, d, p, s, z, kU8); }
void write_i64(File& f, const std::string& d, const int64_t* p, const std::vector<hsize_t>& s, int z) { write_any(f, d, p, s, z, kI64); }
void write_u64(File& f, const std::string& d, const uint64_t* p, const std::vector<hsize_t>& s, int z) { write_any(f, d, p, s, z, kU64); }

void read_f32(const File& f, const std::string& d, float* o, const std::vector<hsize_t>& s) { read_any(f, d, o, s, kF32); }
void read_f64(const File& f, const std::string& d, double* o, const std::vector<hsize_t>& s) { read_any(f, d, o, s, kF64); }
void read_i32(const File& f, const std::string& d, int32_t* o, const std::vector<hsize_t>& s) { read_any(f, d, o, s, kI32); }
void read_u8(const File& f, const std::string& d, uint8_t* o, const std::vector<hsize_t>& s) { read_any(f, d, o, s, kU8); }
void read_i64(const File& f, const std::string& d, int64_t* o, const std::vector<hsize_t>& s) { read_any(f, d, o, s, kI64); }
void read_u64(const File& f, const std::string& d, uint64_t* o, const std::vector<hsize_t>& s) { read_any(f, d, o, s, kU64); }

// ---------------------------------------------------------------- attributes
namespace {

Handle open_object(const File& f, const std::string& obj) {
    quiet();
    if (!exists(f, obj)) fail(f.path(), "missing object " + obj);
    hid_t o = H5Oopen(f.id(), obj.c_str(), H5P_DEFAULT);
    if (o < 0) fail(f.path(), "cannot open object " + obj);
    return Handle(o, H5Oclose);
}

Handle vlen_string_type() {
    Handle t(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(t.get(), H5T_VARIABLE);
    H5Tset_cset(t.get(), H5T_CSET_UTF8);
    return t;
}

void write_attr(File& f, const std::string& obj, const std::string& name, hid_t type, hid_t space,
                const void* data, hid_t mem_type = H5I_INVALID_HID) {
    Handle o = open_object(f, obj);
    if (H5Aexists(o.get(), name.c_str()) > 0 && H5Adelete(o.get(), name.c_str()) < 0)
        fail(f.path(), "cannot replace attribute " + obj + "@" + name);
    Handle a(H5Acreate2(o.get(), name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    if (!a.valid() || H5Awrite(a.get(), mem_type >= 0 ? mem_type : type, data) < 0)
        fail(f.path(), "cannot write attribute " + obj + "@" + name);
}

struct Attr {
    Handle a, type, space;
    hssize_t count;
};

Attr open_attr(const File& f, const std::string& obj, const std::string& name) {
    Handle o = open_object(f, obj);
    if (H5Aexists(o.get(), name.c_str()) <= 0) fail(f.path(), "missing attribute " + obj + "@" + name);
    Handle a(H5Aopen(o.get(), name.c_str(), H5P_DEFAULT), H5Aclose);
    if (!a.valid()) fail(f.path(), "cannot open attribute " + obj + "@" + name);
    Handle t(H5Aget_type(a.get()), H5Tclose);
    Handle s(H5Aget_space(a.get()), H5Sclose);
    hssize_t n = H5Sget_simple_extent_npoints(s.get());
    return Attr{std::move(a), std::move(t), std::move(s), n};
}

[[noreturn]] void wrong_attr(const File& f, const std::string& obj, const std::string& name,
                             const Attr& at, const std::string& expected) {
    std::string got = type_name_of(at.type.get());
    if (at.count != 1 && expected != "string list") got += " array";
    fail(f.path(), "attribute " + obj + "@" + name + " has type " + got + ", expected " + expected);
}

std::vector<std::string> read_strings(const File& f, const std::string& obj, const std::string& name,
                                      const Attr& at) {
    // Class and task name lists are the longest string lists ufo stores.
    if (at.count < 0 || at.count > bounds::kMaxClasses)
        fail(f.path(), "attribute " + obj + "@" + name + " holds " + std::to_string(at.count) +
                           " strings, more than the limit of " + std::to_string(bounds::kMaxClasses));
    auto n = static_cast<size_t>(at.count);
    std::vector<std::string> out;
    if (H5Tis_variable_str(at.type.get()) > 0) {
        Handle mem = vlen_string_type();
        H5Tset_cset(mem.get(), H5Tget_cset(at.type.get()));
        std::vector<char*> ptrs(n, nullptr);
        if (n > 0 && H5Aread(at.a.get(), mem.get(), ptrs.data()) < 0)
            fail(f.path(), "cannot read attribute " + obj + "@" + name);
        for (char* p : ptrs) out.emplace_back(p ? p : "");
        if (n > 0) H5Dvlen_reclaim(mem.get(), at.space.get(), H5P_DEFAULT, ptrs.data());
    } else {
        size_t len = H5Tget_size(at.type.get());
        int64_t bytes = 0;
        if (!bounds::mul(int64_t(n), int64_t(len), &bytes) || bytes > bounds::kMaxTextFileBytes)
            fail(f.path(), "attribute " + obj + "@" + name + " is larger than " +
                               bounds::human_bytes(double(bounds::kMaxTextFileBytes)));
        std::vector<char> buf(size_t(bytes) + 1, '\0');
        if (n > 0 && H5Aread(at.a.get(), at.type.get(), buf.data()) < 0)
            fail(f.path(), "cannot read attribute " + obj + "@" + name);
        for (size_t i = 0; i < n; ++i) {
            std::string s(buf.data() + i * len, len);
            s.erase(std::find(s.begin(), s.end(), '\0'), s.end());
            while (!s.empty() && s.back() == ' ') s.pop_back();  // H5T_STR_SPACEPAD
            out.push_back(std::move(s));
        }
    }
    return out;
}

}  // namespace

void set_attr(File& f, const std::string& obj, const std::string& name, const std::string& v) {
    Handle t = vlen_string_type();
    Handle s(H5Screate(H5S_SCALAR), H5Sclose);
    const char* p = v.c_str();
    write_attr(f, obj, name, t.get(), s.get(), &p);
}

void set_attr(File& f, const std::string& obj, const std::string& name, const char* v) {
    set_attr(f, obj, name, std::string(v));
}

void set_attr(File& f, const std::string& obj, const std::string& name, int64_t v) {
    Handle s(H5Screate(H5S_SCALAR), H5Sclose);
    write_attr(f, obj, name, H5T_STD_I64LE, s.get(), &v, H5T_NATIVE_INT64);
}

void set_attr(File& f, const std::string& obj, const std::string& name, double v) {
    Handle s(H5Screate(H5S_SCALAR), H5Sclose);
    write_attr(f, obj, name, H5T_IEEE_F64LE, s.get(), &v, H5T_NATIVE_DOUBLE);
}

void set_attr(File& f, const std::string& obj, const std::string& name, const std::vector<std::string>& v) {
    Handle t = vlen_string_type();
    hsize_t n = v.size();
    Handle s(H5Screate_simple(1, &n, nullptr), H5Sclose);
    std::vector<const char*> ptrs;
    for (const auto& x : v) ptrs.push_back(x.c_str());
    const char* none = "";
    write_attr(f, obj, name, t.get(), s.get(), ptrs.empty() ? &none : ptrs.data());
}

bool has_attr(const File& f, const std::string& obj, const std::string& name) {
    quiet();
    if (!exists(f, obj)) return false;
    return H5Aexists_by_name(f.id(), obj.c_str(), name.c_str(), H5P_DEFAULT) > 0;
}

std::string get_str(const File& f, const std::string& obj, const std::string& name) {
    Attr at = open_attr(f, obj, name);
    if (H5Tget_class(at.type.get()) != H5T_STRING || at.count != 1) wrong_attr(f, obj, name, at, "string");
    return read_strings(f, obj, name, at).at(0);
}

std::vector<std::string> get_strs(const File& f, const std::string& obj, const std::string& name) {
    Attr at = open_attr(f, obj, name);
    if (H5Tget_class(at.type.get()) != H5T_STRING) wrong_attr(f, obj, name, at, "string list");
    return read_strings(f, obj, name, at);
}

int64_t get_int(const File& f, const std::string& obj, const std::string& name) {
    Attr at = open_attr(f, obj, name);
    if (H5Tget_class(at.type.get()) != H5T_INTEGER || at.count != 1) wrong_attr(f, obj, name, at, "integer");
    int64_t v = 0;
    if (H5Aread(at.a.get(), H5T_NATIVE_INT64, &v) < 0) fail(f.path(), "cannot read attribute " + obj + "@" + name);
    return v;
}

int64_t get_int_in(const File& f, const std::string& obj, const std::string& name, int64_t lo, int64_t hi) {
    const int64_t v = get_int(f, obj, name);
    bounds::check_range(f.path(), "attribute " + obj + "@" + name, v, lo, hi);
    return v;
}

bool get_bool(const File& f, const std::string& obj, const std::string& name) {
    const int64_t v = get_int(f, obj, name);
    if (v != 0 && v != 1)
        fail(f.path(), "attribute " + obj + "@" + name + " is " + std::to_string(v) + ", expected 0 or 1");
    return v == 1;
}

double get_double(const File& f, const std::string& obj, const std::string& name) {
    Attr at = open_attr(f, obj, name);
    H5T_class_t c = H5Tget_class(at.type.get());
    if ((c != H5T_FLOAT && c != H5T_INTEGER) || at.count != 1) wrong_attr(f, obj, name, at, "number");
    double v = 0;
    if (H5Aread(at.a.get(), H5T_NATIVE_DOUBLE, &v) < 0) fail(f.path(), "cannot read attribute " + obj + "@" + name);
    return v;
}

std::vector<std::string> list_group(const File& f, const std::string& group) {
    quiet();
    if (!exists(f, group)) fail(f.path(), "missing group " + group);
    Handle g(H5Gopen2(f.id(), group.c_str(), H5P_DEFAULT), H5Gclose);
    if (!g.valid()) fail(f.path(), group + " is not a group");
    std::vector<std::string> names;
    auto collect = [](hid_t, const char* name, const H5L_info_t*, void* op) -> herr_t {
        static_cast<std::vector<std::string>*>(op)->emplace_back(name);
        return 0;
    };
    hsize_t idx = 0;
    if (H5Literate(g.get(), H5_INDEX_NAME, H5_ITER_INC, &idx, collect, &names) < 0)
        fail(f.path(), "cannot list group " + group);
    std::sort(names.begin(), names.end());
    return names;
}

}  // namespace ufo::h5
