// The HDF5 layer (lib/h5.h) and atomic outputs (lib/atomic_file.h).
#include "io/atomic_file.h"
#include "base/common.h"
#include "io/h5.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <unistd.h>

#include "test_util.h"

namespace fs = std::filesystem;
using namespace ufo;

namespace {

using test::TempDir;
using test::error_of;

std::vector<uint8_t> slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

void spit(const std::string& path, const std::vector<uint8_t>& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

}  // namespace

TEST(H5Zstd, RoundTripIsBitExactAndCompressed) {
    TempDir t;
    const std::string p = t / "z.h5";
    std::vector<float> x(300000);
    for (size_t i = 0; i < x.size(); ++i) x[i] = float(i % 97) * 0.25f;  // compressible
    x[0] = -0.0f;
    x[1] = std::numeric_limits<float>::quiet_NaN();
    x[2] = std::numeric_limits<float>::denorm_min();
    x[3] = -std::numeric_limits<float>::infinity();
    {
        auto f = h5::File::create(p);
        h5::write_f32(f, "/w", x.data(), {300, 1000}, 5);
        f.close();
    }
    auto f = h5::File::open_read(p);
    std::vector<float> y(x.size());
    h5::read_f32(f, "/w", y.data(), {300, 1000});
    EXPECT_EQ(0, std::memcmp(x.data(), y.data(), x.size() * sizeof(float)));

    hid_t d = H5Dopen2(f.id(), "/w", H5P_DEFAULT);
    hid_t dcpl = H5Dget_create_plist(d);
    ASSERT_EQ(1, H5Pget_nfilters(dcpl));
    unsigned flags = 0, cd[4] = {0};
    size_t ncd = 4;
    char name[32];
    unsigned config = 0;
    EXPECT_EQ(h5::kZstdFilter, H5Pget_filter2(dcpl, 0, &flags, &ncd, cd, sizeof name, name, &config));
    EXPECT_EQ(1u, ncd);
    EXPECT_EQ(5u, cd[0]);
    EXPECT_LT(H5Dget_storage_size(d), x.size() * sizeof(float) / 4);
    H5Pclose(dcpl);
    H5Dclose(d);
}

TEST(H5Zstd, LevelZeroIsUncompressedAndRegisterIsIdempotent) {
    h5::register_zstd();
    h5::register_zstd();
    TempDir t;
    auto f = h5::File::create(t / "plain.h5");
    std::vector<int32_t> v = {1, -2, 3, -4};
    h5::write_i32(f, "/v", v.data(), {4}, 0);
    hid_t d = H5Dopen2(f.id(), "/v", H5P_DEFAULT);
    hid_t dcpl = H5Dget_create_plist(d);
    EXPECT_EQ(0, H5Pget_nfilters(dcpl));
    H5Pclose(dcpl);
    H5Dclose(d);
    std::vector<int32_t> back(4);
    h5::read_i32(f, "/v", back.data(), {4});
    EXPECT_EQ(v, back);
}

TEST(H5Data, AllTypesRoundTripIncludingLargeChunkedAndEmpty) {
    TempDir t;
    const std::string p = t / "types.h5";
    std::vector<uint8_t> big(2100 * 1000);
    for (size_t i = 0; i < big.size(); ++i) big[i] = uint8_t(i * 7 + i / 1000);
    std::vector<uint64_t> u64 = {0, 1, ~0ull, 1ull << 63};
    std::vector<int64_t> i64 = {std::numeric_limits<int64_t>::min(), -1, 0, 42};
    {
        auto f = h5::File::create(p);
        h5::write_u8(f, "/a/b/big", big.data(), {2100, 1000}, 1);
        h5::write_u64(f, "/u", u64.data(), {2, 2}, 3);
        h5::write_i64(f, "/i", i64.data(), {4}, 3);
        h5::write_f32(f, "/empty", nullptr, {0, 5}, 3);
        float s = 2.5f;
        h5::write_f32(f, "/scalar", &s, {}, 3);
        h5::write_u64(f, "/u", u64.data(), {4}, 0);  // replaces
        f.close();
    }
    auto f = h5::File::open_read(p);
    std::vector<uint8_t> big2(big.size());
    h5::read_u8(f, "/a/b/big", big2.data(), {2100, 1000});
    EXPECT_EQ(big, big2);
    std::vector<uint64_t> u2(4);
    h5::read_u64(f, "/u", u2.data(), {4});
    EXPECT_EQ(u64, u2);
    std::vector<int64_t> i2(4);
    h5::read_i64(f, "/i", i2.data(), {});
    EXPECT_EQ(i64, i2);
    EXPECT_EQ((std::vector<hsize_t>{0, 5}), h5::shape(f, "/empty"));
    EXPECT_EQ(std::vector<hsize_t>{}, h5::shape(f, "/scalar"));
    float s = 0;
    h5::read_f32(f, "/scalar", &s, {});
    EXPECT_EQ(2.5f, s);
    EXPECT_EQ("uint8", h5::type_name(f, "/a/b/big"));
}

TEST(H5Data, ShapeAndTypeMismatchesAreOneLineErrors) {
    TempDir t;
    const std::string p = t / "m.h5";
    std::vector<float> x(12, 1.f);
    {
        auto f = h5::File::create(p);
        h5::write_f32(f, "/x", x.data(), {3, 4}, 3);
        f.close();
    }
    auto f = h5::File::open_read(p);
    std::vector<float> out(15);
    EXPECT_EQ(p + ": /x has shape [3,4], expected [3,5]", error_of([&] { h5::read_f32(f, "/x", out.data(), {3, 5}); }));
    std::vector<int32_t> oi(12);
    EXPECT_EQ(p + ": /x has type float32, expected int32", error_of([&] { h5::read_i32(f, "/x", oi.data(), {3, 4}); }));
    EXPECT_EQ(p + ": missing dataset /nope/x", error_of([&] { h5::shape(f, "/nope/x"); }));
}

TEST(H5Attr, RoundTripsOverwriteAndErrors) {
    TempDir t;
    const std::string p = t / "a.h5";
    {
        auto f = h5::File::create(p);
        float one = 1;
        h5::write_f32(f, "/blocks/0/attn/qkv", &one, {1}, 3);
        h5::set_attr(f, "/", "name", std::string("héllo wörld"));
        h5::set_attr(f, "/", "steps", int64_t(1) << 40);
        h5::set_attr(f, "/", "small", 7);
        h5::set_attr(f, "/", "size", size_t(3));
        h5::set_attr(f, "/", "lr", 0.125);
        h5::set_attr(f, "/", "tasks", std::vector<std::string>{"fashion", "digits", ""});
        h5::set_attr(f, "/", "none", std::vector<std::string>{});
        h5::set_attr(f, "/blocks/0", "kind", "attn+ffn");
        h5::set_attr(f, "/blocks/0/attn/qkv", "bias", int64_t(0));
        h5::set_attr(f, "/", "lr", 0.5);  // replaces
        f.close();
    }
    auto f = h5::File::open_read(p);
    EXPECT_EQ("héllo wörld", h5::get_str(f, "/", "name"));
    EXPECT_EQ(int64_t(1) << 40, h5::get_int(f, "/", "steps"));
    EXPECT_EQ(7, h5::get_int(f, "/", "small"));
    EXPECT_EQ(3, h5::get_int(f, "/", "size"));
    EXPECT_EQ(0.5, h5::get_double(f, "/", "lr"));
    EXPECT_EQ(7.0, h5::get_double(f, "/", "small"));
    EXPECT_EQ((std::vector<std::string>{"fashion", "digits", ""}), h5::get_strs(f, "/", "tasks"));
    EXPECT_TRUE(h5::get_strs(f, "/", "none").empty());
    EXPECT_EQ("attn+ffn", h5::get_str(f, "/blocks/0", "kind"));
    EXPECT_EQ(0, h5::get_int(f, "/blocks/0/attn/qkv", "bias"));
    EXPECT_TRUE(h5::has_attr(f, "/", "name"));
    EXPECT_FALSE(h5::has_attr(f, "/", "nope"));
    EXPECT_FALSE(h5::has_attr(f, "/missing/group", "x"));
    EXPECT_EQ(p + ": missing attribute /@nope", error_of([&] { h5::get_str(f, "/", "nope"); }));
    EXPECT_EQ(p + ": attribute /@name has type string, expected integer", error_of([&] { h5::get_int(f, "/", "name"); }));
    EXPECT_EQ(p + ": attribute /@steps has type int64, expected string", error_of([&] { h5::get_str(f, "/", "steps"); }));
}

TEST(H5Groups, ExistsAndSortedListing) {
    TempDir t;
    auto f = h5::File::create(t / "g.h5");
    int32_t v = 1;
    for (const char* n : {"/tasks/zeta/head", "/tasks/alpha/head", "/tasks/mid/router"}) h5::write_i32(f, n, &v, {1}, 0);
    EXPECT_TRUE(h5::exists(f, "/"));
    EXPECT_TRUE(h5::exists(f, "/tasks/alpha/head"));
    EXPECT_TRUE(h5::exists(f, "/tasks/alpha"));
    EXPECT_FALSE(h5::exists(f, "/tasks/beta/head"));
    EXPECT_FALSE(h5::exists(f, "/nope/deeper/still"));
    EXPECT_EQ((std::vector<std::string>{"alpha", "mid", "zeta"}), h5::list_group(f, "/tasks"));
    EXPECT_EQ((std::vector<std::string>{"tasks"}), h5::list_group(f, "/"));
    EXPECT_EQ(f.path() + ": missing group /x", error_of([&] { h5::list_group(f, "/x"); }));
}

TEST(H5Open, MissingNotHdf5TruncatedAndInMemory) {
    TempDir t;
    const std::string p = t / "ok.h5";
    std::vector<uint8_t> data(200000);
    for (size_t i = 0; i < data.size(); ++i) data[i] = uint8_t(i * 2654435761u >> 13);  // incompressible
    {
        auto f = h5::File::create(p);
        h5::write_u8(f, "/d", data.data(), {data.size()}, 0);
        h5::set_attr(f, "/", "format", "x");
        f.close();
    }
    EXPECT_EQ(t / "nope.h5" + ": no such file", error_of([&] { h5::File::open_read(t / "nope.h5"); }));

    spit(t / "text.h5", {'h', 'e', 'l', 'l', 'o', '\n'});
    EXPECT_EQ(t / "text.h5" + ": not an HDF5 file", error_of([&] { h5::File::open_read(t / "text.h5"); }));
    spit(t / "empty.h5", {});
    EXPECT_EQ(t / "empty.h5" + ": not an HDF5 file", error_of([&] { h5::File::open_read(t / "empty.h5"); }));

    auto bytes = slurp(p);
    spit(t / "half.h5", std::vector<uint8_t>(bytes.begin(), bytes.begin() + long(bytes.size() / 2)));
    EXPECT_EQ(t / "half.h5" + ": truncated or corrupt HDF5 file", error_of([&] { h5::File::open_read(t / "half.h5"); }));

    auto m = h5::File::open_memory(bytes, "<mem>");
    EXPECT_EQ("<mem>", m.path());
    EXPECT_EQ("x", h5::get_str(m, "/", "format"));
    std::vector<uint8_t> back(data.size());
    h5::read_u8(m, "/d", back.data(), {data.size()});
    EXPECT_EQ(data, back);
    auto m2 = h5::File::open_memory(bytes, "<mem2>");  // two images at once
    EXPECT_TRUE(h5::exists(m2, "/d"));
    EXPECT_EQ("<mem>: truncated or corrupt HDF5 file",
              error_of([&] { h5::File::open_memory(std::vector<uint8_t>(bytes.begin(), bytes.begin() + 3000), "<mem>"); }));
    EXPECT_EQ("<mem>: not an HDF5 file", error_of([&] { h5::File::open_memory({1, 2, 3}, "<mem>"); }));
}

TEST(H5AtomicPath, CommitRenamesAbandonRemovesMissingDirFailsEarly) {
    TempDir t;
    const std::string p = t / "out.bin";
    std::string tmp;
    {
        AtomicPath a(p);
        tmp = a.tmp();
        EXPECT_EQ(fs::path(p).parent_path(), fs::path(tmp).parent_path());
        spit(tmp, {1, 2, 3});
    }
    EXPECT_FALSE(fs::exists(tmp));
    EXPECT_FALSE(fs::exists(p));
    {
        AtomicPath a(p);
        spit(a.tmp(), {1, 2, 3});
        a.commit();
        tmp = a.tmp();
    }
    EXPECT_TRUE(fs::exists(p));
    EXPECT_FALSE(fs::exists(tmp));
    EXPECT_EQ((std::vector<uint8_t>{1, 2, 3}), slurp(p));
    EXPECT_EQ(t / "no/such/out.h5" + ": directory does not exist", error_of([&] { AtomicPath a(t / "no/such/out.h5"); }));
    EXPECT_EQ(t.path + ": is a directory", error_of([&] { AtomicPath a(t.path); }));
    EXPECT_EQ(1u, std::distance(fs::directory_iterator(t.path), fs::directory_iterator{}));
}

TEST(H5AtomicPath, Fnv1aKnownValues) {
    TempDir t;
    spit(t / "e", {});
    spit(t / "a", {'a'});
    EXPECT_EQ(0xcbf29ce484222325ull, fnv1a_file(t / "e"));
    EXPECT_EQ(0xaf63dc4c8601ec8cull, fnv1a_file(t / "a"));
    EXPECT_EQ(t / "x" + ": no such file", error_of([&] { fnv1a_file(t / "x"); }));
}
