// extract.cpp — task and shared sub-networks of a supernet.
#include "nn/extract.h"

#include "base/common.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>

namespace ufo {

namespace {

// Copies every tensor of `sub` from the supernet tensor that `source_of` names.
std::unique_ptr<Model> copy_from(const Model& super, const ViTConfig& sub_cfg,
                                 const std::function<std::string(const std::string&)>& source_of, Provenance* prov) {
    auto sub = std::make_unique<Model>(sub_cfg);
    std::map<std::string, const ParamInfo*> by_name;
    for (const auto& t : super.layout) by_name[t.name] = &t;
    for (const auto& t : sub->layout) {
        const std::string src = source_of(t.name);
        auto it = by_name.find(src);
        if (it == by_name.end() || it->second->size != t.size)
            fail("", "internal error: supernet tensor " + src + " missing or of another size");
        std::copy_n(super.params.data() + it->second->offset, t.size, sub->params.data() + t.offset);
        if (prov) prov->sources[t.name] = src;
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

std::unique_ptr<Model> extract_task(const Model& super, int task, Provenance* prov) {
    const ViTConfig& c = super.cfg;
    if (!c.is_supernet()) fail("", "not a Task-MoE supernet");
    ViTConfig d = dense_of(c);
    TaskInfo t = c.tasks.at(task);
    t.route.clear();
    d.tasks.push_back(t);
    const std::vector<int>& route = c.tasks[task].route;
    return copy_from(super, d, [&](const std::string& name) {
        // blocks/<l>/ffn/shared/... comes from the FFN the route picks in block l.
        const std::string key = "/ffn/shared/";
        const auto pos = name.find(key);
        if (name.rfind("blocks/", 0) != 0 || pos == std::string::npos) return name;
        const int l = std::stoi(name.substr(7));
        if (!route.at(l)) return name;
        return name.substr(0, pos) + "/ffn/" + t.name + "/" + name.substr(pos + key.size());
    }, prov);
}

std::unique_ptr<Model> extract_shared(const Model& super, Provenance* prov) {
    if (!super.cfg.is_supernet()) fail("", "not a Task-MoE supernet");
    return copy_from(super, dense_of(super.cfg), [](const std::string& name) { return name; }, prov);
}

}  // namespace ufo
