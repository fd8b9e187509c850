// The bounded-reader layer: overflow-checked products, ranges, memory checks, and the readers
// that use them on files crafted with sizes beyond every limit.
#include "base/bounds.h"
#include "io/checkpoint.h"
#include "io/dataset.h"
#include "io/h5.h"
#include "io/routes.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <zstd.h>

#include <cstdint>
#include <limits>

using namespace ufo;

TEST(Bounds, ProductDetectsOverflowAndNegatives) {
    int64_t p = 0;
    EXPECT_TRUE(bounds::product({64, 28, 28, 1}, &p));
    EXPECT_EQ(p, 50176);
    // (2^22, 2^21, 2^21) is 2^64: it wraps to 0 in unchecked 64-bit arithmetic.
    EXPECT_FALSE(bounds::product({int64_t(1) << 22, int64_t(1) << 21, int64_t(1) << 21}, &p));
    EXPECT_FALSE(bounds::mul(-1, 5, &p));
    EXPECT_TRUE(bounds::mul(0, std::numeric_limits<int64_t>::max(), &p));
    EXPECT_EQ(p, 0);
}

TEST(Bounds, RangeAndMemoryMessagesNameTheFile) {
    EXPECT_EQ("f.h5: depth is 1000000000, outside 1..128",
              test::error_of([] { bounds::check_range("f.h5", "depth", 1000000000, 1, 128); }));
    EXPECT_EQ("(no error)", test::error_of([] { bounds::check_range("f.h5", "depth", 128, 1, 128); }));
    const std::string e = test::error_of([] { bounds::check_memory("f.h5", "/images", std::numeric_limits<int64_t>::max()); });
    EXPECT_EQ(0u, e.rfind("f.h5: /images needs ", 0)) << e;
    std::vector<float> v;
    const std::string r = test::error_of([&] { bounds::resize_or_fail(v, int64_t(1) << 62, "f.h5", "the tensor"); });
    EXPECT_EQ(0u, r.rfind("f.h5: the tensor ", 0)) << r;
    EXPECT_EQ("1.5 GiB", bounds::human_bytes(1.5 * 1024 * 1024 * 1024));
}

TEST(Bounds, ArchitectureLimitsApplyToFlagsToo) {
    ViTConfig c = preset("tiny");
    c.depth = 1000000000;
    EXPECT_NE(std::string::npos, test::error_of([&] { c.validate("x"); }).find("depth 1000000000 is above the limit of 128"));
    c = preset("tiny");
    c.in_mean[0] = std::numeric_limits<float>::quiet_NaN();
    EXPECT_EQ("x: input mean must be finite", test::error_of([&] { c.validate("x"); }));
}

TEST(Bounds, RouteTableLayersAreDigitsOnly) {
    for (const char* layer : {" 0", "+0", "00", "-1", "0x1", "1e2", "128"}) {
        const std::string text = std::string("task\tlayer\tpath\nalpha\t") + layer + "\town\n";
        EXPECT_NE("", test::error_of([&] { parse_route_table(text, "r.tsv"); })) << "layer '" << layer << "'";
    }
    EXPECT_EQ("(no error)", test::error_of([] { parse_route_table("task\tlayer\tpath\nalpha\t0\town\nalpha\t1\tshared\n", "r.tsv"); }));
}

TEST(Bounds, DatasetDeclaredButNotStoredIsRefusedBeforeAllocation) {
    test::TempDir t;
    Dataset ds;
    ds.n = 4; ds.h = 2; ds.w = 2; ds.c = 1;
    ds.images.assign(16, 7);
    ds.labels = {0, 1, 0, 1};
    ds.class_names = {"a", "b"};
    save_dataset(ds, t / "d.h5", "test");
    {
        // Replace /images and /labels by chunked extents of 2e9 samples with no chunk written.
        hid_t f = H5Fopen((t / "d.h5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
        ASSERT_GE(f, 0);
        H5Ldelete(f, "/images", H5P_DEFAULT);
        hsize_t dims[4] = {2000000000, 2, 2, 1}, chunk[4] = {1, 2, 2, 1};
        hid_t sp = H5Screate_simple(4, dims, nullptr), pl = H5Pcreate(H5P_DATASET_CREATE);
        H5Pset_chunk(pl, 4, chunk);
        hid_t d = H5Dcreate2(f, "/images", H5T_STD_U8LE, sp, H5P_DEFAULT, pl, H5P_DEFAULT);
        ASSERT_GE(d, 0);
        H5Dclose(d); H5Pclose(pl); H5Sclose(sp);
        H5Ldelete(f, "/labels", H5P_DEFAULT);
        hid_t lsp = H5Screate_simple(1, dims, nullptr), lpl = H5Pcreate(H5P_DATASET_CREATE);
        H5Pset_chunk(lpl, 1, chunk);
        hid_t l = H5Dcreate2(f, "/labels", H5T_STD_I32LE, lsp, H5P_DEFAULT, lpl, H5P_DEFAULT);
        ASSERT_GE(l, 0);
        H5Dclose(l); H5Pclose(lpl); H5Sclose(lsp); H5Fclose(f);
    }
    EXPECT_EQ(t / "d.h5" + ": /images declares shape [2000000000,2,2,1] but stores no data",
              test::error_of([&] { load_dataset(t / "d.h5"); }));
}

TEST(Bounds, ZstdChunkThatDecodesShortIsAnErrorNotAnOverread) {
    // A zstd frame whose content is smaller than the chunk: HDF5 would copy a whole chunk out of
    // the filter's shorter buffer (found by fuzz_dataset as a heap overflow).
    test::TempDir t;
    std::vector<uint8_t> data(64, 5);
    {
        h5::File f = h5::File::create(t / "z.h5");
        h5::write_u8(f, "/x", data.data(), {8, 8}, 3);
        f.close();
    }
    {
        hid_t f = H5Fopen((t / "z.h5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
        ASSERT_GE(f, 0);
        hid_t d = H5Dopen2(f, "/x", H5P_DEFAULT);
        std::vector<uint8_t> half(32, 9), frame(ZSTD_compressBound(half.size()));
        frame.resize(ZSTD_compress(frame.data(), frame.size(), half.data(), half.size(), 3));
        hsize_t offset[2] = {0, 0};
        ASSERT_GE(H5Dwrite_chunk(d, H5P_DEFAULT, 0, offset, frame.size(), frame.data()), 0);
        H5Dclose(d);
        H5Fclose(f);
    }
    h5::File f = h5::File::open_read(t / "z.h5");
    EXPECT_EQ(t / "z.h5" + ": cannot read /x (truncated or corrupt data)",
              test::error_of([&] { h5::read_u8(f, "/x", data.data(), {8, 8}); }));
}
