// routes.cpp — route table text format, parsing and validation.
#include "io/routes.h"

#include "base/common.h"
#include "base/bounds.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <sys/stat.h>

namespace ufo {

std::string format_route_table(const ViTConfig& cfg) {
    std::ostringstream s;
    s << "task\tlayer\tpath\n";
    for (const auto& t : cfg.tasks)
        for (size_t l = 0; l < t.route.size(); ++l) s << t.name << '\t' << l << '\t' << (t.route[l] ? "own" : "shared") << '\n';
    return s.str();
}

RouteTable parse_route_table(const std::string& text, const std::string& where) {
    RouteTable rt;
    std::map<std::string, std::map<int, int>> seen;
    std::istringstream in(text);
    std::string line;
    int lineno = 0;
    bool header = false;
    while (std::getline(in, line)) {
        ++lineno;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty() || line[0] == '#') continue;
        const std::string at = where + ":" + std::to_string(lineno);
        std::vector<std::string> f;
        std::istringstream ls(line);
        for (std::string x; std::getline(ls, x, '\t');) f.push_back(x);
        if (!header) {
            if (f.size() < 3 || f[0] != "task" || f[1] != "layer" || f[2] != "path")
                fail(at, "not a route table (expected the header task<TAB>layer<TAB>path)");
            header = true;
            continue;
        }
        if (f.size() < 3) fail(at, "expected task<TAB>layer<TAB>path");
        // Digits only ("0", "12"): no sign, no spaces, no leading zeros, at most the deepest model.
        int layer = -1;
        if (!f[1].empty() && f[1].size() <= 4 && f[1].find_first_not_of("0123456789") == std::string::npos &&
            (f[1].size() == 1 || f[1][0] != '0'))
            layer = std::stoi(f[1]);
        if (layer < 0) fail(at, "layer '" + f[1] + "' is not a non-negative integer");
        if (layer >= bounds::kMaxDepth)
            fail(at, "layer " + f[1] + " is above the limit of " + std::to_string(bounds::kMaxDepth - 1));
        int path;
        if (f[2] == "shared") path = 0;
        else if (f[2] == "own") path = 1;
        else fail(at, "path '" + f[2] + "' is neither shared nor own");
        if (!seen.count(f[0])) rt.tasks.push_back(f[0]);
        if (seen[f[0]].count(layer)) fail(at, "task " + f[0] + " layer " + f[1] + " appears twice");
        seen[f[0]][layer] = path;
    }
    if (!header) fail(where, "empty route table");
    for (const auto& [task, layers] : seen) {
        std::vector<int> r(layers.size());
        int expect = 0;
        for (const auto& [l, p] : layers) {
            if (l != expect)
                fail(where, "task " + task + " has no entry for layer " + std::to_string(expect) + " (it lists " +
                                std::to_string(layers.size()) + " layers)");
            r[l] = p;
            ++expect;
        }
        rt.route[task] = r;
    }
    return rt;
}

RouteTable read_route_table(const std::string& path) {
    const std::string name = path == "-" ? "<stdin>" : path;
    std::FILE* in = stdin;
    if (path != "-") {
        struct stat st {};
        if (::stat(path.c_str(), &st) != 0)
            fail(path, errno == ENOENT || errno == ENOTDIR ? "no such file" : std::strerror(errno));
        if (S_ISDIR(st.st_mode)) fail(path, "is a directory, expected a route table");
        in = std::fopen(path.c_str(), "rb");
        if (!in) fail(path, std::string("cannot open route table: ") + std::strerror(errno));
    }
    // Bounded: a route table is a few lines per task and layer.
    std::string text;
    char buf[1 << 14];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, in)) > 0 && int64_t(text.size()) <= bounds::kMaxTextFileBytes)
        text.append(buf, n);
    const bool bad = std::ferror(in);
    if (in != stdin) std::fclose(in);
    if (bad) fail(name, "read error");
    if (int64_t(text.size()) > bounds::kMaxTextFileBytes)
        fail(name, "route table is larger than the limit of " + bounds::human_bytes(double(bounds::kMaxTextFileBytes)));
    return parse_route_table(text, name);
}

void apply_route_table(ViTConfig& cfg, const RouteTable& table, const std::string& where) {
    if (!cfg.is_supernet()) fail(where, "routes apply only to a Task-MoE supernet");
    for (const auto& name : table.tasks) {
        std::string all;
        int t = -1;
        for (size_t i = 0; i < cfg.tasks.size(); ++i) {
            if (cfg.tasks[i].name == name) t = int(i);
            all += (i ? ", " : "") + cfg.tasks[i].name;
        }
        if (t < 0) fail(where, "route table names task " + name + ", which the supernet does not have (tasks: " + all + ")");
        const auto& r = table.route.at(name);
        if (int(r.size()) != cfg.depth)
            fail(where, "route table has " + std::to_string(r.size()) + (r.size() == 1 ? " layer" : " layers") + " for task " + name +
                            ", the supernet has " + std::to_string(cfg.depth));
        cfg.tasks[t].route = r;
    }
}

}  // namespace ufo
