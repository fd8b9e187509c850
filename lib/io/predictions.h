// predictions.h — the ufo predictions file (formats/predictions.md): what a model predicted for
// every image of an input, as HDF5: /probs and /logits float32 [N,K], /prediction int32 [N],
// /labels int32 [N] when the input had labels, /sources (image files) and provenance as root
// attributes. Written by `ufo-infer -o`, row block by row block (never more than one batch in
// memory); read whole by load_predictions (teacher probabilities for distillation, cross-checks).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ufo {

inline constexpr const char* kPredictionsFormat = "ufo-predictions";
inline constexpr int kPredictionsVersion = 1;

// The root attributes: which model predicted what.
struct PredictionsInfo {
    std::string task;                      // the task's name
    int num_classes = 0;                   // K
    std::vector<std::string> class_names;  // K names, or empty when the task has none
    std::string model;                     // checkpoint path; "" when it came from stdin
    uint64_t model_checksum = 0;           // 64-bit FNV-1a of its bytes (unused when model is "")
    std::string arch;                      // the sub-architecture run (ufo-infer --arch); "" = the model's own
    std::string input_kind;                // "dataset" or "images"
    std::string input;                     // the dataset's path, "<stdin>", or "" for image files
    bool has_input_checksum = false;       // true for a dataset read from a file
    uint64_t input_checksum = 0;           // FNV-1a of that dataset file's bytes
    std::string tool, command;             // the program and its full command line
    std::string created, ufo_version;      // set by the writer; read back by load_predictions
};

// A whole predictions file in memory.
struct Predictions {
    PredictionsInfo info;
    int64_t n = 0;
    int k = 0;
    std::vector<float> probs, logits;     // [n,k]: softmax(logits) and the logits of row i
    std::vector<int32_t> prediction;      // [n]: a class of the largest probability of row i
    std::vector<int32_t> labels;          // [n] true class, or empty when the input had none
    std::vector<std::string> sources;     // [n] image file paths, or empty for a dataset
};

// Reads and validates a predictions file ("-" reads stdin): format name and version, every
// shape, dtype and attribute, sizes against the limits and the machine's memory before anything
// is allocated, values (finite logits, probabilities in [0,1] summing to 1, predictions and
// labels in [0,K), each prediction a largest probability). Errors are one line naming the file.
Predictions load_predictions(const std::string& path);

class AtomicPath;

// Streams a predictions file of n rows into out.tmp(): the constructor creates the file and
// its datasets (and writes labels and sources, each empty or of n entries), append() writes
// the rows of one batch, finish() writes the attributes and closes the file; the caller then
// commits `out`. Without finish() (an error on the way), nothing is committed.
class PredictionsWriter {
public:
    PredictionsWriter(AtomicPath& out, const PredictionsInfo& info, int64_t n, const std::vector<int32_t>& labels,
                      const std::vector<std::string>& sources);
    ~PredictionsWriter();
    PredictionsWriter(const PredictionsWriter&) = delete;
    PredictionsWriter& operator=(const PredictionsWriter&) = delete;
    // Rows [first, first + B): probs and logits [B,K]. Rows come in order, each once. The
    // prediction is the first class of largest probability (as ufo-infer's prediction column).
    // Fails "<out>: the logits of image I are not finite" rather than store them.
    void append(int64_t first, int B, const float* probs, const float* logits);
    // Fails unless all n rows were appended.
    void finish();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace ufo
