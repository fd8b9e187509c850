// network.cpp — parameter roles, the binder, and what every network derives from them.
#include "nn/network.h"

#include "base/common.h"
#include "base/rng.h"

#include <algorithm>
#include <cmath>

namespace ufo {

int NetSpec::max_classes() const {
    int k = 0;
    for (const auto& t : tasks) k = std::max(k, t.num_classes);
    return k;
}

int NetSpec::task_index(const std::string& name, const std::string& where) const {
    std::string all;
    for (size_t i = 0; i < tasks.size(); ++i) {
        if (tasks[i].name == name) return int(i);
        all += (i ? ", " : "") + tasks[i].name;
    }
    if (tasks.empty()) fail(where, "has no task heads (a shared backbone), so no task " + name);
    fail(where, "no task " + name + " (tasks: " + all + ")");
}

int NetSpec::choose_task(const std::string& name, bool named, const std::string& where) const {
    if (named) return task_index(name, where);
    if (tasks.size() > 1) {
        std::string all;
        for (size_t i = 0; i < tasks.size(); ++i) all += (i ? ", " : "") + tasks[i].name;
        fail(where, "has " + std::to_string(tasks.size()) + " tasks (" + all + "); choose one with --task");
    }
    return 0;
}

namespace {
constexpr std::pair<Part, const char*> kParts[] = {{Part::Embed, "embed"}, {Part::Attn, "attn"}, {Part::Ffn, "ffn"},
                                                   {Part::Norm, "norm"},   {Part::Head, "head"}, {Part::Router, "router"},
                                                   {Part::Conv, "conv"}};
}

const char* part_name(Part p) {
    for (const auto& [part, name] : kParts)
        if (part == p) return name;
    return "?";
}

std::vector<Part> parse_parts(const std::string& list, const std::string& where) {
    std::vector<Part> out;
    size_t i = 0;
    while (i <= list.size()) {
        const size_t j = std::min(list.find(',', i), list.size());
        const std::string name = list.substr(i, j - i);
        bool found = false;
        for (const auto& [part, n] : kParts)
            if (name == n) {
                if (std::find(out.begin(), out.end(), part) == out.end()) out.push_back(part);
                found = true;
            }
        if (!found) {
            std::string known;
            for (const auto& [part, n] : kParts) known += (known.empty() ? "" : ", ") + std::string(n);
            throw UsageError(where + ": unknown part '" + name + "' (known: " + known + ")");
        }
        i = j + 1;
    }
    return out;
}

float* ParamBinder::operator()(const std::string& name, std::vector<int64_t> shape, Role role) {
    size_t n = 1;
    for (auto d : shape) n *= size_t(d);
    if (out_) {
        out_->push_back(ParamInfo{name, std::move(shape), next_, n, role});
        next_ += (n + 15) / 16 * 16;   // 64-byte aligned tensors
        return nullptr;
    }
    if (index_ >= in_->size() || (*in_)[index_].size != n || (*in_)[index_].name != name)
        fail("", "internal error: tensor " + name + " declared differently from the layout");
    const size_t i = index_++;
    if (skip_ && (*skip_)[i]) return nullptr;
    return base_ + (*in_)[i].offset;
}

void Network::set_layout(std::vector<ParamInfo> l, size_t total) {
    layout = std::move(l);
    params.assign(total, 0.0f);
    frozen_.assign(layout.size(), 0);
}

size_t Network::num_params() const {
    size_t n = 0;
    for (const auto& t : layout)
        if (t.role.trained()) n += t.size;
    return n;
}

void Network::set_frozen(std::vector<char> f) {
    if (f.size() != layout.size()) fail("", "internal error: frozen mask of another layout");
    frozen_ = std::move(f);
    ++frozen_version_;
}

void Network::init_custom(const ParamInfo& info, float*) const {
    fail("", "internal error: no custom initialisation for " + info.name);
}

// One random stream, drawn in layout order, so a seed gives the same weights whatever else
// the run does.
void Network::init_weights(uint64_t seed) {
    Rng rng(seed);
    for (const auto& t : layout) {
        float* w = params.data() + t.offset;
        switch (t.role.init) {
        case Init::Zero: std::fill(w, w + t.size, 0.0f); break;
        case Init::One: std::fill(w, w + t.size, 1.0f); break;
        case Init::XavierUniform: {   // [out, in]
            const double limit = std::sqrt(6.0 / double(t.shape[0] + t.shape[1]));
            for (size_t i = 0; i < t.size; ++i) w[i] = float(limit * (2.0 * rng.uniform() - 1.0));
            break;
        }
        case Init::HeNormal: {        // [out, in, kh, kw]: fan_out = out * kh * kw
            const double fan_out = double(t.size) / double(t.shape.size() > 1 ? t.shape[1] : 1);
            const double sd = std::sqrt(2.0 / fan_out);
            for (size_t i = 0; i < t.size; ++i) w[i] = float(sd * rng.normal());
            break;
        }
        case Init::Normal002:
            for (size_t i = 0; i < t.size; ++i) w[i] = 0.02f * rng.normal();
            break;
        case Init::Custom: init_custom(t, w); break;
        }
    }
}

}  // namespace ufo
