// fuzz_dataset — load_dataset (lib/io/dataset.h) on valid HDF5 files with hostile contents,
// generated from the input by h5_plan.h (why not raw bytes: see there).
//
// The unmutated plan is a dataset as save_dataset writes it (formats/dataset.md): /images uint8
// [N,H,W,C], /labels int32 [N] in range, class_names/num_classes and the provenance attributes,
// optionally zstd-compressed. Oracle beyond "no crash": an accepted dataset is self-consistent
// (Dataset::validate) and has the shape and class count the file declares.
#include "base/common.h"
#include "io/dataset.h"
#include "fuzz_common.h"
#include "io/h5.h"
#include "h5_plan.h"

#include <cstdint>

namespace {

fuzz::Plan dataset_plan(fuzz::Choices& in) {
    const hsize_t n = 1 + in.below(4), h = 1 + in.below(4), w = 1 + in.below(4);
    const hsize_t c = in.flag() ? 3 : 1;
    const int64_t k = 1 + int64_t(in.below(4));
    const int zstd = in.flag() ? 0 : 3;  // save_dataset's default level is 3
    std::vector<std::string> names;
    for (int64_t i = 0; i < k; ++i) names.push_back("class" + std::to_string(i));

    fuzz::Plan p;
    p.str_attr("/", "format", ufo::kDatasetFormat);
    p.int_attr("/", "format_version", ufo::kDatasetVersion);
    p.list_attr("/", "class_names", names);
    p.int_attr("/", "num_classes", k);
    p.str_attr("/", "source", "idx:a,b");
    p.str_attr("/", "tool", "ufo-data");
    p.str_attr("/", "ufo_version", ufo::kVersion);
    p.str_attr("/", "command_line", "ufo-data import-idx a b -o x.h5");
    p.str_attr("/", "created", "2024-01-01T00:00:00Z");
    p.dset("/images", fuzz::DType::U8, {n, h, w, c});
    p.dset("/labels", fuzz::DType::I32, {n}).modulo = k;
    for (auto& d : p.dsets)
        if (zstd) d.store = fuzz::Store::Zstd, d.zstd_level = zstd;
    return p;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    fuzz::hdf5_init();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::Choices in(data, size);
    fuzz::Plan plan = dataset_plan(in);
    fuzz::mutate_plan(in, plan);
    const bool allow_empty = in.flag();
    const bool via_stdin = in.flag();
    const std::string path = fuzz::scratch("dataset.h5");
    try {
        fuzz::write_plan(plan, path);
    } catch (const ufo::Error& e) {
        fuzz::finding(std::string("generator cannot write its file: ") + e.what());
    }
    fuzz::check_hdf5_handles("writing the plan");

    if (via_stdin) fuzz::stdin_from(path);
    try {
        ufo::Dataset ds = ufo::load_dataset(via_stdin ? "-" : path, allow_empty);
        try {
            ds.validate("accepted dataset", allow_empty);
        } catch (const ufo::Error& e) {
            fuzz::finding(e.what());
        }
        ufo::h5::File f = ufo::h5::File::open_read(path);
        auto shape = ufo::h5::shape(f, "/images");
        if (shape.size() != 4 || hsize_t(ds.n) != shape[0] || hsize_t(ds.h) != shape[1] ||
            hsize_t(ds.w) != shape[2] || hsize_t(ds.c) != shape[3])
            fuzz::finding("accepted /images of shape " + ufo::h5::shape_str(shape) + " as " + std::to_string(ds.n) +
                          "x" + std::to_string(ds.h) + "x" + std::to_string(ds.w) + "x" + std::to_string(ds.c));
        int64_t k = ufo::h5::get_int(f, "/", "num_classes");
        if (k != ds.num_classes())
            fuzz::finding("accepted num_classes=" + std::to_string(k) + " as " + std::to_string(ds.num_classes()));
    } catch (const ufo::Error& e) {
        fuzz::rejected(e);
    }
    fuzz::check_hdf5_handles("load_dataset");
    return 0;
}
