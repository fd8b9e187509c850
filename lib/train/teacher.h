// teacher.h — the teacher of a distillation run: any checkpoint ufo-infer runs (a supernet's
// task along its route, a task or chip sub-network, an elastic model's sub-architecture, a CNN),
// run forward only on the student's batch; or the logits a predictions file (ufo-infer -o)
// stores for every training image. Its weights are read once and never written.
#pragma once
#include "io/dataset.h"
#include "nn/network.h"
#include "train/data_parallel.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ufo {

struct TeacherOptions {
    std::string path;          // checkpoint ("" with soft_labels)
    std::string task;          // supernet: the task to run ("" = the only one)
    std::string arch;          // elastic model: the sub-architecture ("" = the largest)
    std::string soft_labels;   // predictions file of the training set instead of a checkpoint
    bool on() const { return !path.empty() || !soft_labels.empty(); }
};

class Teacher {
public:
    // Loads and checks against the training data: the image shape, the class count, and for
    // stored soft labels one row per training image with the same labels. Errors name the file.
    Teacher(const TeacherOptions& o, const Dataset& train, const std::string& train_path, int max_batch);
    ~Teacher();

    // probs [B,K] = softmax(z_t / T) of the batch's rows: images [B,H,W,C] (a network teacher),
    // indices [B] their training-set rows (stored soft labels).
    void probs(float* out, const uint8_t* images, const int64_t* indices, int B, float T);
    // Accuracy on a labelled split (a network teacher only; -1 for stored soft labels).
    double accuracy(const Dataset& val);
    // One line for logs: the file and what runs.
    const std::string& describe() const { return describe_; }
    const std::string& source() const { return source_; }   // the file read ("" for stdin)
    uint64_t checksum() const { return checksum_; }           // FNV-1a of its bytes
    const Network* network() const { return net_.get(); }

private:
    std::unique_ptr<Network> net_;
    Active active_;
    std::unique_ptr<DataParallel> dp_;
    std::vector<float> stored_logits_;   // [N,K] with soft labels
    int k_ = 0;
    std::string describe_, source_;
    uint64_t checksum_ = 0;
};

}  // namespace ufo
