// run_state.h — what a training run saves and restores: checkpoints with the full training
// state (for a bit-exact resume), the options record, and clean stops on SIGINT/SIGTERM.
#pragma once
#include "io/checkpoint.h"
#include "train/train.h"

#include <string>

namespace ufo {

// SIGINT/SIGTERM set a flag the loop polls between steps.
void install_stop_signals();
int stop_signal();   // 0, SIGINT or SIGTERM

// The training options as JSON, stored in /train_state@train_options.
std::string options_json(const TrainOptions& o);
// A resumed run is bit-exact only with the options of the first run: warns (stderr) which differ.
void warn_changed_options(const std::string& tool, const std::string& ckpt, const std::string& before,
                          const std::string& now);

// The checkpoint path of a run: --checkpoint, else OUT with .h5 replaced by .ckpt.h5.
std::string checkpoint_path(const TrainOptions& o);

}  // namespace ufo
