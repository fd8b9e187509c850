// h5.h — a thin RAII layer over the HDF5 C API, shared by the dataset and checkpoint code.
// Every failure is a ufo::Error "<file>: <problem>"; the HDF5 error stack is never printed.
// Tensors are stored little-endian, chunked, and (zstd_level > 0) compressed with the
// registered zstd filter 32015 so that other HDF5 users can read them (formats/hdf5-zstd.md).
#pragma once
#include <hdf5.h>

#include "io/zstd_filter.h"

#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

namespace ufo::h5 {

// Registers filter 32015 with libzstd. Idempotent and thread-safe; File calls it.
void register_zstd();

// Owns one hid_t and closes it with the matching H5*close; move-only.
class Handle {
public:
    using Closer = herr_t (*)(hid_t);
    Handle() = default;
    Handle(hid_t id, Closer close) : id_(id), close_(close) {}
    Handle(Handle&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = H5I_INVALID_HID; }
    Handle& operator=(Handle&& o) noexcept;
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
    ~Handle() { reset(); }
    void reset();
    // Gives up ownership without closing (after the id was closed by hand).
    hid_t release() { hid_t id = id_; id_ = H5I_INVALID_HID; return id; }
    hid_t get() const { return id_; }
    bool valid() const { return id_ >= 0; }
private:
    hid_t id_ = H5I_INVALID_HID;
    Closer close_ = nullptr;
};

class File {
public:
    // "-" reads all of stdin and opens it as an in-memory image (path() is then "<stdin>").
    static File open_read(const std::string& path);
    // Opens bytes already in memory; name is used in error messages only.
    static File open_memory(const std::vector<uint8_t>& bytes, const std::string& name);
    // Creates or truncates; meant for AtomicPath::tmp(). shown_as names the file in errors
    // (defaults to path), so messages can name the final output rather than the temp file.
    static File create(const std::string& path, const std::string& shown_as = "");
    hid_t id() const { return h_.get(); }
    const std::string& path() const { return path_; }
    // Flushes and closes now, reporting failure (the destructor cannot).
    void close();
private:
    File(Handle h, std::string path) : h_(std::move(h)), path_(std::move(path)) {}
    Handle h_;
    std::string path_;
};

// True when every component of "/a/b/c" exists; "/" always exists.
bool exists(const File&, const std::string& obj_path);
// Error "<file>: missing dataset /x" if absent.
std::vector<hsize_t> shape(const File&, const std::string& dset);
// Fails "<file>: DSET declares SHAPE but stores no data" unless every element of a non-empty
// dataset has storage in the file: an HDF5 extent costs nothing to declare, so a tiny file
// could otherwise make a reader allocate (and read back fill values for) any size.
void check_stored(const File&, const std::string& dset);
// "float32", "int32", "uint8", "uint64", "string", ... of a stored dataset.
std::string type_name(const File&, const std::string& dset);

// Creates a group (and its parents) unless it exists.
void make_group(File&, const std::string& group);

// Writers create intermediate groups and replace an existing dataset of the same name.
// zstd_level 0 stores uncompressed; 1..22 uses filter 32015 with cd_values = {level}.
void write_f32(File&, const std::string& dset, const float* data, const std::vector<hsize_t>& shape, int zstd_level);
void write_f64(File&, const std::string& dset, const double* data, const std::vector<hsize_t>& shape, int zstd_level);
void write_i32(File&, const std::string& dset, const int32_t* data, const std::vector<hsize_t>& shape, int zstd_level);
void write_u8 (File&, const std::string& dset, const uint8_t* data, const std::vector<hsize_t>& shape, int zstd_level);
void write_i64(File&, const std::string& dset, const int64_t* data, const std::vector<hsize_t>& shape, int zstd_level);
void write_u64(File&, const std::string& dset, const uint64_t* data, const std::vector<hsize_t>& shape, int zstd_level);

// Readers check the stored type and, when expected_shape is non-empty, the shape.
// With an empty expected_shape the caller must size out from shape() first.
void read_f32(const File&, const std::string& dset, float* out, const std::vector<hsize_t>& expected_shape);
void read_f64(const File&, const std::string& dset, double* out, const std::vector<hsize_t>& expected_shape);
void read_i32(const File&, const std::string& dset, int32_t* out, const std::vector<hsize_t>& expected_shape);
void read_u8 (const File&, const std::string& dset, uint8_t* out, const std::vector<hsize_t>& expected_shape);
void read_i64(const File&, const std::string& dset, int64_t* out, const std::vector<hsize_t>& expected_shape);
void read_u64(const File&, const std::string& dset, uint64_t* out, const std::vector<hsize_t>& expected_shape);

// Attributes on any object ("/" = root); setting replaces. Strings are variable-length
// UTF-8 scalars, string lists 1-D variable-length string arrays.
void set_attr(File&, const std::string& obj, const std::string& name, const std::string& v);
void set_attr(File&, const std::string& obj, const std::string& name, const char* v);
void set_attr(File&, const std::string& obj, const std::string& name, int64_t v);
// Any other integer type (int, size_t, ...) is stored as int64.
template <class T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, int64_t> &&
                                        !std::is_same_v<T, bool>, int> = 0>
void set_attr(File& f, const std::string& obj, const std::string& name, T v) {
    set_attr(f, obj, name, static_cast<int64_t>(v));
}
void set_attr(File&, const std::string& obj, const std::string& name, double v);
void set_attr(File&, const std::string& obj, const std::string& name, const std::vector<std::string>& v);
bool has_attr(const File&, const std::string& obj, const std::string& name);
// Getters fail with "<file>: missing attribute <obj>@<name>" or "... has type X, expected Y".
// get_str/get_strs also accept fixed-length strings; get_double accepts integers.
std::string get_str(const File&, const std::string& obj, const std::string& name);
int64_t get_int(const File&, const std::string& obj, const std::string& name);
// get_int within [lo, hi], else "<file>: attribute OBJ@NAME is V, outside LO..HI".
int64_t get_int_in(const File&, const std::string& obj, const std::string& name, int64_t lo, int64_t hi);
// An integer attribute that must be 0 or 1.
bool get_bool(const File&, const std::string& obj, const std::string& name);
double get_double(const File&, const std::string& obj, const std::string& name);
std::vector<std::string> get_strs(const File&, const std::string& obj, const std::string& name);

// Names of a group's direct children, sorted. Error if the group is missing.
std::vector<std::string> list_group(const File&, const std::string& group);

// "[3,4]" — for error messages.
std::string shape_str(const std::vector<hsize_t>& shape);

}  // namespace ufo::h5
