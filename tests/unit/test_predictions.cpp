// The predictions file (formats/predictions.md): what PredictionsWriter writes, load_predictions
// reads back exactly; inconsistent contents are one-line errors naming the file.
#include "io/atomic_file.h"
#include <hdf5.h>
#include "io/predictions.h"
#include "nn/losses.h"
#include "test_util.h"

#include <gtest/gtest.h>

using namespace ufo;

namespace {

Predictions write_and_read(const std::string& path, int n, int k, std::vector<float> logits, bool labels) {
    PredictionsInfo info;
    info.task = "main";
    info.num_classes = k;
    info.input_kind = "dataset";
    info.input = "d.h5";
    info.tool = "test";
    std::vector<float> probs(logits.size());
    softmax_forward(probs.data(), logits.data(), n, k);
    std::vector<int32_t> lab;
    if (labels)
        for (int i = 0; i < n; ++i) lab.push_back(i % k);
    AtomicPath out(path);
    {
        PredictionsWriter w(out, info, n, lab, {});
        w.append(0, 2, probs.data(), logits.data());   // two batches
        w.append(2, n - 2, probs.data() + 2 * k, logits.data() + 2 * k);
        w.finish();
    }
    out.commit();
    Predictions p = load_predictions(path);
    EXPECT_EQ(p.probs, probs);
    EXPECT_EQ(p.logits, logits);
    return p;
}

}  // namespace

TEST(Predictions, RoundTripAndPredictionIsTheArgmax) {
    test::TempDir d;
    const int n = 5, k = 3;
    std::vector<float> logits = {1, 2, 3, 3, 2, 1, 0, 5, 0, -1, -1, -2, 0.5f, 0.5f, 0.25f};
    const Predictions p = write_and_read(d / "p.h5", n, k, logits, true);
    EXPECT_EQ(p.n, n);
    EXPECT_EQ(p.k, k);
    EXPECT_EQ(p.prediction, (std::vector<int32_t>{2, 0, 1, 0, 0}));   // ties: the first
    EXPECT_EQ(p.labels, (std::vector<int32_t>{0, 1, 2, 0, 1}));
    EXPECT_EQ(p.info.task, "main");
    EXPECT_EQ(p.info.input_kind, "dataset");
}

TEST(Predictions, InconsistentFilesAreOneLineErrors) {
    test::TempDir d;
    const std::string path = d / "p.h5";
    write_and_read(path, 4, 2, {0, 1, 1, 0, 2, 2, -1, 3}, false);
    // A prediction that is not a largest probability, then a file of another format.
    {
        const int32_t bad[4] = {0, 0, 0, 0};   // rows 0 and 3 predict class 1
        hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
        ASSERT_GE(f, 0);
        hid_t ds = H5Dopen2(f, "/prediction", H5P_DEFAULT);
        ASSERT_GE(ds, 0);
        ASSERT_GE(H5Dwrite(ds, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, bad), 0);
        H5Dclose(ds);
        H5Fclose(f);
    }
    const std::string e = test::error_of([&] { load_predictions(path); });
    EXPECT_NE(e.find(path + ":"), std::string::npos) << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
    EXPECT_NE(test::error_of([&] { load_predictions(d / "missing.h5"); }).find("missing.h5"), std::string::npos);
}
