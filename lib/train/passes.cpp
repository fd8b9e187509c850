// passes.cpp — one pass of a step, with in-place distillation.
#include "train/passes.h"

#include "base/common.h"
#include "nn/losses.h"

namespace ufo {

StepResult PassRunner::run(Network& net, DataParallel& dp, const Pass& p, const uint8_t* images, const int32_t* labels,
                           int B, float smoothing, float* grads) {
    Targets y;
    y.labels = labels;
    y.smoothing = smoothing;
    y.soft = p.soft;
    y.alpha = p.alpha;
    y.T = p.T;
    y.weight = p.weight;
    if (p.from_teacher) {
        if (!have_teacher_) fail("", "internal error: a pass learns from a teacher that has not run this step");
        y.soft = teacher_.data();
    }
    const StepResult r = dp.train_step(net, images, y, B, p.active, grads);
    net.update_statistics(dp.workspace(0));
    if (p.teacher) {
        const int K = net.spec().tasks[size_t(p.active.task)].num_classes;
        teacher_.resize(size_t(B) * K);
        softmax_forward(teacher_.data(), dp.logits(), B, K, p.T);
        have_teacher_ = true;
    }
    return r;
}

}  // namespace ufo
