// passes.h — running one step's passes (policy.h) on their batch: forward, loss and backward
// of each, gradients summed into one buffer, and a teacher pass's predictions handed to the
// passes that learn from it (in-place distillation). The trainer's loop and the tests share it.
#pragma once
#include "train/data_parallel.h"
#include "train/policy.h"

#include <vector>

namespace ufo {

class PassRunner {
public:
    // Forgets the previous step's teacher predictions.
    void begin_step() { have_teacher_ = false; }
    // One pass on B rows (images [B,H,W,C], labels [B]); gradients are added to grads.
    StepResult run(Network& net, DataParallel& dp, const Pass& p, const uint8_t* images, const int32_t* labels, int B,
                   float smoothing, float* grads);
    // The teacher's softmax(z / T) [B,K] of this step (after a teacher pass).
    const float* teacher_probs() const { return have_teacher_ ? teacher_.data() : nullptr; }
    // This step's teacher probabilities [n] from outside (a separate teacher network).
    void provide_teacher(const float* probs, size_t n) {
        teacher_.assign(probs, probs + n);
        have_teacher_ = true;
    }

private:
    std::vector<float> teacher_;
    bool have_teacher_ = false;
};

}  // namespace ufo
