// fine_tune.h — starting a run from another checkpoint's weights (UFO's new-task extension):
// every tensor of the new network takes the weights of the tensor with the same role and shape
// in the source; a head is taken only when its class count matches and no new head is asked for.
#pragma once
#include "nn/network.h"

#include <cstddef>

namespace ufo {

struct InitReport {
    size_t copied = 0;       // tensors taken from the source
    bool head_copied = false;
};

// net and from must share the architecture apart from the task heads (net is normally
// from.rebuild(...)). Throws when a backbone tensor has no counterpart.
InitReport init_from(Network& net, const Network& from, bool new_head);

// Per layout tensor of net: 1 when its part is one of `parts`.
std::vector<char> frozen_mask(const Network& net, const std::vector<Part>& parts);

}  // namespace ufo
