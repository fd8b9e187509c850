// h5edit — edits an HDF5 file in place to craft bad inputs for the tests (not installed).
//
//   h5edit FILE int OBJ NAME VALUE        set an int64 attribute (replacing any of that name)
//   h5edit FILE str OBJ NAME VALUE        set a string attribute
//   h5edit FILE double OBJ NAME VALUE     set a float64 attribute ("nan", "inf" accepted)
//   h5edit FILE f32 DSET INDEX VALUE      overwrite one element of a float32 dataset
//   h5edit FILE declare DSET TYPE D0,D1.. replace DSET by a chunked dataset of that shape with
//                                         no data written (TYPE u8, i32, f32); extents may be
//                                         far beyond the file size, as HDF5 allows
//   h5edit FILE delete OBJ                unlink an object
// Uses the plain HDF5 C API on purpose: it must write what ufo's own writer refuses to.
#include <hdf5.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

[[noreturn]] void die(const std::string& msg) {
    std::fprintf(stderr, "h5edit: %s\n", msg.c_str());
    std::exit(1);
}

void check(herr_t r, const std::string& what) {
    if (r < 0) die(what + " failed");
}

hid_t open_obj(hid_t f, const std::string& obj) {
    hid_t o = H5Oopen(f, obj.c_str(), H5P_DEFAULT);
    if (o < 0) die("no object " + obj);
    return o;
}

void set_attr(hid_t f, const std::string& obj, const std::string& name, hid_t type, hid_t mem, const void* v) {
    hid_t o = open_obj(f, obj);
    if (H5Aexists(o, name.c_str()) > 0) check(H5Adelete(o, name.c_str()), "H5Adelete");
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(o, name.c_str(), type, s, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0) die("cannot create attribute " + obj + "@" + name);
    check(H5Awrite(a, mem, v), "H5Awrite");
    H5Aclose(a);
    H5Sclose(s);
    H5Oclose(o);
}

std::vector<hsize_t> parse_dims(const std::string& s) {
    std::vector<hsize_t> d;
    size_t pos = 0;
    while (pos <= s.size()) {
        size_t comma = s.find(',', pos);
        if (comma == std::string::npos) comma = s.size();
        d.push_back(std::strtoull(s.substr(pos, comma - pos).c_str(), nullptr, 10));
        pos = comma + 1;
    }
    return d;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4) die("usage: h5edit FILE int|str|double|f32|declare|delete ...");
    const std::string file = argv[1], op = argv[2];
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);   // our own one-line messages instead
    hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0) die("cannot open " + file);
    if (op == "int" && argc == 6) {
        long long v = std::strtoll(argv[5], nullptr, 10);
        set_attr(f, argv[3], argv[4], H5T_STD_I64LE, H5T_NATIVE_LLONG, &v);
    } else if (op == "double" && argc == 6) {
        double v = std::strtod(argv[5], nullptr);
        set_attr(f, argv[3], argv[4], H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v);
    } else if (op == "str" && argc == 6) {
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, H5T_VARIABLE);
        const char* v = argv[5];
        set_attr(f, argv[3], argv[4], t, t, &v);
        H5Tclose(t);
    } else if (op == "f32" && argc == 6) {
        hid_t d = H5Dopen2(f, argv[3], H5P_DEFAULT);
        if (d < 0) die(std::string("no dataset ") + argv[3]);
        hid_t s = H5Dget_space(d);
        hssize_t n = H5Sget_simple_extent_npoints(s);
        std::vector<float> buf(static_cast<size_t>(n));
        check(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()), "H5Dread");
        buf.at(std::strtoull(argv[4], nullptr, 10)) = std::strtof(argv[5], nullptr);
        check(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()), "H5Dwrite");
        H5Sclose(s);
        H5Dclose(d);
    } else if (op == "declare" && argc == 6) {
        const std::string dset = argv[3], type = argv[4];
        const hid_t t = type == "u8" ? H5T_STD_U8LE : type == "i32" ? H5T_STD_I32LE : H5T_IEEE_F32LE;
        std::vector<hsize_t> dims = parse_dims(argv[5]), chunk(dims.size(), 1);
        if (H5Lexists(f, dset.c_str(), H5P_DEFAULT) > 0) check(H5Ldelete(f, dset.c_str(), H5P_DEFAULT), "H5Ldelete");
        hid_t s = H5Screate_simple(int(dims.size()), dims.data(), nullptr);
        hid_t p = H5Pcreate(H5P_DATASET_CREATE);
        check(H5Pset_chunk(p, int(chunk.size()), chunk.data()), "H5Pset_chunk");
        hid_t d = H5Dcreate2(f, dset.c_str(), t, s, H5P_DEFAULT, p, H5P_DEFAULT);
        if (d < 0) die("cannot create " + dset);
        H5Dclose(d);
        H5Pclose(p);
        H5Sclose(s);
    } else if (op == "delete" && argc == 4) {
        check(H5Ldelete(f, argv[3], H5P_DEFAULT), "H5Ldelete");
    } else {
        die("bad arguments for " + op);
    }
    check(H5Fclose(f), "H5Fclose");
    return 0;
}
