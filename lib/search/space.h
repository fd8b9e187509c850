// space.h — an elastic model's sub-architectures as predictor features, as genomes for the
// evolutionary search, and one by one for exhaustive search.
//
// Features (GP-NAS's encoding, scaled to [0, 1] so that one kernel length fits all of them), for
// a model of D blocks, H heads and M hidden units per block: 1 + 2·D numbers
//     depth / D,  heads_0 / H .. heads_{D-1} / H,  hidden_0 / M .. hidden_{D-1} / M
// with 0 for the heads and hidden units of blocks beyond the sub-network's depth.
#pragma once
#include "nn/vit.h"
#include "search/evolution.h"

#include <cstdint>

namespace ufo {

int feature_count(const ViTConfig& cfg);
void encode_arch(const ViTConfig& cfg, const Active& a, double* x);   // x [feature_count(cfg)]

// Genes: the depth's index in the space, then each block's heads index, then each block's width
// index (blocks beyond the depth are carried but have no effect).
std::vector<int> gene_choices(const ViTConfig& cfg);
Active genome_arch(const ViTConfig& cfg, const Genome& g);

// The number of distinct sub-architectures, saturating at UINT64_MAX.
uint64_t space_count(const ViTConfig& cfg);
// The index-th distinct sub-architecture, 0 <= index < space_count(cfg): depth by depth (the
// smallest first), then block 0's (heads, width) choice varying fastest. Lets exhaustive
// search split the space across threads.
Active arch_at(const ViTConfig& cfg, uint64_t index);

}  // namespace ufo
