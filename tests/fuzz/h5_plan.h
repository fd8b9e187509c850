// h5_plan.h — the structure-aware half of fuzz_checkpoint and fuzz_dataset.
//
// Why not feed the HDF5 readers raw mutated bytes: libhdf5 1.10 (Debian 12) has many known
// crashes in its own object-header and B-tree parsers on byte-mutated files (CVE-listed heap
// overflows that we cannot fix), so a raw-bytes fuzzer would spend its time rediscovering them.
// What we *can* fix is how our readers treat a well-formed HDF5 file with hostile contents. So
// the fuzz input is not a file: it is a string of choices. A Plan starts as a valid ufo file (the
// same objects, types and attribute order as lib/io/checkpoint.cpp and lib/io/dataset.cpp write), the
// choices then mutate it (drop/retype/revalue attributes, change tensor dtypes, shapes — up to
// huge declared extents with no data — storage, values, zstd chunk bytes, add links), and the
// plan is written with libhdf5 itself (our writer lib/h5.h where it can express the object, the
// raw C API where it cannot), so every file a reader sees is valid HDF5.
//
// Choices are read from the front of the input; an exhausted input reads as zeros, and zeros
// always choose the unmutated default, so the empty input is a valid file and a short input a
// valid file with few mutations. Nothing here calls the readers.
#pragma once
#include "base/common.h"
#include "io/h5.h"

#include <hdf5.h>
#include <zstd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace fuzz {

using ufo::h5::Handle;

// ------------------------------------------------------------------ choices
class Choices {
public:
    Choices(const uint8_t* data, size_t size) : d_(data), n_(size) {}
    uint8_t byte() { return pos_ < n_ ? d_[pos_++] : 0; }
    bool flag() { return byte() & 1; }
    uint64_t u64() {
        uint64_t v = 0;
        for (int i = 0; i < 8; ++i) v |= uint64_t(byte()) << (8 * i);
        return v;
    }
    // 0..n-1 (0 when n == 0), from one byte when n <= 256, else from 4.
    uint64_t below(uint64_t n) {
        if (n <= 1) return 0;
        if (n <= 256) return byte() % n;
        uint64_t v = 0;
        for (int i = 0; i < 4; ++i) v |= uint64_t(byte()) << (8 * i);
        return v % n;
    }
    std::string bytes(size_t max) {
        size_t len = below(max + 1);
        std::string s;
        for (size_t i = 0; i < len; ++i) s.push_back(char(byte()));
        return s;
    }
    bool empty() const { return pos_ >= n_; }

private:
    const uint8_t* d_;
    size_t n_, pos_ = 0;
};

// ------------------------------------------------------------------ plan
enum class AType {
    I64, I32, U64, I8, U8, F64, F32, Str, NullStr, FixedStr, StrList, StrListNull, FixedStrList,
    IntArray, NullSpace, EmptyIntArray, Count
};
enum class DType { F32, F32BE, F64, I32, I32BE, U8, I8, I64, U64, U32, Str, Count };
enum class Store { Chunked, Contiguous, Compact, Zstd, ZstdRaw, Unwritten, Partial, Count };
enum class Fill { Pattern, Zero, NaN, Inf, Huge, Neg, Bytes, Count };

struct AttrSpec {
    std::string obj, name;
    AType type = AType::I64;
    int64_t i = 0;
    double d = 0;
    std::string s;
    std::vector<std::string> list;
};

struct DsetSpec {
    std::string path;
    DType type = DType::F32;
    enum Space { Simple, Scalar, Null } space = Simple;
    std::vector<hsize_t> shape;
    bool unlimited = false;
    Store store = Store::Chunked;
    int zstd_level = 0;          // Store::Zstd
    Fill fill = Fill::Pattern;
    int64_t modulo = 0;          // Fill::Pattern on integer types: values i % modulo (labels)
    std::vector<int64_t> values; // Fill::Pattern on integer types: exactly these (repeated)
    std::string raw;             // Fill::Bytes, and the seed of Store::ZstdRaw
    int zmode = 0;               // Store::ZstdRaw: which hostile frame (zstd_chunk)
    uint64_t zsize = 0;
};

struct LinkSpec {
    enum Kind { Soft, Hard, External } kind = Soft;
    std::string path, target;
};

struct Plan {
    std::vector<AttrSpec> attrs;
    std::vector<DsetSpec> dsets;
    std::vector<LinkSpec> links;
    std::vector<std::string> groups;  // created empty (e.g. /tasks/<t> of a task without tensors)

    AttrSpec& attr(const std::string& obj, const std::string& name, AType t) {
        attrs.push_back(AttrSpec{obj, name, t, 0, 0, {}, {}});
        return attrs.back();
    }
    void int_attr(const std::string& obj, const std::string& name, int64_t v) { attr(obj, name, AType::I64).i = v; }
    void dbl_attr(const std::string& obj, const std::string& name, double v) { attr(obj, name, AType::F64).d = v; }
    void str_attr(const std::string& obj, const std::string& name, const std::string& v) { attr(obj, name, AType::Str).s = v; }
    void list_attr(const std::string& obj, const std::string& name, const std::vector<std::string>& v) {
        attr(obj, name, AType::StrList).list = v;
    }
    DsetSpec& dset(const std::string& path, DType t, std::vector<hsize_t> shape) {
        DsetSpec d;
        d.path = path;
        d.type = t;
        d.shape = std::move(shape);
        dsets.push_back(std::move(d));
        return dsets.back();
    }
    // Every object path of the plan, for mutations that aim at "some object".
    std::vector<std::string> paths() const {
        std::vector<std::string> p{"/"};
        for (const auto& d : dsets) {
            p.push_back(d.path);
            for (size_t s = d.path.find('/', 1); s != std::string::npos; s = d.path.find('/', s + 1))
                p.push_back(d.path.substr(0, s));
        }
        for (const auto& a : attrs) p.push_back(a.obj);
        for (const auto& g : groups) p.push_back(g);
        std::sort(p.begin(), p.end());
        p.erase(std::unique(p.begin(), p.end()), p.end());
        return p;
    }
};

// ------------------------------------------------------------------ interesting values
// Two's-complement arithmetic without signed overflow (the generator must be UB-free itself).
inline int64_t wrap_add(int64_t a, int64_t b) { return int64_t(uint64_t(a) + uint64_t(b)); }

inline int64_t mutate_int(Choices& in, int64_t orig) {
    const int64_t i32max = std::numeric_limits<int32_t>::max(), i32min = std::numeric_limits<int32_t>::min();
    switch (in.below(22)) {
        case 0: return wrap_add(orig, 1);
        case 1: return wrap_add(orig, -1);
        case 2: return 0;
        case 3: return -1;
        case 4: return 1;
        case 5: return 2;
        case 6: return i32max;
        case 7: return int64_t(i32max) + 1;
        case 8: return i32min;
        case 9: return int64_t(i32min) - 1;
        case 10: return wrap_add(orig, int64_t(1) << 32);   // == orig once truncated to int
        case 11: return wrap_add(orig, -(int64_t(1) << 32));
        case 12: return std::numeric_limits<int64_t>::max();
        case 13: return std::numeric_limits<int64_t>::min();
        case 14: return int64_t(1) << 20;
        case 15: return int64_t(1) << 30;
        case 16: return 46341;                       // squares past 2^31
        case 17: return 65536;
        case 18: return wrap_add(orig, orig);
        case 19: return int64_t(0 - uint64_t(orig));
        case 20: return int64_t(in.below(300));
        default: return int64_t(in.u64());
    }
}

inline double mutate_double(Choices& in, double orig) {
    switch (in.below(11)) {
        case 0: return std::numeric_limits<double>::quiet_NaN();
        case 1: return std::numeric_limits<double>::infinity();
        case 2: return -std::numeric_limits<double>::infinity();
        case 3: return -0.0;
        case 4: return 1e308;
        case 5: return 5e-324;
        case 6: return 9.3e18;   // past INT64_MAX
        case 7: return -1;
        case 8: return orig + 0.5;
        case 9: return 4294967298.0;
        default: {
            uint64_t b = in.u64();
            double d;
            std::memcpy(&d, &b, sizeof d);
            return d;
        }
    }
}

inline std::string mutate_string(Choices& in, const std::string& orig) {
    switch (in.below(16)) {
        case 0: return "";
        case 1: return orig + "x";
        case 2: return orig.empty() ? orig : orig.substr(0, orig.size() - 1);
        case 3: return "ufo-checkpoint";
        case 4: return "ufo-dataset";
        case 5: return "supernet";
        case 6: return "subnet";
        case 7: return "dense";
        case 8: return std::string(70000, 'a');
        case 9: return "a/b";
        case 10: return "..";
        case 11: return "shared";
        case 12: return "set1";
        case 13: return orig + std::string(1, '\0') + "tail";  // embedded NUL (fixed strings keep it)
        case 14: return "\xff\xfe\xc3";
        default: return in.bytes(40);
    }
}

inline std::vector<std::string> mutate_list(Choices& in, std::vector<std::string> v) {
    switch (in.below(9)) {
        case 0: return {};
        case 1: if (!v.empty()) v.push_back(v.front()); return v;   // duplicate name
        case 2: if (!v.empty()) v.pop_back(); return v;
        case 3: v.push_back("extra"); return v;
        case 4: if (!v.empty()) v[in.below(v.size())] = mutate_string(in, v.front()); return v;
        case 5: return std::vector<std::string>(2000, "c");
        case 6: return {"shared", "set1"};
        case 7: return {"", "a b", "x/y"};
        default: {
            std::vector<std::string> r(in.below(6));
            for (auto& s : r) s = in.bytes(12);
            return r;
        }
    }
}

inline void mutate_attr(Choices& in, AttrSpec& a) {
    switch (in.below(4)) {
        case 0:  // same type, hostile value
            a.i = mutate_int(in, a.i);
            a.d = mutate_double(in, a.d);
            a.s = mutate_string(in, a.s);
            a.list = mutate_list(in, a.list);
            break;
        case 1:  // other type, value kept where it converts
            a.type = AType(in.below(size_t(AType::Count)));
            if (a.s.empty() && a.type == AType::Str) a.s = std::to_string(a.i);
            break;
        default:  // both
            a.type = AType(in.below(size_t(AType::Count)));
            a.i = mutate_int(in, a.i);
            a.d = mutate_double(in, double(a.i));
            a.s = mutate_string(in, a.s);
            a.list = mutate_list(in, a.list);
    }
}

inline void mutate_shape(Choices& in, DsetSpec& d) {
    auto& s = d.shape;
    switch (in.below(10)) {
        case 0: s.push_back(1); break;
        case 1: if (!s.empty()) s.pop_back(); break;
        case 2: if (!s.empty()) s[in.below(s.size())] += 1; break;
        case 3: if (!s.empty()) s[in.below(s.size())] = 0; break;
        case 4: if (!s.empty()) s[in.below(s.size())] = hsize_t(1) << 40; break;     // huge, no data
        case 5: if (!s.empty()) s[in.below(s.size())] = (hsize_t(1) << 32) + s.back(); break;
        case 6: if (!s.empty()) s[in.below(s.size())] = hsize_t(1) << 31; break;
        case 7: s.assign(s.size() ? s.size() : 1, hsize_t(1) << 16); break;          // product 2^64 for rank 4
        case 8: if (!s.empty()) s[in.below(s.size())] = hsize_t(mutate_int(in, int64_t(s[0]))); break;
        default: d.space = in.flag() ? DsetSpec::Scalar : DsetSpec::Null;
    }
    for (auto& x : s) x = std::min<hsize_t>(x, hsize_t(1) << 62);  // H5Screate_simple's limit
}

inline void mutate_dset(Choices& in, DsetSpec& d) {
    switch (in.below(6)) {
        case 0: d.type = DType(in.below(size_t(DType::Count))); break;
        case 1: mutate_shape(in, d); break;
        case 2:
            d.store = Store(in.below(size_t(Store::Count)));
            d.zstd_level = 1 + int(in.below(3));
            d.zmode = int(in.below(6));
            d.zsize = in.flag() ? in.u64() : hsize_t(1) << (20 + in.below(24));
            d.raw = in.bytes(64);
            d.unlimited = in.flag();
            break;
        case 3:
            d.fill = Fill(in.below(size_t(Fill::Count)));
            d.raw = in.bytes(64);
            break;
        case 4: d.modulo = mutate_int(in, d.modulo); d.fill = Fill::Pattern; break;
        default:
            d.type = DType(in.below(size_t(DType::Count)));
            mutate_shape(in, d);
            d.store = Store(in.below(size_t(Store::Count)));
    }
}

// A few rounds of mutations over the whole plan; zero bytes mean no mutation at all.
inline void mutate_plan(Choices& in, Plan& p) {
    const int rounds = int(in.below(9));
    for (int r = 0; r < rounds; ++r) {
        const auto paths = p.paths();
        auto any_path = [&] { return paths[in.below(paths.size())]; };
        switch (in.below(9)) {
            case 0: case 1: case 2:
                // Zero bytes pick the last objects (tensors, task and train-state attributes),
                // so that a mostly-zero input still gets past the format checks.
                if (!p.attrs.empty()) mutate_attr(in, p.attrs[p.attrs.size() - 1 - in.below(p.attrs.size())]);
                break;
            case 3:
                if (!p.attrs.empty()) p.attrs.erase(p.attrs.end() - 1 - long(in.below(p.attrs.size())));
                break;
            case 4: case 5:
                if (!p.dsets.empty()) mutate_dset(in, p.dsets[p.dsets.size() - 1 - in.below(p.dsets.size())]);
                break;
            case 6:
                if (!p.dsets.empty()) {
                    size_t k = p.dsets.size() - 1 - in.below(p.dsets.size());
                    if (in.flag()) p.dsets.erase(p.dsets.begin() + long(k));
                    else p.dsets[k].path = any_path();  // a dataset where a group is expected
                }
                break;
            case 7: {  // a link where an object is expected: to another object, a cycle, nowhere
                LinkSpec l;
                l.kind = LinkSpec::Kind(in.below(3));
                l.target = in.flag() ? any_path() : std::string("/nowhere");
                l.path = any_path();
                // The link replaces the object: drop what the plan would have put there.
                p.dsets.erase(std::remove_if(p.dsets.begin(), p.dsets.end(),
                                             [&](const DsetSpec& d) { return d.path.rfind(l.path, 0) == 0; }),
                              p.dsets.end());
                if (l.path != "/") p.links.push_back(l);
                break;
            }
            default: {  // an unexpected extra attribute or dataset
                AttrSpec a;
                a.obj = any_path();
                a.name = in.flag() ? std::string("extra") : in.bytes(8);
                a.type = AType(in.below(size_t(AType::Count)));
                a.i = mutate_int(in, 0);
                a.s = mutate_string(in, "");
                p.attrs.push_back(a);
            }
        }
    }
}

// ------------------------------------------------------------------ zstd frames (RFC 8878)
inline void put_le(std::string& out, uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out.push_back(char((v >> (8 * i)) & 0xff));
}
// RLE blocks regenerating `total` bytes (128 KiB each), the last one flagged.
inline void rle_blocks(std::string& out, uint64_t total) {
    if (total == 0) { put_le(out, 1, 3); return; }  // one empty raw block, last
    while (total > 0) {
        uint64_t n = std::min<uint64_t>(total, 128 * 1024);
        total -= n;
        put_le(out, (n << 3) | (1 << 1) | (total == 0 ? 1 : 0), 3);
        out.push_back(char(0x7f));
    }
}
// Hostile chunk bytes for a dataset filtered by 32015 whose chunks hold `expect` bytes.
inline std::string zstd_chunk(int mode, uint64_t expect, uint64_t size, const std::string& seed) {
    std::string f;
    const uint64_t bomb = uint64_t(2) << 30;
    switch (mode) {
        case 0:   // single segment, content size field = size, but only a few bytes of content
            put_le(f, 0xFD2FB528u, 4);
            f.push_back(char(0xE0));
            put_le(f, size, 8);
            rle_blocks(f, std::min<uint64_t>(size, 256));
            return f;
        case 1:   // an honest frame of the wrong length (HDF5 expects exactly `expect`)
            put_le(f, 0xFD2FB528u, 4);
            f.push_back(char(0xE0));
            put_le(f, expect / 2 + 1, 8);
            rle_blocks(f, expect / 2 + 1);
            return f;
        case 2:   // streaming frame (no content size) that inflates 64 KiB to 2 GiB
            put_le(f, 0xFD2FB528u, 4);
            f.push_back(char(0x00));
            f.push_back(char(0x38));  // window 128 KiB
            rle_blocks(f, bomb);
            return f;
        case 3:   // streaming frame of the right length
            put_le(f, 0xFD2FB528u, 4);
            f.push_back(char(0x00));
            f.push_back(char(0x38));
            rle_blocks(f, expect);
            return f;
        case 4: { // a real frame, cut short
            std::string plain(size_t(std::min<uint64_t>(expect, 1 << 20)), '\x01');
            std::string z(ZSTD_compressBound(plain.size()), '\0');
            size_t r = ZSTD_compress(z.data(), z.size(), plain.data(), plain.size(), 1);
            if (ZSTD_isError(r)) return seed;
            z.resize(r);
            return z.substr(0, r > 4 ? r - 1 - size % (r - 4) : r);
        }
        default:  // bytes from the input
            return seed.empty() ? std::string("\x28\xb5\x2f\xfd", 4) : seed;
    }
}

// ------------------------------------------------------------------ writing
namespace detail {

inline hid_t file_type(DType t) {
    switch (t) {
        case DType::F32: return H5T_IEEE_F32LE;
        case DType::F32BE: return H5T_IEEE_F32BE;
        case DType::F64: return H5T_IEEE_F64LE;
        case DType::I32: return H5T_STD_I32LE;
        case DType::I32BE: return H5T_STD_I32BE;
        case DType::U8: return H5T_STD_U8LE;
        case DType::I8: return H5T_STD_I8LE;
        case DType::I64: return H5T_STD_I64LE;
        case DType::U64: return H5T_STD_U64LE;
        case DType::U32: return H5T_STD_U32LE;
        default: return H5T_STD_U8LE;  // Str handled apart
    }
}

inline bool is_float(DType t) { return t == DType::F32 || t == DType::F32BE || t == DType::F64; }

inline Handle lcpl() {
    Handle p(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
    H5Pset_create_intermediate_group(p.get(), 1);
    return p;
}

// Element i as a double in memory type `mt` (float types: H5T_NATIVE_DOUBLE, ints: INT64).
inline void fill_values(const DsetSpec& d, size_t n, std::vector<double>& fv, std::vector<int64_t>& iv) {
    fv.assign(n, 0.0);
    iv.assign(n, 0);
    for (size_t i = 0; i < n; ++i) {
        double v = 0;
        int64_t k = 0;
        switch (d.fill) {
            case Fill::Pattern:
                // Valid as stored by the tools: std > 0, AdamW second moments and BatchNorm
                // running variances >= 0.
                v = std::sin(double(i) * 0.7) * 0.1;
                if (d.path.find("std") != std::string::npos) v += 0.5;
                if (d.path.find("adam_v") != std::string::npos || d.path.find("running_var") != std::string::npos)
                    v = std::fabs(v);
                k = !d.values.empty() ? d.values[i % d.values.size()]
                    : d.modulo > 0    ? int64_t(i) % d.modulo
                                      : int64_t(i * 37 % 251);
                break;
            case Fill::Zero: break;
            case Fill::NaN: v = std::numeric_limits<double>::quiet_NaN(); k = -1; break;
            case Fill::Inf: v = (i % 2 ? -1 : 1) * std::numeric_limits<double>::infinity(); k = std::numeric_limits<int32_t>::max(); break;
            case Fill::Huge: v = 3.4e38; k = std::numeric_limits<int64_t>::max(); break;
            case Fill::Neg: v = -1; k = std::numeric_limits<int32_t>::min(); break;
            default: {
                uint8_t b = d.raw.empty() ? 0 : uint8_t(d.raw[i % d.raw.size()]);
                v = double(int8_t(b));
                k = int8_t(b);
            }
        }
        fv[i] = v;
        iv[i] = k;
    }
}

inline void write_dset(ufo::h5::File& f, const DsetSpec& d) {
    const hid_t fid = f.id();
    // Storage that needs chunks (filters, unlimited extents, no data) falls back to
    // contiguous where HDF5 forbids chunking (scalar and null spaces).
    Handle space;
    std::vector<hsize_t> shape = d.shape;
    if (d.space == DsetSpec::Scalar) space = Handle(H5Screate(H5S_SCALAR), H5Sclose);
    else if (d.space == DsetSpec::Null) space = Handle(H5Screate(H5S_NULL), H5Sclose);
    else {
        if (shape.empty()) space = Handle(H5Screate(H5S_SCALAR), H5Sclose);
        else {
            std::vector<hsize_t> maxd(shape.size(), H5S_UNLIMITED);
            space = Handle(H5Screate_simple(int(shape.size()), shape.data(), d.unlimited ? maxd.data() : nullptr), H5Sclose);
        }
    }
    if (!space.valid()) return;
    const bool simple = H5Sget_simple_extent_type(space.get()) == H5S_SIMPLE;
    // Elements, saturating at 2^63 (huge extents are declared, never written).
    uint64_t total = 1;
    for (auto s : shape) total = (s && total > (uint64_t(1) << 63) / s) ? (uint64_t(1) << 63) : total * s;
    if (!simple) total = d.space == DsetSpec::Null ? 0 : 1;
    const bool huge = total > (uint64_t(1) << 20);

    Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
    H5Pset_obj_track_times(dcpl.get(), 0);
    Store store = d.store;
    if (!simple && store != Store::Compact) store = Store::Contiguous;
    if (huge && (store == Store::Contiguous || store == Store::Compact)) store = Store::Unwritten;
    if (total == 0 && !d.unlimited) store = Store::Contiguous;  // a chunk cannot exceed a 0 extent
    if (d.unlimited && simple && (store == Store::Contiguous || store == Store::Compact)) store = Store::Chunked;
    std::vector<hsize_t> chunk;
    if (simple && store != Store::Contiguous && store != Store::Compact) {
        // The chunk rule of lib/h5.cpp (whole tensor up to 2^20 elements), capped per dim.
        uint64_t budget = uint64_t(1) << 20;
        chunk.resize(shape.size());
        for (size_t k = shape.size(); k-- > 0;) {
            hsize_t c = std::max<hsize_t>(1, std::min<hsize_t>(shape[k], budget));
            chunk[k] = c;
            budget = std::max<uint64_t>(1, budget / c);
        }
        H5Pset_chunk(dcpl.get(), int(chunk.size()), chunk.data());
        if (store == Store::Zstd || store == Store::ZstdRaw) {
            unsigned cd = unsigned(std::max(1, d.zstd_level));
            H5Pset_filter(dcpl.get(), ufo::h5::kZstdFilter, H5Z_FLAG_MANDATORY, 1, &cd);
        }
    } else if (store == Store::Compact) {
        H5Pset_layout(dcpl.get(), H5D_COMPACT);
    }

    Handle type;
    if (d.type == DType::Str) {
        type = Handle(H5Tcopy(H5T_C_S1), H5Tclose);
        H5Tset_size(type.get(), H5T_VARIABLE);
    } else {
        type = Handle(H5Tcopy(file_type(d.type)), H5Tclose);
    }
    Handle ds(H5Dcreate2(fid, d.path.c_str(), type.get(), space.get(), lcpl().get(), dcpl.get(), H5P_DEFAULT), H5Dclose);
    if (!ds.valid() || total == 0 || huge || store == Store::Unwritten) return;

    if (store == Store::ZstdRaw) {
        uint64_t chunk_elems = 1;
        for (auto c : chunk) chunk_elems *= c;
        const uint64_t expect = chunk_elems * (d.type == DType::Str ? 16 : H5Tget_size(type.get()));
        const std::string bytes = zstd_chunk(d.zmode, expect, d.zsize, d.raw);
        std::vector<hsize_t> off(shape.size(), 0);
        for (int c = 0; c < 8; ++c) {  // the first few chunks, in row-major chunk order
            H5Dwrite_chunk(ds.get(), H5P_DEFAULT, 0, off.data(), bytes.size(), bytes.data());
            size_t k = off.size();
            while (k-- > 0) {
                off[k] += chunk[k];
                if (off[k] < shape[k]) break;
                off[k] = 0;
            }
            if (k == size_t(-1)) break;
        }
        return;
    }

    Handle fspace(H5Dget_space(ds.get()), H5Sclose);
    size_t n = size_t(total);
    if (store == Store::Partial && simple) {  // one element of a chunked tensor
        std::vector<hsize_t> start(shape.size(), 0), count(shape.size(), 1);
        H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr);
        n = 1;
    }
    hsize_t nn = n;
    Handle mspace(H5Screate_simple(1, &nn, nullptr), H5Sclose);
    std::vector<double> fv;
    std::vector<int64_t> iv;
    fill_values(d, n, fv, iv);
    if (d.type == DType::Str) {
        std::vector<std::string> strs(n);
        std::vector<const char*> ptrs(n);
        for (size_t i = 0; i < n; ++i) { strs[i] = std::to_string(iv[i]); ptrs[i] = strs[i].c_str(); }
        H5Dwrite(ds.get(), type.get(), mspace.get(), fspace.get(), H5P_DEFAULT, ptrs.data());
    } else if (is_float(d.type)) {
        H5Dwrite(ds.get(), H5T_NATIVE_DOUBLE, mspace.get(), fspace.get(), H5P_DEFAULT, fv.data());
    } else {
        // Out-of-range values: HDF5's conversion clips them (its documented overflow behaviour).
        H5Dwrite(ds.get(), H5T_NATIVE_INT64, mspace.get(), fspace.get(), H5P_DEFAULT, iv.data());
    }
}

inline void write_attr(ufo::h5::File& f, const AttrSpec& a) {
    const hid_t fid = f.id();
    if (H5Lexists(fid, a.obj.c_str(), H5P_DEFAULT) <= 0 && a.obj != "/") {
        Handle g(H5Gcreate2(fid, a.obj.c_str(), lcpl().get(), H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
        if (!g.valid()) return;
    }
    // The ordinary types go through our own writer, exactly as the tools write them.
    try {
        switch (a.type) {
            case AType::I64: ufo::h5::set_attr(f, a.obj, a.name, a.i); return;
            case AType::F64: ufo::h5::set_attr(f, a.obj, a.name, a.d); return;
            case AType::Str: ufo::h5::set_attr(f, a.obj, a.name, a.s); return;
            case AType::StrList: ufo::h5::set_attr(f, a.obj, a.name, a.list); return;
            default: break;
        }
    } catch (const ufo::Error&) {
        return;  // e.g. an attribute over HDF5's 64 KiB header limit
    }
    Handle o(H5Oopen(fid, a.obj.c_str(), H5P_DEFAULT), H5Oclose);
    if (!o.valid()) return;
    if (H5Aexists(o.get(), a.name.c_str()) > 0) H5Adelete(o.get(), a.name.c_str());
    auto put = [&](hid_t ftype, hid_t mtype, hid_t space, const void* data) {
        Handle at(H5Acreate2(o.get(), a.name.c_str(), ftype, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
        if (at.valid() && data) H5Awrite(at.get(), mtype, data);
    };
    Handle scalar(H5Screate(H5S_SCALAR), H5Sclose);
    Handle vstr(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(vstr.get(), H5T_VARIABLE);
    H5Tset_cset(vstr.get(), H5T_CSET_UTF8);
    switch (a.type) {
        case AType::I32: { int32_t v = int32_t(a.i); put(H5T_STD_I32LE, H5T_NATIVE_INT32, scalar.get(), &v); break; }
        case AType::U64: { uint64_t v = uint64_t(a.i); put(H5T_STD_U64LE, H5T_NATIVE_UINT64, scalar.get(), &v); break; }
        case AType::I8: { int8_t v = int8_t(a.i); put(H5T_STD_I8LE, H5T_NATIVE_INT8, scalar.get(), &v); break; }
        case AType::U8: { uint8_t v = uint8_t(a.i); put(H5T_STD_U8LE, H5T_NATIVE_UINT8, scalar.get(), &v); break; }
        case AType::F32: {  // double -> float out of range is UB: saturate to infinity
            float v = std::fabs(a.d) > double(std::numeric_limits<float>::max()) && std::isfinite(a.d)
                          ? std::copysign(std::numeric_limits<float>::infinity(), float(a.d > 0 ? 1 : -1))
                          : float(a.d);
            put(H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, scalar.get(), &v);
            break;
        }
        case AType::NullStr: { const char* p = nullptr; put(vstr.get(), vstr.get(), scalar.get(), &p); break; }
        case AType::FixedStr: {
            Handle t(H5Tcopy(H5T_C_S1), H5Tclose);
            H5Tset_size(t.get(), std::max<size_t>(1, a.s.size()));
            H5Tset_strpad(t.get(), a.s.size() % 2 ? H5T_STR_SPACEPAD : H5T_STR_NULLPAD);
            std::string buf = a.s.empty() ? std::string(1, '\0') : a.s;
            put(t.get(), t.get(), scalar.get(), buf.data());
            break;
        }
        case AType::StrListNull: {
            hsize_t n = std::max<size_t>(1, a.list.size());
            Handle sp(H5Screate_simple(1, &n, nullptr), H5Sclose);
            std::vector<const char*> p(n, nullptr);
            for (size_t i = 0; i + 1 < a.list.size(); ++i) p[i] = a.list[i].c_str();
            put(vstr.get(), vstr.get(), sp.get(), p.data());
            break;
        }
        case AType::FixedStrList: {
            size_t len = 1;
            for (const auto& s : a.list) len = std::max(len, s.size());
            hsize_t n = a.list.size();
            Handle t(H5Tcopy(H5T_C_S1), H5Tclose);
            H5Tset_size(t.get(), len);
            Handle sp(H5Screate_simple(1, &n, nullptr), H5Sclose);
            std::string buf(std::max<size_t>(1, len * n), '\0');
            for (size_t i = 0; i < n; ++i) std::memcpy(&buf[i * len], a.list[i].data(), a.list[i].size());
            put(t.get(), t.get(), sp.get(), buf.data());
            break;
        }
        case AType::IntArray: {  // [3] int64 where a scalar is expected
            hsize_t n = 3;
            Handle sp(H5Screate_simple(1, &n, nullptr), H5Sclose);
            int64_t v[3] = {a.i, a.i, a.i};
            put(H5T_STD_I64LE, H5T_NATIVE_INT64, sp.get(), v);
            break;
        }
        case AType::NullSpace: {
            Handle sp(H5Screate(H5S_NULL), H5Sclose);
            put(H5T_STD_I64LE, H5T_NATIVE_INT64, sp.get(), nullptr);
            break;
        }
        case AType::EmptyIntArray: {
            hsize_t n = 0;
            Handle sp(H5Screate_simple(1, &n, nullptr), H5Sclose);
            put(H5T_STD_I64LE, H5T_NATIVE_INT64, sp.get(), nullptr);
            break;
        }
        default: break;
    }
}

}  // namespace detail

// Writes the plan to `path` (truncating). Objects HDF5 refuses (a name clash a mutation made)
// are skipped: the file stays valid HDF5. Throws ufo::Error only when the file cannot be created.
inline void write_plan(const Plan& p, const std::string& path) {
    ufo::h5::File f = ufo::h5::File::create(path);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    for (const auto& g : p.groups) {
        if (H5Lexists(f.id(), g.c_str(), H5P_DEFAULT) > 0) continue;
        Handle h(H5Gcreate2(f.id(), g.c_str(), detail::lcpl().get(), H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
    }
    for (const auto& d : p.dsets) {
        // Our writer for the tensors as the tools store them; the raw API for everything else.
        const bool plain = d.space == DsetSpec::Simple && !d.shape.empty() && !d.unlimited &&
                           d.fill == Fill::Pattern && (d.store == Store::Chunked || d.store == Store::Zstd) &&
                           (d.type == DType::F32 || d.type == DType::I32 || d.type == DType::U8);
        uint64_t total = 1;
        for (auto s : d.shape) total = s && total > (uint64_t(1) << 40) / s ? (uint64_t(1) << 40) : total * s;
        if (plain && total > 0 && total <= (uint64_t(1) << 20)) {
            std::vector<double> fv;
            std::vector<int64_t> iv;
            detail::fill_values(d, size_t(total), fv, iv);
            const int z = d.store == Store::Zstd ? std::max(1, d.zstd_level) : 0;
            try {
                if (d.type == DType::F32) {
                    std::vector<float> v(fv.begin(), fv.end());
                    ufo::h5::write_f32(f, d.path, v.data(), d.shape, z);
                } else if (d.type == DType::I32) {
                    std::vector<int32_t> v(iv.begin(), iv.end());
                    ufo::h5::write_i32(f, d.path, v.data(), d.shape, z);
                } else {
                    std::vector<uint8_t> v(iv.begin(), iv.end());
                    ufo::h5::write_u8(f, d.path, v.data(), d.shape, z);
                }
            } catch (const ufo::Error&) {
            }
            continue;
        }
        detail::write_dset(f, d);
    }
    for (const auto& l : p.links) {
        if (H5Lexists(f.id(), l.path.c_str(), H5P_DEFAULT) > 0) H5Ldelete(f.id(), l.path.c_str(), H5P_DEFAULT);
        switch (l.kind) {
            case LinkSpec::Soft: H5Lcreate_soft(l.target.c_str(), f.id(), l.path.c_str(), detail::lcpl().get(), H5P_DEFAULT); break;
            case LinkSpec::Hard: H5Lcreate_hard(f.id(), l.target.c_str(), f.id(), l.path.c_str(), detail::lcpl().get(), H5P_DEFAULT); break;
            default: H5Lcreate_external("/nonexistent/ufo-fuzz.h5", l.target.c_str(), f.id(), l.path.c_str(), detail::lcpl().get(), H5P_DEFAULT);
        }
    }
    for (const auto& a : p.attrs) detail::write_attr(f, a);
    f.close();
}

}  // namespace fuzz
