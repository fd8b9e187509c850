// teacher.cpp — a frozen teacher network, or stored teacher logits, for distillation.
#include "train/teacher.h"

#include "base/common.h"
#include "io/atomic_file.h"
#include "io/checkpoint.h"
#include "io/predictions.h"
#include "nn/elastic.h"
#include "nn/losses.h"
#include "nn/vit.h"
#include "train/infer.h"

#include <algorithm>

namespace ufo {

Teacher::Teacher(const TeacherOptions& o, const Dataset& train, const std::string& train_path, int max_batch) {
    const int K = train.num_classes();
    if (!o.soft_labels.empty()) {
        source_ = o.soft_labels == "-" ? "" : o.soft_labels;   // nothing to record for stdin
        checksum_ = o.soft_labels == "-" ? 0 : fnv1a_file(o.soft_labels);
        const Predictions p = load_predictions(o.soft_labels);
        const std::string& w = o.soft_labels;
        if (p.n != train.n)
            fail(w, "holds " + std::to_string(p.n) + " rows, the training set " + train_path + " " + std::to_string(train.n) +
                        " images (soft labels need one row per training image, in order)");
        if (p.k != K)
            fail(w, "holds " + std::to_string(p.k) + " classes, the training set " + std::to_string(K));
        if (!p.labels.empty() && !std::equal(p.labels.begin(), p.labels.end(), train.labels.begin()))
            fail(w, "its labels differ from " + train_path + "'s: it was made on another dataset or order");
        stored_logits_ = p.logits;
        k_ = K;
        describe_ = w + " (stored teacher logits)";
        return;
    }
    source_ = o.path == "-" ? "" : o.path;
    checksum_ = o.path == "-" ? 0 : fnv1a_file(o.path);   // stdin cannot be read twice
    LoadedCheckpoint ck = load_checkpoint(o.path);
    net_ = std::move(ck.net);
    const NetSpec& spec = net_->spec();
    const auto* vit = dynamic_cast<const ViT*>(net_.get());
    int t = 0;
    if (!o.task.empty()) {
        t = spec.task_index(o.task, o.path);
    } else if (spec.tasks.size() > 1) {
        fail(o.path, "has " + std::to_string(spec.tasks.size()) + " tasks; choose the teacher's with --task");
    }
    if (spec.tasks.empty()) fail(o.path, "has no task head (a shared backbone), so it cannot teach");
    active_.task = t;
    if (vit) active_ = active_for_task(vit->cfg, t);
    if (!o.arch.empty()) {
        if (!vit) fail(o.path, std::string("--arch names a ViT sub-architecture; the teacher is a ") + net_->family());
        active_ = parse_arch(o.arch, vit->cfg, o.path);
    }
    net_->resolve(active_);
    k_ = spec.tasks[size_t(t)].num_classes;
    if (spec.img_h != train.h || spec.img_w != train.w || spec.img_c != train.c) {
        auto shape = [](int h, int w, int c) { return std::to_string(h) + "x" + std::to_string(w) + "x" + std::to_string(c); };
        fail(o.path, "the teacher takes " + shape(spec.img_h, spec.img_w, spec.img_c) + " images, the training set " +
                         train_path + " holds " + shape(train.h, train.w, train.c));
    }
    if (k_ != K)
        fail(o.path, "the teacher's task " + spec.tasks[size_t(t)].name + " has " + std::to_string(k_) +
                         " classes, the training set " + train_path + " " + std::to_string(K));
    dp_ = std::make_unique<DataParallel>(*net_, max_batch, false);
    describe_ = o.path + " (" + net_->describe() + (o.task.empty() ? "" : ", task " + o.task) +
                (o.arch.empty() || !vit ? "" : ", " + format_arch(active_)) + ")";
}

Teacher::~Teacher() = default;

void Teacher::probs(float* out, const uint8_t* images, const int64_t* indices, int B, float T) {
    if (net_) {
        dp_->forward(*net_, images, B, active_);
        softmax_forward(out, dp_->logits(), B, k_, T);
        return;
    }
    for (int b = 0; b < B; ++b)
        softmax_forward(out + size_t(b) * k_, stored_logits_.data() + size_t(indices[b]) * k_, 1, k_, T);
}

double Teacher::accuracy(const Dataset& val) {
    if (!net_) return -1;
    return evaluate(*net_, *dp_, val, active_).accuracy;
}

}  // namespace ufo
