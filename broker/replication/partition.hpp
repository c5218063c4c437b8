#pragma once
// Which partition a client id belongs to: FNV-1a of its bytes modulo the
// partition count. Stable across builds, machines and releases, since every
// node must agree and the store keys by it.
#include <cstdint>
#include <string_view>

#include "broker/replication/types.hpp"

namespace flock::replication {

// FNV-1a, 64 bits, with the published offset basis and prime.
constexpr std::uint64_t fnv1a64(std::string_view bytes) {
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : bytes) h = (h ^ c) * 1099511628211ull;
  return h;
}

inline partition_id partition_of(std::string_view client_id, std::uint32_t partitions) {
  return static_cast<partition_id>(fnv1a64(client_id) % partitions);
}

}  // namespace flock::replication
