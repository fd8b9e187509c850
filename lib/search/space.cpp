// space.cpp — feature encoding, genomes and enumeration of an elastic model's sub-architectures.
#include "search/space.h"

#include "base/common.h"

#include <limits>

namespace ufo {

namespace {
void need_elastic(const ViTConfig& cfg) {
    if (!cfg.is_elastic()) fail("", "internal error: the search space needs an elastic model");
}
}  // namespace

int feature_count(const ViTConfig& cfg) { return 1 + 2 * cfg.depth; }

void encode_arch(const ViTConfig& cfg, const Active& a, double* x) {
    const int D = cfg.depth;
    x[0] = double(a.depth) / D;
    for (int l = 0; l < D; ++l) {
        const bool on = l < a.depth;
        x[1 + l] = on ? double(a.heads[size_t(l)]) / cfg.heads : 0.0;
        x[1 + D + l] = on ? double(a.hidden[size_t(l)]) / cfg.mlp_hidden : 0.0;
    }
}

std::vector<int> gene_choices(const ViTConfig& cfg) {
    need_elastic(cfg);
    const ElasticSpace& s = cfg.elastic;
    std::vector<int> c{int(s.depth.size())};
    for (int l = 0; l < cfg.depth; ++l) c.push_back(int(s.heads.size()));
    for (int l = 0; l < cfg.depth; ++l) c.push_back(int(s.hidden.size()));
    return c;
}

Active genome_arch(const ViTConfig& cfg, const Genome& g) {
    const ElasticSpace& s = cfg.elastic;
    Active a;
    a.depth = s.depth[size_t(g[0])];
    for (int l = 0; l < cfg.depth; ++l) {
        a.heads.push_back(s.heads[size_t(g[size_t(1 + l)])]);
        a.hidden.push_back(s.hidden[size_t(g[size_t(1 + cfg.depth + l)])]);
    }
    resolve_active(cfg, a);
    return a;
}

uint64_t space_count(const ViTConfig& cfg) {
    need_elastic(cfg);
    const ElasticSpace& s = cfg.elastic;
    const uint64_t per_block = uint64_t(s.heads.size()) * s.hidden.size(), max = std::numeric_limits<uint64_t>::max();
    uint64_t total = 0;
    for (int d : s.depth) {
        uint64_t c = 1;
        for (int l = 0; l < d; ++l) c = c > max / per_block ? max : c * per_block;
        total = total > max - c ? max : total + c;
    }
    return total;
}

Active arch_at(const ViTConfig& cfg, uint64_t index) {
    need_elastic(cfg);
    const ElasticSpace& s = cfg.elastic;
    const uint64_t nw = s.hidden.size(), per_block = s.heads.size() * nw;
    for (int d : s.depth) {
        uint64_t count = 1;
        for (int l = 0; l < d; ++l) count *= per_block;   // space_count(cfg) bounds index: no overflow here
        if (index >= count) { index -= count; continue; }
        Active a;
        a.depth = d;
        a.heads.assign(size_t(cfg.depth), s.heads.front());
        a.hidden.assign(size_t(cfg.depth), s.hidden.front());
        for (int l = 0; l < d; ++l, index /= per_block) {
            const uint64_t digit = index % per_block;
            a.heads[size_t(l)] = s.heads[digit / nw];
            a.hidden[size_t(l)] = s.hidden[digit % nw];
        }
        resolve_active(cfg, a);
        return a;
    }
    fail("", "internal error: sub-architecture index beyond the space");
}

}  // namespace ufo
