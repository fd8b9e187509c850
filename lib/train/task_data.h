// task_data.h — one task's data in a training run: its datasets, the order of each epoch (a
// function of seed, task and epoch only) and augmented batches.
#pragma once
#include "io/dataset.h"
#include "train/augment.h"

#include <cstdint>
#include <string>
#include <vector>

namespace ufo {

struct TaskData {
    std::string name, train_path, val_path;
    Dataset train, val;
    int batch = 0;
    int64_t steps_per_epoch = 0;     // the last partial batch of an epoch is dropped

    // Loads the datasets; val_path may be empty.
    void load(const std::string& name, const std::string& train_path, const std::string& val_path, int batch);
    // The batch of `step` for task index t: images [batch,H,W,C], labels [batch], and with
    // indices [batch] each row's index in the training set.
    void fill_batch(int t, int64_t step, uint64_t seed, const AugmentConfig& aug, uint8_t* images, int32_t* labels,
                    int64_t* indices = nullptr);

private:
    std::vector<int64_t> perm_;
    int64_t perm_epoch_ = -1;
};

// Per-channel mean and std of the pixels in [0,1] over the training sets of all tasks.
void input_stats(const std::vector<TaskData>& tasks, std::vector<float>& mean, std::vector<float>& stdv);

}  // namespace ufo
