// The dataset file (lib/dataset.h), importers and resize (lib/image_io.h), splits.
#include "base/common.h"
#include "io/dataset.h"
#include "io/h5.h"
#include "io/image_io.h"

#include <gtest/gtest.h>
#include <jpeglib.h>
#include <zlib.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <unistd.h>

#include "test_util.h"

namespace fs = std::filesystem;
using namespace ufo;

namespace {

using test::TempDir;
using test::error_of;

Dataset synth(int n, int k, int h = 5, int w = 4, int c = 3) {
    Dataset ds;
    ds.n = n;
    ds.h = h;
    ds.w = w;
    ds.c = c;
    for (int i = 0; i < k; ++i) ds.class_names.push_back("class " + std::to_string(i));
    ds.images.resize(size_t(n) * h * w * c);
    for (size_t i = 0; i < ds.images.size(); ++i) ds.images[i] = uint8_t(i * 31 + 7);
    for (int i = 0; i < n; ++i) ds.labels.push_back(i % k);
    ds.source = "unit test";
    return ds;
}

std::vector<uint8_t> idx_bytes(uint8_t rank, std::vector<uint32_t> dims, const std::vector<uint8_t>& data) {
    std::vector<uint8_t> b = {0, 0, 0x08, rank};
    for (uint32_t d : dims)
        for (int s = 24; s >= 0; s -= 8) b.push_back(uint8_t(d >> s));
    b.insert(b.end(), data.begin(), data.end());
    return b;
}

void spit(const std::string& path, const std::vector<uint8_t>& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

void spit_gz(const std::string& path, const std::vector<uint8_t>& bytes) {
    gzFile gz = gzopen(path.c_str(), "wb");
    gzwrite(gz, bytes.data(), unsigned(bytes.size()));
    gzclose(gz);
}

// A dataset file written field by field, so the reader's checks can be tried on bad content.
void write_raw(const std::string& path, const std::vector<int32_t>& labels, int num_classes, int64_t n_images) {
    auto f = h5::File::create(path);
    std::vector<uint8_t> px(size_t(n_images) * 4, 1);
    h5::write_u8(f, "/images", px.data(), {hsize_t(n_images), 2, 2, 1}, 3);
    h5::write_i32(f, "/labels", labels.data(), {labels.size()}, 3);
    h5::set_attr(f, "/", "format", "ufo-dataset");
    h5::set_attr(f, "/", "format_version", int64_t(1));
    std::vector<std::string> names;
    for (int i = 0; i < num_classes; ++i) names.push_back(std::to_string(i));
    h5::set_attr(f, "/", "class_names", names);
    h5::set_attr(f, "/", "num_classes", int64_t(num_classes));
    f.close();
}

// A baseline JPEG of img (1 or 3 channels) at quality 95.
std::vector<uint8_t> jpeg_bytes(const Image& img) {
    jpeg_compress_struct c{};
    jpeg_error_mgr err{};
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    unsigned char* mem = nullptr;
    unsigned long size = 0;
    jpeg_mem_dest(&c, &mem, &size);
    c.image_width = JDIMENSION(img.w);
    c.image_height = JDIMENSION(img.h);
    c.input_components = img.c;
    c.in_color_space = img.c == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 95, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = const_cast<uint8_t*>(img.px.data()) + size_t(c.next_scanline) * img.w * img.c;
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    std::vector<uint8_t> out(mem, mem + size);
    free(mem);
    return out;
}

}  // namespace

TEST(DatasetFile, SaveLoadRoundTrip) {
    TempDir t;
    Dataset ds = synth(23, 3);
    save_dataset(ds, t / "d.h5", "ufo-data test --x", 3);
    Dataset back = load_dataset(t / "d.h5");
    EXPECT_EQ(ds.n, back.n);
    EXPECT_EQ(ds.h, back.h);
    EXPECT_EQ(ds.w, back.w);
    EXPECT_EQ(ds.c, back.c);
    EXPECT_EQ(ds.images, back.images);
    EXPECT_EQ(ds.labels, back.labels);
    EXPECT_EQ(ds.class_names, back.class_names);
    EXPECT_EQ("unit test", back.source);
    EXPECT_EQ(std::vector<int64_t>({8, 8, 7}), class_counts(back));
    auto f = h5::File::open_read(t / "d.h5");
    EXPECT_EQ("ufo-data", h5::get_str(f, "/", "tool"));
    EXPECT_EQ(kVersion, h5::get_str(f, "/", "ufo_version"));
    EXPECT_EQ("ufo-data test --x", h5::get_str(f, "/", "command_line"));
    EXPECT_EQ(3, h5::get_int(f, "/", "num_classes"));
    EXPECT_EQ(20u, h5::get_str(f, "/", "created").size());  // 2024-01-02T03:04:05Z
    // No temp files left next to the output.
    EXPECT_EQ(1u, std::distance(fs::directory_iterator(t.path), fs::directory_iterator{}));
}

TEST(DatasetFile, ReaderRejectsLabelOutOfRange) {
    TempDir t;
    write_raw(t / "bad.h5", {0, 1, 2, 3, 4, 12, 0}, 10, 7);
    EXPECT_EQ(t / "bad.h5" + ": label 12 at index 5 is out of range [0,10)", error_of([&] { load_dataset(t / "bad.h5"); }));
    write_raw(t / "neg.h5", {0, -1}, 10, 2);
    EXPECT_EQ(t / "neg.h5" + ": label -1 at index 1 is out of range [0,10)", error_of([&] { load_dataset(t / "neg.h5"); }));
    write_raw(t / "count.h5", {0, 1, 2}, 10, 2);
    EXPECT_EQ(t / "count.h5" + ": /labels has shape [3], expected [2] to match /images",
              error_of([&] { load_dataset(t / "count.h5"); }));
}

TEST(DatasetFile, EmptyRejectedUnlessAllowed) {
    TempDir t;
    write_raw(t / "e.h5", {}, 10, 0);
    EXPECT_EQ(t / "e.h5" + ": dataset is empty", error_of([&] { load_dataset(t / "e.h5"); }));
    EXPECT_EQ(0, load_dataset(t / "e.h5", true).n);
    Dataset ds = synth(0, 2);
    save_dataset(ds, t / "e2.h5", "x", 3);
    EXPECT_EQ(t / "e2.h5" + ": dataset is empty", error_of([&] { load_dataset(t / "e2.h5"); }));
}

TEST(DatasetFile, WrongFormatAndSaveValidation) {
    TempDir t;
    {
        auto f = h5::File::create(t / "other.h5");
        h5::set_attr(f, "/", "format", "ufo-checkpoint");
        f.close();
    }
    EXPECT_EQ(t / "other.h5" + ": not a ufo dataset (format=ufo-checkpoint)", error_of([&] { load_dataset(t / "other.h5"); }));
    Dataset ds = synth(4, 2);
    ds.labels[2] = 5;
    EXPECT_EQ(t / "x.h5" + ": label 5 at index 2 is out of range [0,2)", error_of([&] { save_dataset(ds, t / "x.h5", "x"); }));
    EXPECT_FALSE(fs::exists(t / "x.h5"));
    EXPECT_EQ(t / "no/x.h5" + ": directory does not exist", error_of([&] { save_dataset(synth(4, 2), t / "no/x.h5", "x"); }));
}

TEST(DatasetIdx, PlainAndGzipImport) {
    TempDir t;
    std::vector<uint8_t> px(3 * 2 * 2);
    for (size_t i = 0; i < px.size(); ++i) px[i] = uint8_t(i * 20);
    spit(t / "img.idx", idx_bytes(3, {3, 2, 2}, px));
    spit(t / "lab.idx", idx_bytes(1, {3}, {2, 0, 1}));
    spit_gz(t / "img.idx.gz", idx_bytes(3, {3, 2, 2}, px));
    spit_gz(t / "lab.idx.gz", idx_bytes(1, {3}, {2, 0, 1}));
    for (auto [im, lb] : {std::pair{"img.idx", "lab.idx"}, std::pair{"img.idx.gz", "lab.idx.gz"}}) {
        Dataset ds = import_idx(t / im, t / lb);
        EXPECT_EQ(3, ds.n);
        EXPECT_EQ(2, ds.h);
        EXPECT_EQ(2, ds.w);
        EXPECT_EQ(1, ds.c);
        EXPECT_EQ(px, ds.images);
        EXPECT_EQ(std::vector<int32_t>({2, 0, 1}), ds.labels);
        EXPECT_EQ(std::vector<std::string>({"0", "1", "2"}), ds.class_names);
    }
    EXPECT_EQ(4, import_idx(t / "img.idx", t / "lab.idx", {"a", "b", "c", "d"}).num_classes());
    EXPECT_EQ(t / "lab.idx" + ": label 2 at index 0 is out of range [0,2)",
              error_of([&] { import_idx(t / "img.idx", t / "lab.idx", {"a", "b"}); }));
}

TEST(DatasetIdx, BadFilesNameTheFile) {
    TempDir t;
    spit(t / "img.idx", idx_bytes(3, {3, 2, 2}, std::vector<uint8_t>(12)));
    spit(t / "short.idx", idx_bytes(3, {3, 2, 2}, std::vector<uint8_t>(11)));
    spit(t / "lab2.idx", idx_bytes(1, {2}, {0, 1}));
    spit(t / "junk", {'P', 'K', 3, 4, 5});
    EXPECT_EQ(t / "lab2.idx" + ": 2 labels, but " + t / "img.idx" + " has 3 images",
              error_of([&] { import_idx(t / "img.idx", t / "lab2.idx"); }));
    EXPECT_EQ(t / "short.idx" + ": truncated: header promises 12 bytes of data, file has 11",
              error_of([&] { import_idx(t / "short.idx", t / "lab2.idx"); }));
    EXPECT_EQ(t / "junk" + ": not an IDX file (bad magic number)", error_of([&] { import_idx(t / "junk", t / "lab2.idx"); }));
    EXPECT_EQ(t / "lab2.idx" + ": IDX file has 1 dimensions, expected 3 (an images file)",
              error_of([&] { import_idx(t / "lab2.idx", t / "lab2.idx"); }));
    EXPECT_EQ(t / "none" + ": no such file", error_of([&] { import_idx(t / "none", t / "lab2.idx"); }));
}

TEST(DatasetGrid, SyntheticPngSheet) {
    TempDir t;
    // 3 rows x 4 cols of 2x2 cells; cell i is filled with 10*i; 4 cells per class -> 3 classes.
    Image sheet{6, 8, 1, std::vector<uint8_t>(48)};
    for (int y = 0; y < 6; ++y)
        for (int x = 0; x < 8; ++x) sheet.px[size_t(y * 8 + x)] = uint8_t(10 * ((y / 2) * 4 + x / 2));
    write_png(t / "sheet.png", sheet);
    Dataset ds = import_grid(t / "sheet.png", 2, 4);
    ASSERT_EQ(12, ds.n);
    EXPECT_EQ(2, ds.h);
    EXPECT_EQ(1, ds.c);
    for (int i = 0; i < 12; ++i) {
        EXPECT_EQ(i / 4, ds.labels[size_t(i)]);
        for (size_t p = 0; p < 4; ++p) EXPECT_EQ(10 * i, ds.image(i)[p]);
    }
    Dataset rgb = import_grid(t / "sheet.png", 2, 6, 3, {"x", "y"});
    EXPECT_EQ(3, rgb.c);
    EXPECT_EQ(2, rgb.num_classes());
    EXPECT_EQ(50, rgb.image(5)[2]);
    EXPECT_EQ(t / "sheet.png" + ": 12 cells are not a multiple of --per-class 5",
              error_of([&] { import_grid(t / "sheet.png", 2, 5); }));
    EXPECT_EQ(t / "sheet.png" + ": sheet is 8x6 px, not a whole number of 4-px cells",
              error_of([&] { import_grid(t / "sheet.png", 4, 1); }));
}

TEST(DatasetFolder, ClassesFromSortedSubdirectories) {
    TempDir t;
    fs::create_directories(t / "imgs/b_cat");
    fs::create_directories(t / "imgs/a_dog");
    write_png(t / "imgs/b_cat/2.png", Image{3, 3, 1, std::vector<uint8_t>(9, 200)});
    write_png(t / "imgs/b_cat/1.png", Image{3, 3, 1, std::vector<uint8_t>(9, 100)});
    write_png(t / "imgs/a_dog/x.png", Image{3, 3, 3, std::vector<uint8_t>(27, 50)});
    Dataset ds = import_folder(t / "imgs", 1);
    EXPECT_EQ(std::vector<std::string>({"a_dog", "b_cat"}), ds.class_names);
    EXPECT_EQ(std::vector<int32_t>({0, 1, 1}), ds.labels);
    EXPECT_EQ(50, ds.image(0)[0]);
    EXPECT_EQ(100, ds.image(1)[0]);
    EXPECT_EQ(200, ds.image(2)[0]);
    write_png(t / "imgs/b_cat/3.png", Image{4, 3, 1, std::vector<uint8_t>(12, 1)});
    EXPECT_NE(std::string::npos, error_of([&] { import_folder(t / "imgs"); }).find("use --resize"));
    EXPECT_EQ(6, import_folder(t / "imgs", 0, 6, 6).h);
}

TEST(DatasetResize, KnownPatterns) {
    // Shrinking by 2 averages 2x2 blocks.
    Image a{4, 4, 1, {0, 2, 10, 20, 4, 6, 30, 40, 100, 100, 7, 7, 100, 100, 7, 9}};
    Image r = resize(a, 2, 2);
    EXPECT_EQ(std::vector<uint8_t>({3, 25, 100, 8}), r.px);
    // Enlarging 2->4 with half-pixel centres: weights (1), (.75,.25), (.25,.75), (1).
    Image b{1, 2, 1, {0, 100}};
    EXPECT_EQ(std::vector<uint8_t>({0, 25, 75, 100}), resize(b, 1, 4).px);
    // 3->2 area: [0,1.5) and [1.5,3).
    Image c{1, 3, 1, {30, 60, 90}};
    EXPECT_EQ(std::vector<uint8_t>({40, 80}), resize(c, 1, 2).px);
    // Identity, constants, and channels kept apart.
    EXPECT_EQ(a.px, resize(a, 4, 4).px);
    Image k{5, 7, 3, {}};
    for (int i = 0; i < 35; ++i) k.px.insert(k.px.end(), {11, 22, 33});
    Image kr = resize(k, 28, 13);
    ASSERT_EQ(size_t(28 * 13 * 3), kr.px.size());
    for (size_t i = 0; i < kr.px.size(); ++i) EXPECT_EQ(11 * (1 + i % 3), kr.px[i]);
    Dataset ds = synth(2, 2, 4, 4, 1);
    ds.images = {0, 2, 10, 20, 4, 6, 30, 40, 100, 100, 7, 7, 100, 100, 7, 9,
                 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    resize_dataset(ds, 2, 2);
    EXPECT_EQ(std::vector<uint8_t>({3, 25, 100, 8, 0, 0, 0, 0}), ds.images);
}

TEST(DatasetSplit, FractionsAreStratifiedDisjointAndDeterministic) {
    std::vector<int32_t> labels;
    for (int i = 0; i < 500; ++i) labels.push_back((i * 7) % 10);
    auto parts = split_fractions(labels, 10, {0.8, 0.1, 0.1}, 42);
    ASSERT_EQ(3u, parts.size());
    EXPECT_EQ(400u, parts[0].size());
    EXPECT_EQ(50u, parts[1].size());
    EXPECT_EQ(50u, parts[2].size());
    std::set<int64_t> all;
    for (const auto& p : parts) {
        std::vector<int> per(10, 0);
        for (int64_t i : p) {
            ++per[size_t(labels[size_t(i)])];
            all.insert(i);
        }
        for (int c = 0; c < 10; ++c) EXPECT_EQ(int(p.size() / 10), per[size_t(c)]);
    }
    EXPECT_EQ(500u, all.size());
    EXPECT_EQ(parts, split_fractions(labels, 10, {0.8, 0.1, 0.1}, 42));
    EXPECT_NE(parts, split_fractions(labels, 10, {0.8, 0.1, 0.1}, 43));
    EXPECT_NE(std::string::npos, error_of([&] { split_fractions(labels, 10, {0.5, 0.2}, 1); }).find("sum"));
}

TEST(DatasetSplit, CountsAreExactAndProportional) {
    std::vector<int32_t> labels;
    for (int c = 0; c < 3; ++c)
        for (int i = 0; i < (c + 1) * 100; ++i) labels.push_back(c);  // 100, 200, 300
    auto parts = split_counts(labels, 3, {301, 150}, 7);
    EXPECT_EQ(301u, parts[0].size());
    EXPECT_EQ(150u, parts[1].size());
    std::vector<int> per(3, 0);
    for (int64_t i : parts[1]) ++per[size_t(labels[size_t(i)])];
    EXPECT_EQ(std::vector<int>({25, 50, 75}), per);
    std::set<int64_t> all(parts[0].begin(), parts[0].end());
    all.insert(parts[1].begin(), parts[1].end());
    EXPECT_EQ(451u, all.size());
    EXPECT_EQ(parts, split_counts(labels, 3, {301, 150}, 7));
    EXPECT_NE(std::string::npos, error_of([&] { split_counts(labels, 3, {500, 101}, 7); }).find("601"));
    // A subset keeps classes and copies the right images.
    Dataset ds = synth(6, 3, 1, 1, 1);
    Dataset s = subset(ds, {4, 1});
    EXPECT_EQ(std::vector<int32_t>({1, 1}), s.labels);
    EXPECT_EQ(ds.image(4)[0], s.image(0)[0]);
    EXPECT_EQ(ds.class_names, s.class_names);
}

TEST(DatasetJpeg, DecodeConvertAndRejectCorrupt) {
    TempDir t;
    Image rgb{8, 16, 3, {}};
    for (int i = 0; i < 8 * 16; ++i) rgb.px.insert(rgb.px.end(), {200, 100, 50});
    auto bytes = jpeg_bytes(rgb);
    Image a = decode_jpeg(bytes, "x.jpg");
    EXPECT_EQ(3, a.c);
    EXPECT_EQ(8, a.h);
    EXPECT_EQ(16, a.w);
    EXPECT_NEAR(200, a.px[0], 3);
    EXPECT_NEAR(100, a.px[1], 3);
    EXPECT_NEAR(50, a.px[2], 3);
    Image g = decode_jpeg(bytes, "x.jpg", 1);
    EXPECT_EQ(1, g.c);
    EXPECT_NEAR(0.299 * 200 + 0.587 * 100 + 0.114 * 50, g.px[5], 3);
    spit(t / "ok.jpg", bytes);
    EXPECT_EQ(3, load_image(t / "ok.jpg").c);
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + long(bytes.size() / 2));
    EXPECT_NE(std::string::npos, error_of([&] { decode_jpeg(cut, "cut.jpg"); }).find("cut.jpg: "));
    std::vector<uint8_t> junk = {0xFF, 0xD8, 0xFF, 0x00, 0x01, 0x02};
    EXPECT_NE(std::string::npos, error_of([&] { decode_jpeg(junk, "junk.jpg"); }).find("junk.jpg: bad JPEG"));
    EXPECT_EQ("x.png: bad PNG: Not a PNG file", error_of([&] { decode_png({1, 2, 3, 4, 5, 6, 7, 8}, "x.png"); }));
}
