// extract.cpp — task and shared sub-networks of a supernet, by parameter role.
#include "nn/extract.h"

#include "base/common.h"
#include "nn/elastic.h"

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

namespace {

// Copies the leading box `dst_shape` of a row-major tensor of `src_shape` (same rank).
void copy_box(const float* src, const std::vector<int64_t>& ss, float* dst, const std::vector<int64_t>& ds) {
    if (ds.empty()) { *dst = *src; return; }
    int64_t src_inner = 1, dst_inner = 1;
    for (size_t i = 1; i < ss.size(); ++i) { src_inner *= ss[i]; dst_inner *= ds[i]; }
    const std::vector<int64_t> si(ss.begin() + 1, ss.end()), di(ds.begin() + 1, ds.end());
    for (int64_t r = 0; r < ds[0]; ++r) {
        if (si.empty()) dst[r] = src[r];
        else copy_box(src + r * src_inner, si, dst + r * dst_inner, di);
    }
}

}  // namespace

std::unique_ptr<ViT> extract_arch(const ViT& model, const Active& in, SourceMap* sources) {
    Active a = in;
    resolve_active(model.cfg, a);
    auto sub = std::make_unique<ViT>(arch_config(model.cfg, a));
    const int hd = model.cfg.head_dim();
    for (const auto& t : sub->layout) {
        auto it = std::find_if(model.layout.begin(), model.layout.end(),
                               [&](const ParamInfo& s) { return s.role.same_slot(t.role); });
        if (it == model.layout.end() || it->shape.size() != t.shape.size())
            fail("", "internal error: no source tensor of the same role for " + t.name);
        std::vector<int64_t> ss = it->shape, ds = t.shape;
        // The fused q, k, v projection [3A, C] (bias [3A]) is three row groups: cut each.
        if (t.role.part == Part::Attn && t.role.unit == 0 && (t.role.kind == Kind::Matrix || t.role.kind == Kind::Bias)) {
            const int64_t As = model.cfg.heads_at(t.role.block) * hd, Ad = sub->cfg.heads_at(t.role.block) * hd;
            ss[0] = As; ds[0] = Ad;
            ss.insert(ss.begin(), 3); ds.insert(ds.begin(), 3);
        }
        for (size_t i = 0; i < ss.size(); ++i)
            if (ds[i] > ss[i]) fail("", "internal error: " + t.name + " is larger than its source " + it->name);
        copy_box(model.params.data() + it->offset, ss, sub->params.data() + t.offset, ds);
        if (sources) (*sources)[t.name] = it->name;
    }
    return sub;
}

std::unique_ptr<ViT> extract_shared(const ViT& super, SourceMap* sources) {
    if (!super.cfg.is_supernet()) fail("", "not a Task-MoE supernet");
    return copy_from(super, dense_of(super.cfg), [](const Role& r) { return r; }, sources);
}

}  // namespace ufo
