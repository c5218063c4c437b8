#pragma once
// The one-line start-up errors of the store. flockd prints what() and exits,
// so each message names the data directory and says what to do; these
// helpers keep the wording the same wherever the problem is found.
#include <stdexcept>
#include <string>
#include <string_view>

namespace flock::storage {

// "data directory X is corrupt: DETAIL; flockd will not start on it: move it
// away or restore a backup". Never repair corrupt data silently: what looks
// like garbage may be the only copy of someone's messages.
[[noreturn]] void throw_corrupt(std::string_view location, std::string_view detail);

// Bytes as lowercase hex, for keys in error messages ("0x0000000000000007").
std::string hex(std::string_view bytes);

}  // namespace flock::storage
