// image_io.h — getting pictures into a Dataset: IDX (MNIST-style), PNG/JPEG files,
// a grid sheet of equal cells, a folder per class, and resizing.
#pragma once
#include "io/dataset.h"

#include <cstdint>
#include <string>
#include <vector>

namespace ufo {

struct Image {
    int h = 0, w = 0, c = 0;
    std::vector<uint8_t> px;  // [h,w,c]
};

// Whole file ("-" = stdin); "<path>: no such file" etc.
std::vector<uint8_t> read_file_bytes(const std::string& path);

// channels: 1 (gray) or 3 (RGB) converts; 0 keeps what the file has (gray stays 1,
// colour becomes 3). Alpha is composited onto black. name is used in error messages.
Image decode_png(const std::vector<uint8_t>& bytes, const std::string& name, int channels = 0);
Image decode_jpeg(const std::vector<uint8_t>& bytes, const std::string& name, int channels = 0);
// Picks PNG or JPEG by signature.
Image load_image(const std::string& path, int channels = 0);
// 1- or 3-channel 8-bit PNG, written atomically.
void write_png(const std::string& path, const Image& img);

// Bilinear (half-pixel centres, edges clamped) when enlarging an axis, area averaging
// when shrinking it; each axis is handled separately, so h and w may go different ways.
Image resize(const Image& img, int h, int w);
void resize_dataset(Dataset& ds, int h, int w);

// IDX: images idx3 uint8 [N,H,W] (C=1) + labels idx1 uint8 [N]; gzip or plain; "-" = stdin.
// Without class_names the classes are "0".."max label".
Dataset import_idx(const std::string& images, const std::string& labels,
                   const std::vector<std::string>& class_names = {});
// A sheet of equal square cells read row-major; cells [k*per_class, (k+1)*per_class) are class k.
Dataset import_grid(const std::string& sheet, int cell, int per_class, int channels = 0,
                    const std::vector<std::string>& class_names = {});
// dir/<class>/<image>.{png,jpg,jpeg}: classes are the sorted sub-directory names, files
// sorted by name. All images must share one size unless resize_h/resize_w (> 0) are given.
Dataset import_folder(const std::string& dir, int channels = 0, int resize_h = 0, int resize_w = 0);

}  // namespace ufo
