// train_options.h — the command-line options every training tool shares (ufo-train,
// ufo-distill): data, output and checkpoints, schedule, optimiser, augmentation, seed, threads,
// logging; and --init/--new-head/--freeze to start from another checkpoint.
#pragma once
#include "train/train.h"

#include <boost/program_options.hpp>
#include <string>

namespace ufo {

// Text options parsed after the fact.
struct TrainCliText {
    std::string seed = "0";
    std::string freeze;
    bool json = false;
};

void add_train_options(boost::program_options::options_description& opts, TrainOptions& o, TrainCliText& t);
void add_init_options(boost::program_options::options_description& opts, TrainOptions& o, TrainCliText& t);
// After parsing: the seed, --freeze, and usage errors (exit 2) for values that cannot mean
// anything (a negative step count, a learning rate that is not finite, ...).
void check_train_options(const boost::program_options::variables_map& vm, TrainOptions& o, const TrainCliText& t);

}  // namespace ufo
