// train_log.cpp — TSV / JSON Lines rows of ufo-train's log.
#include "tool/train_log.h"

#include <nlohmann/json.hpp>

#include <cstdio>

namespace ufo {

void TrainLogPrinter::operator()(const LogRow& r) {
    if (!json_ && !header_done_) {
        if (multi_)
            std::printf("step\tepoch\ttask\tlr\ttrain_loss\ttrain_acc\tval_loss\tval_acc\troute\tp_own\timg_per_s\t"
                        "elapsed_s\n");
        else
            std::printf("step\tepoch\tlr\ttrain_loss\ttrain_acc\tval_loss\tval_acc\t%simg_per_s\telapsed_s\n",
                        teacher_ ? "teacher_val_acc\t" : "");
        header_done_ = true;
    }
    if (json_) {
        nlohmann::ordered_json j = {{"step", r.step}, {"epoch", r.epoch}};
        if (multi_) j["task"] = r.task;
        j["lr"] = r.lr;
        j["train_loss"] = r.loss;
        j["train_acc"] = r.acc;
        j["val_loss"] = r.has_val ? nlohmann::json(r.val_loss) : nlohmann::json(nullptr);
        j["val_acc"] = r.has_val ? nlohmann::json(r.val_acc) : nlohmann::json(nullptr);
        if (teacher_) j["teacher_val_acc"] = r.teacher_val_acc >= 0 ? nlohmann::json(r.teacher_val_acc) : nlohmann::json(nullptr);
        if (multi_) {
            j["route"] = r.route;
            j["p_own"] = r.p_own;
        }
        j["img_per_s"] = r.img_s;
        j["elapsed_s"] = r.elapsed;
        std::printf("%s\n", j.dump().c_str());
    } else {
        char vl[32] = "nan", va[32] = "nan";
        if (r.has_val) {
            std::snprintf(vl, sizeof vl, "%.6f", r.val_loss);
            std::snprintf(va, sizeof va, "%.6f", r.val_acc);
        }
        std::printf("%lld\t%.3f\t", (long long)r.step, r.epoch);
        if (multi_) std::printf("%s\t", r.task.c_str());
        std::printf("%.6g\t%.6f\t%.6f\t%s\t%s\t", r.lr, r.loss, r.acc, vl, va);
        if (teacher_) {
            char ta[32] = "nan";
            if (r.teacher_val_acc >= 0) std::snprintf(ta, sizeof ta, "%.6f", r.teacher_val_acc);
            std::printf("%s\t", ta);
        }
        if (multi_) {
            std::string route, p_own;
            char buf[16];
            for (size_t l = 0; l < r.route.size(); ++l) route += (l ? "," : "") + r.route[l];
            for (size_t l = 0; l < r.p_own.size(); ++l) {
                std::snprintf(buf, sizeof buf, "%s%.3f", l ? "," : "", r.p_own[l]);
                p_own += buf;
            }
            std::printf("%s\t%s\t", route.c_str(), p_own.c_str());
        }
        std::printf("%.1f\t%.1f\n", r.img_s, r.elapsed);
    }
    std::fflush(stdout);
}

}  // namespace ufo
