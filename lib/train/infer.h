// infer.h — batched prediction and evaluation over a dataset.
#pragma once
#include "train/data_parallel.h"
#include "io/dataset.h"
#include "nn/network.h"

#include <functional>

namespace ufo {

struct EvalResult {
    double loss = 0.0;       // mean cross-entropy (no smoothing)
    double accuracy = 0.0;
    int64_t n = 0;
};

// Runs the active sub-network over images [n,H,W,C] in batches of at most dp.max_batch() and
// calls on_batch(first index, batch size, probs [B,K]) after each forward pass.
// (dp.logits() holds the same batch's logits during the call.)
void predict_batches(const Network& m, DataParallel& dp, const uint8_t* images, int64_t n, const Active& a,
                     const std::function<void(int64_t, int, const float*)>& on_batch);

// Loss and accuracy of the active sub-network on a labelled dataset.
EvalResult evaluate(const Network& m, DataParallel& dp, const Dataset& ds, const Active& a);

// The same, split across the processes of a run (dist/process_group.h): every process
// evaluates a contiguous slice and the sums are reduced. Every process must call it.
EvalResult evaluate_across_processes(const Network& m, DataParallel& dp, const Dataset& ds, const Active& a);

// "<file>: images are HxWxC but the model takes hxwxc" when the dataset does not fit.
void check_fits(const NetSpec& cfg, const Dataset& ds, const std::string& where);

}  // namespace ufo
