#pragma once
// The vocabulary of replication (docs/replication.md): stores, partitions,
// epochs. Pure values; any thread.
#include <compare>
#include <cstdint>
#include <string>

namespace flock::replication {

// A data directory, not a process or a host name: a random 128-bit id
// written at its first start. A node whose directory was deleted comes back
// as a new store, empty, and never counts as a copy of what the old one held.
struct store_id {
  std::uint64_t hi = 0;
  std::uint64_t lo = 0;
  auto operator<=>(const store_id&) const = default;
  bool empty() const { return hi == 0 && lo == 0; }
  std::string hex() const;  // 32 lowercase hex digits, for logs and metrics
};

// Client ids hash onto a fixed number of partitions (256 by default, fixed
// when the controller is created).
using partition_id = std::uint16_t;
inline constexpr std::uint32_t default_partitions = 256;
inline constexpr std::uint32_t max_partitions = 1u << 16;

// Each ownership change of a partition starts a new epoch; a copy written
// under an older epoch is refused by whoever knows a newer one.
using epoch_t = std::uint64_t;

}  // namespace flock::replication
