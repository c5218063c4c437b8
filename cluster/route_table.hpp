#pragma once
// A node's own routes as its peers see them: filter -> holders, a sequence
// number per change, and an order-independent digest (XOR of one hash per
// entry) that a peer compares with its copy. Not thread-safe: the node keeps
// it under its routes lock.
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "broker/core/stamp.hpp"

namespace flock::cluster {

inline std::uint64_t route_digest_part(std::string_view filter, std::uint32_t holders) {
  std::uint64_t h = core::node_hash(filter) ^ (std::uint64_t{holders} * 0x9E3779B97F4A7C15ull);
  h ^= h >> 31;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 29;
  return h;
}

// Routes as entries with a digest: the local table and every peer's replica.
class route_set {
 public:
  // holders 0 removes. Returns false when nothing changed.
  bool set(std::string_view filter, std::uint32_t holders) {
    auto it = entries_.find(std::string(filter));
    if (it != entries_.end()) {
      if (it->second == holders) return false;
      digest_ ^= route_digest_part(filter, it->second);
      if (holders == 0) {
        entries_.erase(it);
        return true;
      }
      it->second = holders;
    } else {
      if (holders == 0) return false;
      entries_.emplace(std::string(filter), holders);
    }
    digest_ ^= route_digest_part(filter, holders);
    return true;
  }
  std::uint32_t get(std::string_view filter) const {
    auto it = entries_.find(std::string(filter));
    return it == entries_.end() ? 0 : it->second;
  }
  void clear() {
    entries_.clear();
    digest_ = 0;
  }
  std::uint64_t digest() const { return digest_; }
  std::size_t size() const { return entries_.size(); }
  const std::unordered_map<std::string, std::uint32_t>& entries() const { return entries_; }

 private:
  std::unordered_map<std::string, std::uint32_t> entries_;
  std::uint64_t digest_ = 0;
};

}  // namespace flock::cluster
