// fine_tune.cpp — weights by role from another checkpoint; frozen masks by part.
#include "train/fine_tune.h"

#include "base/common.h"

#include <algorithm>

namespace ufo {

InitReport init_from(Network& net, const Network& from, bool new_head) {
    InitReport rep;
    for (const auto& t : net.layout) {
        const Role& r = t.role;
        auto it = std::find_if(from.layout.begin(), from.layout.end(),
                               [&](const ParamInfo& f) { return f.role.same_slot(r) && f.shape == t.shape; });
        if (r.kind == Kind::Head) {
            if (new_head || it == from.layout.end()) continue;   // a fresh head (initialised by the caller)
            rep.head_copied = true;
        } else if (it == from.layout.end()) {
            fail("", "the source checkpoint has no tensor for " + t.name + " (another architecture)");
        }
        std::copy_n(from.params.data() + it->offset, t.size, net.params.data() + t.offset);
        ++rep.copied;
    }
    return rep;
}

std::vector<char> frozen_mask(const Network& net, const std::vector<Part>& parts) {
    std::vector<char> m(net.layout.size(), 0);
    for (size_t k = 0; k < m.size(); ++k)
        m[k] = std::find(parts.begin(), parts.end(), net.layout[k].role.part) != parts.end();
    return m;
}

}  // namespace ufo
