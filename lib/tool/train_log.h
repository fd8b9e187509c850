// train_log.h — ufo-train's log printer: TSV with a header, or JSON Lines. Multi-task rows
// carry task, route and p_own columns after epoch/lr; a single task's do not.
#pragma once
#include "train/train.h"

namespace ufo {

class TrainLogPrinter {
public:
    // teacher: a distillation run, whose rows carry the teacher's validation accuracy.
    TrainLogPrinter(bool json, bool multi, bool teacher = false) : json_(json), multi_(multi), teacher_(teacher) {}
    void operator()(const LogRow& r);   // prints the header before the first row (TSV)

private:
    bool json_, multi_, teacher_, header_done_ = false;
};

}  // namespace ufo
