// elastic.h — One-for-All elastic ViTs: the search space, sub-architecture specs (one line of
// text naming a sub-network), sampling from the space, and importance sorting.
//
// A sub-architecture is an Active with depth, per-block heads and per-block FFN widths: the
// first `depth` blocks, the first heads[l] heads and the first mlp[l] hidden units of block l.
// Its text form (formats/arch-spec.md):
//     depth=5 heads=3,3,2,2,1 mlp=192,192,144,96,96
#pragma once
#include "base/rng.h"
#include "nn/vit.h"

#include <string>
#include <vector>

namespace ufo {

// The space of `cfg` from the ufo-train flags (comma lists; empty = the default): depths
// (default: depth-2..depth), heads (default: 1..heads) and FFN widths as multiples of dim
// (default: half, three quarters and all of the model's hidden units). Lists are sorted and
// deduplicated; the result is validated with the model (its largest choices must be the
// model's own sizes). Errors name `where`.
ElasticSpace make_space(const ViTConfig& cfg, const std::string& depths, const std::string& heads,
                        const std::string& mlp_ratios, const std::string& where);

// Parses a spec. On an elastic model every value must be one of the space's choices; on any
// other ViT it must fit the model (depth <= its depth, heads and width <= each block's).
// Omitted keys mean the largest; a list of one value applies to every block. Errors name
// `where` and say what is wrong (unknown key, depth outside the space, heads above the
// stored maximum, a list of the wrong length).
Active parse_arch(const std::string& text, const ViTConfig& cfg, const std::string& where);
// The canonical text of a resolved Active (full lists, one entry per active block).
std::string format_arch(const Active& a);

Active largest_arch(const ViTConfig& cfg);    // the whole model
Active smallest_arch(const ViTConfig& cfg);   // the smallest choice everywhere
// Uniform over the space: a depth, then heads and width of each active block independently.
Active sample_arch(const ViTConfig& cfg, Rng& rng);
// log10 of the number of sub-architectures in the space.
double log10_space_size(const ElasticSpace& s);

// The standalone configuration of a sub-architecture: depth and per-block sizes set, the
// elastic space dropped (uniform sizes are stored as the plain heads / mlp_hidden).
ViTConfig arch_config(const ViTConfig& cfg, const Active& a);

// Importance sorting before elastic training (Once-for-All's measure): in every block, heads
// and FFN hidden units are reordered by the L1 norm of the weights that read them (a head's
// columns of the attention projection; a hidden unit's column of fc2), most important first,
// so that first-k slicing keeps the important ones. Every coupled tensor (qkv rows and bias,
// projection columns; fc1 rows and bias, fc2 columns) is permuted in the parameters and in
// each of `moments` (buffers of the same layout, e.g. AdamW's), so the whole network computes
// the same function. Returns the number of (block, heads-or-units) orders that changed.
int sort_by_importance(ViT& net, const std::vector<float*>& moments);

}  // namespace ufo
