// arch_options.h — the architecture flags shared by ufo-train and ufo-bench.
#pragma once
#include "nn/vit.h"

#include <boost/program_options.hpp>

namespace ufo {

// --preset, --img HxWxC, --patch, --dim, --depth, --heads, --mlp-ratio / --mlp-hidden,
// --qk-norm, --parallel-block, --no-qkv-bias, --classes
void add_arch_options(boost::program_options::options_description& opts);
// Preset (default "ref") overridden by any flag given explicitly; validated.
ViTConfig arch_from_options(const boost::program_options::variables_map& vm);

}  // namespace ufo

namespace ufo {
// True when any architecture flag (or a preset) was given explicitly on the command line.
bool arch_flags_given(const boost::program_options::variables_map& vm);
}  // namespace ufo
