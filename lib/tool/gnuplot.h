// gnuplot.h — PNG plots drawn by gnuplot (Debian: gnuplot-nox), written atomically.
#pragma once
#include "io/atomic_file.h"

#include <string>

namespace ufo {

// A gnuplot single-quoted string: no escapes but '' for a quote; newlines become spaces.
std::string gp_quote(const std::string& s);

// The terminal line that picks pngcairo (anti-aliased text) where gnuplot has it and the libgd
// png terminal otherwise, at width x height pixels.
std::string gp_png_terminal(int width, int height);

// Runs gnuplot on `script`, which must draw into out.tmp(); the caller commits `out` last, so a
// later failure leaves no plot behind. Errors name out.path(): gnuplot missing (with the
// Debian package to install), gnuplot's own last error line, or no image written.
void run_gnuplot(const std::string& script, AtomicPath& out);

}  // namespace ufo
