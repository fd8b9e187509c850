// image_io.cpp — PNG/JPEG decoding (libpng simplified API, libjpeg) and resizing.
#include "io/image_io.h"

#include "io/atomic_file.h"
#include "base/common.h"
#include "base/bounds.h"

#include <png.h>
#include <jpeglib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <memory>
#include <sys/stat.h>

namespace ufo {

std::vector<uint8_t> read_file_bytes(const std::string& path) {
    std::FILE* in = stdin;
    if (path != "-") {
        struct stat st {};
        if (::stat(path.c_str(), &st) != 0) fail(path, errno == ENOENT || errno == ENOTDIR ? "no such file" : std::strerror(errno));
        if (S_ISDIR(st.st_mode)) fail(path, "is a directory");
        in = std::fopen(path.c_str(), "rb");
        if (!in) fail(path, std::strerror(errno));
    }
    std::vector<uint8_t> bytes;
    uint8_t buf[1 << 16];
    size_t n;
    bool too_big = false;
    while (!too_big && (n = std::fread(buf, 1, sizeof buf, in)) > 0) {
        bytes.insert(bytes.end(), buf, buf + n);
        too_big = int64_t(bytes.size()) > bounds::kMaxEncodedImageBytes;
    }
    bool bad = std::ferror(in);
    if (in != stdin) std::fclose(in);
    const std::string name = path == "-" ? "<stdin>" : path;
    if (too_big) fail(name, "image file is larger than the limit of " + bounds::human_bytes(double(bounds::kMaxEncodedImageBytes)));
    if (bad) fail(name, "read error");
    return bytes;
}

// Header dimensions are checked in 64 bits before any pixel buffer exists.
static void check_image_size(const std::string& name, const char* kind, int64_t h, int64_t w) {
    if (h <= 0 || w <= 0) fail(name, std::string("bad ") + kind + ": empty image");
    if (h > bounds::kMaxImageSide || w > bounds::kMaxImageSide || h * w > bounds::kMaxImagePixels)
        fail(name, std::string(kind) + " is " + std::to_string(w) + "x" + std::to_string(h) +
                       " pixels, above the limit of " + std::to_string(bounds::kMaxImageSide) + " per side and " +
                       std::to_string(bounds::kMaxImagePixels) + " in all");
}

static void check_channels(const std::string& name, int channels) {
    if (channels != 0 && channels != 1 && channels != 3)
        fail(name, "cannot convert to " + std::to_string(channels) + " channels (use 1 or 3)");
}

// The chunks libpng gets to see: every chunk's declared length must fit in the file (libpng
// allocates a chunk's declared size before it finds the file too short), and text, ICC and
// unknown ancillary chunks are dropped (their zlib streams can expand without bound, and the
// pixels do not depend on them). Critical chunks and the colour-space ones are kept in order.
static std::vector<uint8_t> png_pixel_chunks(const std::vector<uint8_t>& bytes, const std::string& name) {
    static const char* keep[] = {"IHDR", "PLTE", "IDAT", "IEND", "tRNS", "gAMA", "cHRM", "sRGB", "sBIT", "bKGD"};
    if (bytes.size() < 8) fail(name, "bad PNG: too short");
    std::vector<uint8_t> out(bytes.begin(), bytes.begin() + 8);
    size_t pos = 8;
    while (pos + 12 <= bytes.size()) {
        const uint32_t len = uint32_t(bytes[pos]) << 24 | uint32_t(bytes[pos + 1]) << 16 | uint32_t(bytes[pos + 2]) << 8 | bytes[pos + 3];
        if (len > 0x7fffffffu || len > bytes.size() - pos - 12)
            fail(name, "bad PNG: a chunk claims " + std::to_string(len) + " bytes, more than the file holds");
        const char* type = reinterpret_cast<const char*>(bytes.data() + pos + 4);
        bool kept = false;
        for (const char* k : keep) kept = kept || std::memcmp(type, k, 4) == 0;
        if (kept) out.insert(out.end(), bytes.begin() + long(pos), bytes.begin() + long(pos + 12 + len));
        pos += 12 + size_t(len);
        if (std::memcmp(type, "IEND", 4) == 0) break;
    }
    return out;
}

Image decode_png(const std::vector<uint8_t>& raw, const std::string& name, int channels) {
    check_channels(name, channels);
    const std::vector<uint8_t> bytes = png_pixel_chunks(raw, name);
    png_image im;
    std::memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&im, bytes.data(), bytes.size()))
        fail(name, std::string("bad PNG: ") + im.message);
    Image out;
    out.c = channels ? channels : (im.format & PNG_FORMAT_FLAG_COLOR) ? 3 : 1;
    im.format = out.c == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    if (int64_t(im.height) > bounds::kMaxImageSide || int64_t(im.width) > bounds::kMaxImageSide ||
        int64_t(im.height) * int64_t(im.width) > bounds::kMaxImagePixels) {
        png_image_free(&im);
        check_image_size(name, "PNG", int64_t(im.height), int64_t(im.width));
    }
    out.h = int(im.height);
    out.w = int(im.width);
    // zeros: the black that alpha is composited onto
    out.px.assign(size_t(out.h) * size_t(out.w) * size_t(out.c), 0);
    if (!png_image_finish_read(&im, nullptr, out.px.data(), 0, nullptr)) {
        std::string msg = im.message;
        png_image_free(&im);
        fail(name, "bad PNG: " + msg);
    }
    return out;
}

namespace {

struct JpegErr {
    jpeg_error_mgr mgr;
    std::jmp_buf jump;
    char last[JMSG_LENGTH_MAX] = "";
    int warnings = 0;
    bool too_large = false;  // the header's size broke a limit (the message says so itself)
};

void jpeg_error_exit(j_common_ptr cinfo) {
    auto* e = reinterpret_cast<JpegErr*>(cinfo->err);
    cinfo->err->format_message(cinfo, e->last);
    std::longjmp(e->jump, 1);
}

// libjpeg prints warnings (e.g. premature end of data) to stderr; we collect them instead.
void jpeg_emit(j_common_ptr cinfo, int level) {
    auto* e = reinterpret_cast<JpegErr*>(cinfo->err);
    if (level < 0) {
        ++e->warnings;
        if (e->warnings == 1) cinfo->err->format_message(cinfo, e->last);
    }
}

}  // namespace

Image decode_jpeg(const std::vector<uint8_t>& bytes, const std::string& name, int channels) {
    check_channels(name, channels);
    // Everything touched after setjmp lives on the heap, so longjmp leaves no stale locals.
    auto err = std::make_unique<JpegErr>();
    auto cinfo = std::make_unique<jpeg_decompress_struct>();
    auto out = std::make_unique<Image>();
    cinfo->err = jpeg_std_error(&err->mgr);
    err->mgr.error_exit = jpeg_error_exit;
    err->mgr.emit_message = jpeg_emit;
    if (setjmp(err->jump)) {
        jpeg_destroy_decompress(cinfo.get());
        fail(name, err->too_large ? std::string(err->last) : std::string("bad JPEG: ") + err->last);
    }
    jpeg_create_decompress(cinfo.get());
    jpeg_mem_src(cinfo.get(), bytes.data(), static_cast<unsigned long>(bytes.size()));
    jpeg_read_header(cinfo.get(), TRUE);
    if (int64_t(cinfo->image_height) > bounds::kMaxImageSide || int64_t(cinfo->image_width) > bounds::kMaxImageSide ||
        int64_t(cinfo->image_height) * int64_t(cinfo->image_width) > bounds::kMaxImagePixels) {
        std::snprintf(err->last, sizeof err->last, "JPEG is %ux%u pixels, above the limit of %lld per side and %lld in all",
                      unsigned(cinfo->image_width), unsigned(cinfo->image_height), (long long)bounds::kMaxImageSide,
                      (long long)bounds::kMaxImagePixels);
        err->too_large = true;
        std::longjmp(err->jump, 1);
    }
    // libjpeg keeps a whole progressive image's coefficients in memory; cap its pool so a
    // hostile header cannot make it allocate more than a maximal image needs.
    cinfo->mem->max_memory_to_use = long(bounds::kMaxImagePixels) * 3 * 2 + (long(64) << 20);
    int stored = cinfo->num_components == 1 ? 1 : 3;
    if (cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK) {
        std::strcpy(err->last, "CMYK images are not supported");
        std::longjmp(err->jump, 1);
    }
    out->c = channels ? channels : stored;
    cinfo->out_color_space = out->c == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_start_decompress(cinfo.get());
    out->h = int(cinfo->output_height);
    out->w = int(cinfo->output_width);
    out->px.resize(size_t(out->h) * out->w * out->c);
    while (cinfo->output_scanline < cinfo->output_height) {
        JSAMPROW row = out->px.data() + size_t(cinfo->output_scanline) * out->w * out->c;
        jpeg_read_scanlines(cinfo.get(), &row, 1);
    }
    jpeg_finish_decompress(cinfo.get());
    jpeg_destroy_decompress(cinfo.get());
    if (err->warnings) fail(name, std::string("corrupt JPEG data: ") + err->last);
    return std::move(*out);
}

Image load_image(const std::string& path, int channels) {
    auto bytes = read_file_bytes(path);
    const std::string name = path == "-" ? "<stdin>" : path;
    static const uint8_t png_sig[4] = {0x89, 'P', 'N', 'G'};
    if (bytes.size() >= 4 && std::memcmp(bytes.data(), png_sig, 4) == 0) return decode_png(bytes, name, channels);
    if (bytes.size() >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF)
        return decode_jpeg(bytes, name, channels);
    fail(name, "not a PNG or JPEG image");
}

void write_png(const std::string& path, const Image& img) {
    if (img.c != 1 && img.c != 3) fail(path, "PNG output needs 1 or 3 channels");
    AtomicPath out(path);
    png_image im;
    std::memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = png_uint_32(img.w);
    im.height = png_uint_32(img.h);
    im.format = img.c == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    if (!png_image_write_to_file(&im, out.tmp().c_str(), 0, img.px.data(), 0, nullptr))
        fail(path, std::string("cannot write PNG: ") + im.message);
    out.commit();
}

namespace {

struct Tap {
    int src;
    float w;
};

std::vector<std::vector<Tap>> axis_taps(int in, int out) {
    std::vector<std::vector<Tap>> taps(static_cast<size_t>(out));
    double scale = double(in) / out;
    for (int o = 0; o < out; ++o) {
        auto& t = taps[size_t(o)];
        if (scale > 1) {
            // Area: average the source interval [o*scale, (o+1)*scale), partial pixels weighted.
            double a = o * scale, b = a + scale;
            for (int s = int(std::floor(a)); s < int(std::ceil(b)) && s < in; ++s) {
                double overlap = std::min(b, s + 1.0) - std::max(a, double(s));
                if (overlap > 1e-9) t.push_back({s, float(overlap / scale)});
            }
        } else {
            double x = std::clamp((o + 0.5) * scale - 0.5, 0.0, double(in - 1));
            int x0 = int(std::floor(x)), x1 = std::min(x0 + 1, in - 1);
            float f = float(x - x0);
            t.push_back({x0, 1 - f});
            if (f > 0) t.push_back({x1, f});
        }
    }
    return taps;
}

}  // namespace

Image resize(const Image& img, int h, int w) {
    if (h <= 0 || w <= 0) fail("", "resize target " + std::to_string(h) + "x" + std::to_string(w) + " must be positive");
    if (h == img.h && w == img.w) return img;
    auto tx = axis_taps(img.w, w), ty = axis_taps(img.h, h);
    const int c = img.c;
    std::vector<float> tmp(size_t(img.h) * w * c, 0.f);  // [img.h, w, c]
    for (int y = 0; y < img.h; ++y)
        for (int x = 0; x < w; ++x)
            for (const Tap& t : tx[size_t(x)])
                for (int k = 0; k < c; ++k)
                    tmp[(size_t(y) * w + x) * c + k] += t.w * img.px[(size_t(y) * img.w + t.src) * c + k];
    Image out{h, w, c, std::vector<uint8_t>(size_t(h) * w * c)};
    std::vector<float> row(size_t(w) * c);
    for (int y = 0; y < h; ++y) {
        std::fill(row.begin(), row.end(), 0.f);
        for (const Tap& t : ty[size_t(y)])
            for (size_t i = 0; i < row.size(); ++i) row[i] += t.w * tmp[size_t(t.src) * w * c + i];
        for (size_t i = 0; i < row.size(); ++i)
            out.px[size_t(y) * w * c + i] = uint8_t(std::clamp(std::lround(row[i]), 0L, 255L));
    }
    return out;
}

void resize_dataset(Dataset& ds, int h, int w) {
    if (h == ds.h && w == ds.w) return;
    std::vector<uint8_t> images(size_t(ds.n) * h * w * ds.c);
    Image src{ds.h, ds.w, ds.c, {}};
    const size_t out_size = size_t(h) * w * ds.c;
#pragma omp parallel for firstprivate(src) schedule(static)
    for (int64_t i = 0; i < ds.n; ++i) {
        src.px.assign(ds.image(i), ds.image(i) + ds.image_size());
        Image r = resize(src, h, w);
        std::memcpy(images.data() + size_t(i) * out_size, r.px.data(), out_size);
    }
    ds.images = std::move(images);
    ds.h = h;
    ds.w = w;
}

}  // namespace ufo
