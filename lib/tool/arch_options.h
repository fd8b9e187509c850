// arch_options.h — the architecture flags shared by ufo-train and ufo-bench.
#pragma once
#include "nn/cnn.h"
#include "nn/vit.h"

#include <memory>
#include <string>

#include <boost/program_options.hpp>

namespace ufo {

// --family, --arch, --preset, --img HxWxC, --layers (CNN), --patch, --dim, --depth, --heads, --mlp-ratio / --mlp-hidden,
// --qk-norm, --parallel-block, --no-qkv-bias, --classes
// with_arch false leaves out --arch (a tool that gives it another meaning).
void add_arch_options(boost::program_options::options_description& opts, bool with_arch = true);
// Preset (default "ref") overridden by any flag given explicitly; validated.
ViTConfig arch_from_options(const boost::program_options::variables_map& vm);
// --family (or --arch given as "vit" / "cnn", its older spelling): "vit" or "cnn".
std::string arch_family(const boost::program_options::variables_map& vm);
// --arch when it names a sub-architecture (nn/elastic.h), else "".
std::string arch_spec(const boost::program_options::variables_map& vm);
// --arch cnn: preset (default "small") and --layers; ViT-only flags are usage errors.
CNNConfig cnn_arch_from_options(const boost::program_options::variables_map& vm);
// A fresh network of --arch from the flags. With data: the data's image shape (unless --img),
// tasks and input normalisation, validated naming `where`. Several tasks make a ViT supernet.
std::unique_ptr<Network> network_from_options(const boost::program_options::variables_map& vm, const NetSpec* data,
                                              const std::string& where);

}  // namespace ufo

namespace ufo {
// True when any architecture flag (or a preset) was given explicitly on the command line;
// a sub-architecture --arch counts only with count_spec.
bool arch_flags_given(const boost::program_options::variables_map& vm, bool count_spec = true);
}  // namespace ufo
