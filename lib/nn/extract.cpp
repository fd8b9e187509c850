// extract.cpp — task and shared sub-networks of a supernet, by parameter role.
#include "nn/extract.h"

#include "base/common.h"

#include <algorithm>
#include <functional>

namespace ufo {

namespace {

// Copies every tensor of `sub` from the supernet tensor whose role `source_role` gives.
std::unique_ptr<ViT> copy_from(const ViT& super, const ViTConfig& sub_cfg,
                               const std::function<Role(const Role&)>& source_role, SourceMap* sources) {
    auto sub = std::make_unique<ViT>(sub_cfg);
    for (const auto& t : sub->layout) {
        const Role want = source_role(t.role);
        auto it = std::find_if(super.layout.begin(), super.layout.end(),
                               [&](const ParamInfo& s) { return s.role.same_slot(want); });
        if (it == super.layout.end() || it->size != t.size)
            fail("", "internal error: no supernet tensor of the same role and size for " + t.name);
        std::copy_n(super.params.data() + it->offset, t.size, sub->params.data() + t.offset);
        if (sources) (*sources)[t.name] = it->name;
    }
    return sub;
}

ViTConfig dense_of(const ViTConfig& c) {
    ViTConfig d = c;
    d.ffn_sets = 1;
    d.tasks.clear();
    return d;
}

}  // namespace

std::unique_ptr<ViT> extract_task(const ViT& super, int task, SourceMap* sources) {
    const ViTConfig& c = super.cfg;
    if (!c.is_supernet()) fail("", "not a Task-MoE supernet");
    ViTConfig d = dense_of(c);
    TaskInfo t = c.tasks.at(task);
    t.route.clear();
    d.tasks.push_back(t);
    const std::vector<int>& route = c.tasks[task].route;
    return copy_from(super, d, [&](const Role& r) {
        Role s = r;
        if (r.task == 0) s.task = task;                 // the head is task 0 of the subnet
        if (r.ffn_set == 0 && route.at(r.block)) {      // block l's FFN is the one its route picks
            s.ffn_set = task + 1;
            s.task = task;
        }
        return s;
    }, sources);
}

std::unique_ptr<ViT> extract_shared(const ViT& super, SourceMap* sources) {
    if (!super.cfg.is_supernet()) fail("", "not a Task-MoE supernet");
    return copy_from(super, dense_of(super.cfg), [](const Role& r) { return r; }, sources);
}

}  // namespace ufo
