// common.h — error type and small helpers shared by every part of libufo.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

namespace ufo {

// Every user-facing failure is an Error whose what() is one line: "<file>: <problem>".
// Tools catch it in main, print it to stderr and exit non-zero.
struct Error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// A mistake on the command line found after parsing (e.g. an output that would replace an
// input): tools exit 2, as for any other usage error.
struct UsageError : Error {
    using Error::Error;
};

[[noreturn]] inline void fail(const std::string& where, const std::string& what) {
    throw Error(where.empty() ? what : where + ": " + what);
}

inline constexpr const char* kVersion = "0.1.0";

}  // namespace ufo
