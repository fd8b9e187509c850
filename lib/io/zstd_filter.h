// zstd_filter.h — the HDF5 filter for Zstandard, id 32015 (formats/hdf5-zstd.md): one filter
// function, compiled into libufo (registered in-process by h5::register_zstd) and into the HDF5
// plugin libufo_h5zstd.so (plugins/h5z_zstd.cpp) that lets h5dump, h5py and any other HDF5
// program read ufo's compressed files. It depends on HDF5 and libzstd only.
#pragma once
#include <hdf5.h>

#include <cstddef>

namespace ufo::h5 {

inline constexpr H5Z_filter_t kZstdFilter = 32015;

// The filter's class (H5Zregister, H5PLget_plugin_info): encode and decode.
extern const H5Z_class2_t kZstdClass;

// The exact size every chunk decoded by this thread must have until it is reset with 0:
// a filtered chunk is always a whole chunk, and HDF5 copies a whole chunk out of whatever the
// filter returns, so a frame that decodes to any other size (a forged or truncated header)
// must fail. Unknown (0, and always so in the plugin): frames may decode to at most 1 GiB.
void set_expected_chunk_bytes(size_t n);

}  // namespace ufo::h5
