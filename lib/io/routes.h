// routes.h — route tables: the hardened Task-MoE route of every task and block as text, so
// that routes can be inspected, edited and piped between ufo-route and ufo-extract.
//
// Format (TSV, header first): task <TAB> layer <TAB> path, with path "shared" or "own" and
// layers counted from 0. A table may list only some tasks, but every task it lists needs
// every layer exactly once.
#pragma once
#include "nn/vit.h"

#include <map>
#include <string>
#include <vector>

namespace ufo {

struct RouteTable {
    std::vector<std::string> tasks;              // in order of first appearance
    std::map<std::string, std::vector<int>> route;   // task -> per layer 0 (shared) / 1 (own)
};

// The supernet's current routes (cfg.tasks[t].route).
std::string format_route_table(const ViTConfig& cfg);
// Parses text; `where` names the source in errors. Checks syntax only.
RouteTable parse_route_table(const std::string& text, const std::string& where);
// Reads a file ("-" = stdin) and parses it.
RouteTable read_route_table(const std::string& path);
// Checks the table against a supernet (known tasks, its number of layers) and sets the routes.
void apply_route_table(ViTConfig& cfg, const RouteTable& table, const std::string& where);

}  // namespace ufo
