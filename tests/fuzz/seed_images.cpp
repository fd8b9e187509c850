// seed_images — writes the seed corpora of fuzz_png and fuzz_jpeg: small images in most of the
// encodings the decoders meet (PNG colour types, bit depths, palette + tRNS, Adam7; JPEG gray/RGB,
// chroma subsampling, progressive, restart markers, arithmetic coding).
// Usage: seed_images PNG_DIR JPEG_DIR. Built and run by tests/fuzz/make-seeds (plain clang++).
#include <png.h>
#include <jpeglib.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

void die(const std::string& what) {
    std::fprintf(stderr, "seed_images: %s\n", what.c_str());
    std::exit(1);
}

// bit_depth/color_type as png_set_IHDR; samples are a simple gradient.
void png(const std::string& path, int w, int h, int bit_depth, int color_type, bool interlace) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) die("cannot write " + path);
    png_structp p = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
    png_infop info = png_create_info_struct(p);
    if (setjmp(png_jmpbuf(p))) die("libpng failed on " + path);
    png_init_io(p, f);
    png_set_IHDR(p, info, png_uint_32(w), png_uint_32(h), bit_depth, color_type,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    int channels = 1;
    if (color_type == PNG_COLOR_TYPE_PALETTE) {
        png_color pal[4] = {{0, 0, 0}, {255, 0, 0}, {0, 255, 0}, {0, 0, 255}};
        png_set_PLTE(p, info, pal, 4);
        png_byte alpha[2] = {0, 128};
        png_set_tRNS(p, info, alpha, 2, nullptr);
    } else if (color_type == PNG_COLOR_TYPE_GRAY_ALPHA) channels = 2;
    else if (color_type == PNG_COLOR_TYPE_RGB) channels = 3;
    else if (color_type == PNG_COLOR_TYPE_RGB_ALPHA) channels = 4;
    png_text text;
    text.compression = PNG_TEXT_COMPRESSION_NONE;
    text.key = const_cast<char*>("Comment");
    text.text = const_cast<char*>("ufo fuzz seed");
    png_set_text(p, info, &text, 1);
    png_write_info(p, info);
    const size_t row_bytes = (size_t(w) * channels * bit_depth + 7) / 8;
    std::vector<std::vector<png_byte>> rows(h, std::vector<png_byte>(row_bytes));
    std::vector<png_bytep> ptrs;
    for (int y = 0; y < h; ++y) {
        for (size_t i = 0; i < row_bytes; ++i) rows[y][i] = png_byte((y * 31 + i * 17) & (color_type == PNG_COLOR_TYPE_PALETTE && bit_depth == 8 ? 3 : 0xff));
        ptrs.push_back(rows[y].data());
    }
    png_write_image(p, ptrs.data());
    png_write_end(p, info);
    png_destroy_write_struct(&p, &info);
    std::fclose(f);
}

void jpeg(const std::string& path, int w, int h, int comps, int h_samp, bool progressive, int restart, bool arith) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) die("cannot write " + path);
    jpeg_compress_struct c;
    jpeg_error_mgr err;
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, f);
    c.image_width = JDIMENSION(w);
    c.image_height = JDIMENSION(h);
    c.input_components = comps;
    c.in_color_space = comps == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 75, TRUE);
    if (comps == 3) c.comp_info[0].h_samp_factor = c.comp_info[0].v_samp_factor = h_samp;
    if (progressive) jpeg_simple_progression(&c);
    c.restart_interval = unsigned(restart);
    c.arith_code = arith;
    jpeg_start_compress(&c, TRUE);
    std::vector<JSAMPLE> row(size_t(w) * comps);
    while (c.next_scanline < c.image_height) {
        for (size_t i = 0; i < row.size(); ++i) row[i] = JSAMPLE((c.next_scanline * 29 + i * 13) & 0xff);
        JSAMPROW r = row.data();
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    std::fclose(f);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) die("usage: seed_images PNG_DIR JPEG_DIR");
    const std::string P = std::string(argv[1]) + "/", J = std::string(argv[2]) + "/";
    png(P + "gray8.png", 5, 3, 8, PNG_COLOR_TYPE_GRAY, false);
    png(P + "gray1.png", 9, 2, 1, PNG_COLOR_TYPE_GRAY, false);
    png(P + "gray16.png", 3, 3, 16, PNG_COLOR_TYPE_GRAY, false);
    png(P + "gray-alpha.png", 4, 2, 8, PNG_COLOR_TYPE_GRAY_ALPHA, false);
    png(P + "rgb8.png", 4, 3, 8, PNG_COLOR_TYPE_RGB, false);
    png(P + "rgb16.png", 2, 2, 16, PNG_COLOR_TYPE_RGB, false);
    png(P + "rgba.png", 3, 4, 8, PNG_COLOR_TYPE_RGB_ALPHA, false);
    png(P + "palette-trns.png", 6, 2, 8, PNG_COLOR_TYPE_PALETTE, false);
    png(P + "palette2.png", 7, 3, 2, PNG_COLOR_TYPE_PALETTE, false);
    png(P + "adam7.png", 9, 9, 8, PNG_COLOR_TYPE_RGB, true);
    jpeg(J + "gray.jpg", 8, 8, 1, 1, false, 0, false);
    jpeg(J + "rgb420.jpg", 17, 9, 3, 2, false, 0, false);
    jpeg(J + "rgb444.jpg", 8, 5, 3, 1, false, 0, false);
    jpeg(J + "progressive.jpg", 16, 16, 3, 2, true, 0, false);
    jpeg(J + "restart.jpg", 24, 8, 3, 2, false, 1, false);
    jpeg(J + "arith.jpg", 8, 8, 1, 1, false, 0, true);
    return 0;
}
