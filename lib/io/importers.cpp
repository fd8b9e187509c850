// importers.cpp — IDX, grid-sheet and folder-per-class importers (declared in image_io.h).
#include "base/common.h"
#include "io/image_io.h"
#include "base/bounds.h"

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

// Owns a zlib reader; gzread passes plain files through unchanged, so one reader handles
// .gz and raw IDX.
struct GzFile {
    gzFile gz = nullptr;
    std::string name;
    GzFile(const std::string& path) : name(shown(path)) {
        if (path == "-") {
            gz = gzdopen(::dup(STDIN_FILENO), "rb");
        } else {
            struct stat st {};
            if (::stat(path.c_str(), &st) != 0) fail(path, errno == ENOENT || errno == ENOTDIR ? "no such file" : std::strerror(errno));
            if (S_ISDIR(st.st_mode)) fail(path, "is a directory");
            gz = gzopen(path.c_str(), "rb");
        }
        if (!gz) fail(name, "cannot open");
    }
    ~GzFile() { if (gz) gzclose(gz); }
    GzFile(const GzFile&) = delete;
    GzFile& operator=(const GzFile&) = delete;
    // Reads up to n bytes; returns how many (fewer only at the end of the data).
    size_t read(uint8_t* out, size_t n) {
        size_t got = 0;
        while (got < n) {
            const unsigned want = unsigned(std::min<size_t>(n - got, size_t(1) << 30));
            const int r = gzread(gz, out + got, want);
            if (r < 0) {
                int errnum = 0;
                fail(name, std::string("corrupt or truncated gzip data (") + gzerror(gz, &errnum) + ")");
            }
            if (r == 0) {
                int errnum = 0;
                const std::string msg = gzerror(gz, &errnum);
                if (errnum != Z_OK && errnum != Z_STREAM_END) fail(name, "corrupt or truncated gzip data (" + msg + ")");
                break;
            }
            got += size_t(r);
        }
        return got;
    }
};

uint32_t be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }

struct Idx {
    std::vector<int64_t> dims;
    std::vector<uint8_t> data;   // the items, after the header
};

// Reads the header first and checks every dimension (in 64 bits, against limits.h) before the
// data buffer exists; then reads exactly the promised bytes, so neither a forged header nor a
// gzip bomb can make it allocate more than a valid file of that shape needs.
Idx parse_idx(const std::string& path, size_t want_rank, const char* what) {
    GzFile in(path);
    const std::string& name = in.name;
    uint8_t head[4];
    size_t got = in.read(head, 4);
    if (got < 4 || head[0] != 0 || head[1] != 0) fail(name, "not an IDX file (bad magic number)");
    if (head[2] != 0x08) {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02X", head[2]);
        fail(name, std::string("IDX element type ") + hex + " is not supported (need unsigned byte, 0x08)");
    }
    if (head[3] != want_rank)
        fail(name, "IDX file has " + std::to_string(head[3]) + " dimensions, expected " + std::to_string(want_rank) + " (" + what + ")");
    std::vector<uint8_t> dims(4 * want_rank);
    if (in.read(dims.data(), dims.size()) < dims.size()) fail(name, "truncated IDX header");
    Idx idx;
    for (size_t d = 0; d < want_rank; ++d) idx.dims.push_back(int64_t(be32(dims.data() + 4 * d)));
    bounds::check_range(name, "the IDX item count", idx.dims[0], 0, bounds::kMaxImages);
    if (want_rank == 3) {
        bounds::check_range(name, "the IDX image height", idx.dims[1], 0, bounds::kMaxImageSide);
        bounds::check_range(name, "the IDX image width", idx.dims[2], 0, bounds::kMaxImageSide);
        bounds::check_range(name, "the IDX image size (pixels)", idx.dims[1] * idx.dims[2], 0, bounds::kMaxImagePixels);
    }
    int64_t items = 0;
    if (!bounds::product(idx.dims, &items)) fail(name, "IDX dimensions are too large");
    bounds::check_memory(name, "the IDX data", items);
    // Grown as the bytes arrive, so a header that promises more than the file holds fails at
    // the end of the real data instead of first allocating (and zeroing) the promised size.
    size_t have = 0;
    while (int64_t(have) < items) {
        const size_t step = size_t(std::min<int64_t>(items - int64_t(have), int64_t(16) << 20));
        bounds::resize_or_fail(idx.data, int64_t(have + step), name, "the IDX data");
        const size_t got_now = in.read(idx.data.data() + have, step);
        have += got_now;
        if (got_now < step) break;
    }
    if (int64_t(have) < items)
        fail(name, "truncated: header promises " + std::to_string(items) + " bytes of data, file has " + std::to_string(have));
    uint8_t extra[1 << 12];
    size_t more = 0, n;
    while ((n = in.read(extra, sizeof extra)) > 0 && more < (size_t(1) << 20)) more += n;
    if (more > 0)
        fail(name, (more >= (size_t(1) << 20) ? "more than " : "") + std::to_string(more) + " unexpected bytes after the IDX data");
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
    ds.images = std::move(im.data);
    bounds::resize_or_fail(ds.labels, ds.n, shown(labels), "the labels");
    std::copy(lb.data.begin(), lb.data.end(), ds.labels.begin());
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
