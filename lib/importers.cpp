// importers.cpp — IDX, grid-sheet and folder-per-class importers (declared in image_io.h).
#include "common.h"
#include "image_io.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sys/stat.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace ufo {

namespace {

std::string shown(const std::string& path) { return path == "-" ? "<stdin>" : path; }

// gzread passes plain files through unchanged, so one reader handles .gz and raw IDX.
std::vector<uint8_t> read_maybe_gzip(const std::string& path) {
    gzFile gz;
    if (path == "-") {
        gz = gzdopen(::dup(STDIN_FILENO), "rb");
    } else {
        struct stat st {};
        if (::stat(path.c_str(), &st) != 0) fail(path, errno == ENOENT || errno == ENOTDIR ? "no such file" : std::strerror(errno));
        if (S_ISDIR(st.st_mode)) fail(path, "is a directory");
        gz = gzopen(path.c_str(), "rb");
    }
    if (!gz) fail(shown(path), "cannot open");
    std::vector<uint8_t> bytes;
    std::vector<uint8_t> buf(1 << 20);
    int n;
    while ((n = gzread(gz, buf.data(), unsigned(buf.size()))) > 0) bytes.insert(bytes.end(), buf.begin(), buf.begin() + n);
    int errnum = 0;
    std::string msg = gzerror(gz, &errnum);
    gzclose(gz);
    if (n < 0 || (errnum != Z_OK && errnum != Z_STREAM_END)) fail(shown(path), "corrupt or truncated gzip data (" + msg + ")");
    return bytes;
}

uint32_t be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }

struct Idx {
    std::vector<uint32_t> dims;
    std::vector<uint8_t> bytes;  // the whole file; data starts at offset()
    size_t offset() const { return 4 + 4 * dims.size(); }
};

Idx parse_idx(const std::string& path, size_t want_rank, const char* what) {
    Idx idx;
    idx.bytes = read_maybe_gzip(path);
    const std::string name = shown(path);
    const auto& b = idx.bytes;
    if (b.size() < 4 || b[0] != 0 || b[1] != 0) fail(name, "not an IDX file (bad magic number)");
    if (b[2] != 0x08) {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02X", b[2]);
        fail(name, std::string("IDX element type ") + hex + " is not supported (need unsigned byte, 0x08)");
    }
    if (b[3] != want_rank)
        fail(name, "IDX file has " + std::to_string(b[3]) + " dimensions, expected " + std::to_string(want_rank) + " (" + what + ")");
    if (b.size() < 4 + 4 * want_rank) fail(name, "truncated IDX header");
    size_t items = 1;
    for (size_t d = 0; d < want_rank; ++d) {
        idx.dims.push_back(be32(b.data() + 4 + 4 * d));
        items *= idx.dims.back();
    }
    size_t have = b.size() - idx.offset();
    if (have < items) fail(name, "truncated: header promises " + std::to_string(items) + " bytes of data, file has " + std::to_string(have));
    if (have > items) fail(name, std::to_string(have - items) + " unexpected bytes after the IDX data");
    return idx;
}

std::vector<std::string> default_names(int k) {
    std::vector<std::string> names;
    for (int i = 0; i < k; ++i) names.push_back(std::to_string(i));
    return names;
}

void check_labels(const std::string& name, const std::vector<int32_t>& labels, int k) {
    for (size_t i = 0; i < labels.size(); ++i)
        if (labels[i] < 0 || labels[i] >= k)
            fail(name, "label " + std::to_string(labels[i]) + " at index " + std::to_string(i) +
                           " is out of range [0," + std::to_string(k) + ")");
}

std::string lower(std::string s) {
    for (auto& ch : s) ch = char(std::tolower(static_cast<unsigned char>(ch)));
    return s;
}

}  // namespace

Dataset import_idx(const std::string& images, const std::string& labels, const std::vector<std::string>& class_names) {
    if (images == "-" && labels == "-") fail("<stdin>", "only one of images and labels can be read from stdin");
    Idx im = parse_idx(images, 3, "an images file");
    Idx lb = parse_idx(labels, 1, "a labels file");
    if (im.dims[0] != lb.dims[0])
        fail(shown(labels), std::to_string(lb.dims[0]) + " labels, but " + shown(images) + " has " +
                                std::to_string(im.dims[0]) + " images");
    if (im.dims[0] == 0) fail(shown(images), "dataset is empty (0 images)");
    if (im.dims[1] == 0 || im.dims[2] == 0) fail(shown(images), "images have zero size");
    Dataset ds;
    ds.n = im.dims[0];
    ds.h = int(im.dims[1]);
    ds.w = int(im.dims[2]);
    ds.c = 1;
    ds.images.assign(im.bytes.begin() + long(im.offset()), im.bytes.end());
    ds.labels.assign(lb.bytes.begin() + long(lb.offset()), lb.bytes.end());
    int k = 0;
    for (int32_t l : ds.labels) k = std::max(k, l + 1);
    ds.class_names = class_names.empty() ? default_names(k) : class_names;
    check_labels(shown(labels), ds.labels, ds.num_classes());
    ds.source = "idx:" + images + "," + labels;
    return ds;
}

Dataset import_grid(const std::string& sheet, int cell, int per_class, int channels,
                    const std::vector<std::string>& class_names) {
    const std::string name = shown(sheet);
    if (cell <= 0) fail(name, "--cell must be positive");
    if (per_class <= 0) fail(name, "--per-class must be positive");
    Image img = load_image(sheet, channels);
    if (img.h % cell || img.w % cell)
        fail(name, "sheet is " + std::to_string(img.w) + "x" + std::to_string(img.h) +
                       " px, not a whole number of " + std::to_string(cell) + "-px cells");
    const int rows = img.h / cell, cols = img.w / cell;
    const int64_t cells = int64_t(rows) * cols;
    if (cells % per_class)
        fail(name, std::to_string(cells) + " cells are not a multiple of --per-class " + std::to_string(per_class));
    const int k = int(cells / per_class);
    if (!class_names.empty() && int(class_names.size()) != k)
        fail(name, std::to_string(class_names.size()) + " class names given, but the sheet holds " +
                       std::to_string(k) + " classes of " + std::to_string(per_class));
    Dataset ds;
    ds.n = cells;
    ds.h = ds.w = cell;
    ds.c = img.c;
    ds.images.resize(size_t(cells) * ds.image_size());
    ds.labels.resize(size_t(cells));
    const size_t row_bytes = size_t(cell) * img.c;
    for (int64_t i = 0; i < cells; ++i) {
        int r = int(i / cols), q = int(i % cols);
        for (int y = 0; y < cell; ++y)
            std::memcpy(ds.images.data() + size_t(i) * ds.image_size() + y * row_bytes,
                        img.px.data() + (size_t(r * cell + y) * img.w + size_t(q) * cell) * img.c, row_bytes);
        ds.labels[size_t(i)] = int32_t(i / per_class);
    }
    ds.class_names = class_names.empty() ? default_names(k) : class_names;
    ds.source = "grid:" + sheet;
    return ds;
}

Dataset import_folder(const std::string& dir, int channels, int resize_h, int resize_w) {
    std::error_code ec;
    if (!fs::exists(dir, ec)) fail(dir, "no such directory");
    if (!fs::is_directory(dir, ec)) fail(dir, "not a directory");
    std::vector<std::string> classes;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        std::string n = e.path().filename().string();
        if (e.is_directory() && !n.empty() && n[0] != '.') classes.push_back(n);
    }
    if (ec) fail(dir, ec.message());
    std::sort(classes.begin(), classes.end());
    if (classes.empty()) fail(dir, "no class sub-directories");
    Dataset ds;
    ds.class_names = classes;
    ds.source = "folder:" + dir;
    std::string first;
    for (size_t k = 0; k < classes.size(); ++k) {
        const fs::path cdir = fs::path(dir) / classes[k];
        std::vector<std::string> files;
        for (const auto& e : fs::directory_iterator(cdir, ec)) {
            std::string ext = lower(e.path().extension().string());
            if (e.is_regular_file() && (ext == ".png" || ext == ".jpg" || ext == ".jpeg")) files.push_back(e.path().string());
        }
        if (ec) fail(cdir.string(), ec.message());
        if (files.empty()) fail(cdir.string(), "no PNG or JPEG images");
        std::sort(files.begin(), files.end());
        for (const auto& file : files) {
            Image img = load_image(file, ds.c ? ds.c : channels);
            if (resize_h > 0 && resize_w > 0) img = resize(img, resize_h, resize_w);
            if (ds.n == 0) {
                ds.h = img.h;
                ds.w = img.w;
                ds.c = img.c;
                first = file;
            } else if (img.h != ds.h || img.w != ds.w) {
                fail(file, "image is " + std::to_string(img.h) + "x" + std::to_string(img.w) + ", but " + first +
                               " is " + std::to_string(ds.h) + "x" + std::to_string(ds.w) + " (use --resize HxW)");
            }
            ds.images.insert(ds.images.end(), img.px.begin(), img.px.end());
            ds.labels.push_back(int32_t(k));
            ++ds.n;
        }
    }
    return ds;
}

}  // namespace ufo
