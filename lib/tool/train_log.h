// train_log.h — ufo-train's log printer: TSV with a header, or JSON Lines. Multi-task rows
// carry task, route and p_own columns after epoch/lr; a single task's do not.
#pragma once
#include "train/train.h"

namespace ufo {

class TrainLogPrinter {
public:
    TrainLogPrinter(bool json, bool multi) : json_(json), multi_(multi) {}
    void operator()(const LogRow& r);   // prints the header before the first row (TSV)

private:
    bool json_, multi_, header_done_ = false;
};

}  // namespace ufo
