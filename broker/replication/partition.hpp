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

inline partition_id partition_of(std::string_view client_id, std::uint32_t partitions = default_partitions) {
  return static_cast<partition_id>(fnv1a64(client_id) % partitions);
}

// A session id carries its partition in its top 16 bits, above a 48-bit
// counter, so that every record the store keys by session id (big-endian)
// falls in its partition's key range without a table from one to the other.
inline constexpr int session_counter_bits = 48;
inline constexpr std::uint64_t session_counter_mask = (std::uint64_t{1} << session_counter_bits) - 1;

constexpr std::uint64_t make_session_id(partition_id p, std::uint64_t counter) {
  return (std::uint64_t{p} << session_counter_bits) | (counter & session_counter_mask);
}
constexpr partition_id partition_of_session(std::uint64_t session_id) {
  return static_cast<partition_id>(session_id >> session_counter_bits);
}

}  // namespace flock::replication
