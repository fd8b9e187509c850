// h5z_zstd.cpp — HDF5 filter plugin for zstd (filter id 32015), the filter libufo registers
// in-process, made loadable by any HDF5 program: h5dump, h5ls, h5py, netCDF, ... HDF5 loads
// every shared library in the directories of HDF5_PLUGIN_PATH (or its default plugin
// directory) and asks each for its type and filter class through these two functions.
#include "io/zstd_filter.h"

#include <H5PLextern.h>

extern "C" {

H5PL_type_t H5PLget_plugin_type(void) { return H5PL_TYPE_FILTER; }

const void* H5PLget_plugin_info(void) { return &ufo::h5::kZstdClass; }

}
