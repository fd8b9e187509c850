// fuzz_routes — parse_route_table, then apply_route_table against a small supernet
// (lib/io/routes.h). Raw text input; seeds are valid tables (tests/fuzz/make-seeds).
// Oracles: a table that applies leaves a valid supernet whose routes are the table's, and
// format_route_table -> parse_route_table round-trips them.
#include "base/common.h"
#include "fuzz_common.h"
#include "nn/vit.h"
#include "io/routes.h"

#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    ufo::RouteTable table;
    try {
        table = ufo::parse_route_table(text, "fuzz.tsv");
    } catch (const ufo::Error& e) {
        fuzz::rejected(e);
        return 0;
    }
    for (const auto& name : table.tasks)
        if (!table.route.count(name)) fuzz::finding("parsed task " + name + " has no route");
    ufo::ViTConfig cfg = ufo::preset("tiny");
    cfg.depth = 3;
    cfg.tasks = {{"alpha", 2, {}, {}}, {"beta", 3, {}, {}}, {"gamma", 2, {}, {}}};
    cfg.make_supernet();
    try {
        ufo::apply_route_table(cfg, table, "fuzz.tsv");
    } catch (const ufo::Error& e) {
        fuzz::rejected(e);
        return 0;
    }
    try {
        cfg.validate("applied");
    } catch (const ufo::Error& e) {
        fuzz::finding(std::string("apply_route_table left an invalid supernet: ") + e.what());
    }
    for (const auto& t : cfg.tasks)
        if (table.route.count(t.name) && table.route.at(t.name) != t.route)
            fuzz::finding("task " + t.name + " did not get the table's route");
    ufo::RouteTable again;
    try {
        again = ufo::parse_route_table(ufo::format_route_table(cfg), "formatted");
    } catch (const ufo::Error& e) {
        fuzz::finding(std::string("formatted routes do not parse: ") + e.what());
    }
    for (const auto& t : cfg.tasks)
        if (!again.route.count(t.name) || again.route.at(t.name) != t.route)
            fuzz::finding("routes of task " + t.name + " do not round-trip");
    return 0;
}
