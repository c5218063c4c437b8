// See errors.hpp.
#include "storage/errors.hpp"

namespace flock::storage {

void throw_corrupt(std::string_view location, std::string_view detail) {
  std::string msg(location);
  msg += " is corrupt: ";
  msg += detail;
  msg += "; flockd will not start on it: move it away or restore a backup";
  throw std::runtime_error(msg);
}

std::string hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out = "0x";
  out.reserve(2 + 2 * bytes.size());
  for (unsigned char b : bytes) {
    out += digits[b >> 4];
    out += digits[b & 0xF];
  }
  return out;
}

}  // namespace flock::storage
