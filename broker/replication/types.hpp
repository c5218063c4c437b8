#pragma once
// The vocabulary of replication (docs/replication.md): stores, partitions,
// epochs. Pure values; any thread.
#include <array>
#include <bit>
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

// The partitions a stored message has a copy in (the store keeps one per
// partition whose sessions reference it, so each partition's key range is
// complete by itself). Partitions of the store's layout, below
// default_partitions; 32 bytes, no allocation.
class partition_set {
 public:
  void add(partition_id p) { words_[p >> 6] |= std::uint64_t{1} << (p & 63); }
  void clear() { words_ = {}; }
  bool contains(partition_id p) const { return (words_[p >> 6] >> (p & 63)) & 1; }
  bool empty() const { return words_ == decltype(words_){}; }
  std::size_t size() const {
    std::size_t n = 0;
    for (auto w : words_) n += static_cast<std::size_t>(std::popcount(w));
    return n;
  }
  // fn(partition_id) for each member, in increasing order.
  template <class Fn>
  void for_each(Fn&& fn) const {
    for (std::size_t i = 0; i < words_.size(); ++i)
      for (std::uint64_t w = words_[i]; w != 0; w &= w - 1)
        fn(static_cast<partition_id>(i * 64 + static_cast<std::size_t>(std::countr_zero(w))));
  }
  bool operator==(const partition_set&) const = default;

 private:
  std::array<std::uint64_t, default_partitions / 64> words_{};
};

// Each ownership change of a partition starts a new epoch; a copy written
// under an older epoch is refused by whoever knows a newer one.
using epoch_t = std::uint64_t;

}  // namespace flock::replication
