#pragma once
// Recent clears of retained topics (tombstones), kept so that a write older
// than the clear, arriving late from a peer or from a node back from a
// netsplit, does not bring the topic back. Bounded by count and age: a clear
// older than that is forgotten (a far older write could then return).
// Not thread-safe: the broker keeps it under its retained lock.
#include <chrono>
#include <cstddef>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>

#include "broker/core/stamp.hpp"
#include "broker/ports/clock.hpp"

namespace flock::clustering {

class retained_clears {
 public:
  static constexpr std::size_t max_entries = 100000;
  static constexpr std::chrono::hours max_age{24};

  void put(std::string_view topic, core::stamp s, ports::time_point now) {
    auto [it, added] = by_topic_.try_emplace(std::string(topic), s);
    if (!added) {
      if (it->second < s) it->second = s;
      return;
    }
    order_.push_back({it->first, now});
    while (order_.size() > max_entries) pop_oldest();
  }
  // The stamp of the topic's clear, or an empty stamp.
  core::stamp find(std::string_view topic) const {
    auto it = by_topic_.find(std::string(topic));
    return it == by_topic_.end() ? core::stamp{} : it->second;
  }
  void erase(std::string_view topic) { by_topic_.erase(std::string(topic)); }
  void expire(ports::time_point now) {
    while (!order_.empty() && now - order_.front().noted > max_age) pop_oldest();
  }
  template <class F>
  void for_each(F&& fn) const {
    for (const auto& [topic, s] : by_topic_) fn(topic, s);
  }
  std::size_t size() const { return by_topic_.size(); }

 private:
  struct entry {
    std::string topic;
    ports::time_point noted;
  };
  void pop_oldest() {
    by_topic_.erase(order_.front().topic);  // a no-op when erase() took it already
    order_.pop_front();
  }
  std::unordered_map<std::string, core::stamp> by_topic_;
  std::deque<entry> order_;
};

// One retained message's part of the digest: XOR of these over all retained
// messages is the same on two nodes holding the same (topic, stamp) pairs.
inline std::uint64_t retained_digest_part(std::string_view topic, const core::stamp& s) {
  std::uint64_t h = core::node_hash(topic) ^ (s.time * 0x9E3779B97F4A7C15ull) ^ (s.node * 0xC2B2AE3D27D4EB4Full);
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

}  // namespace flock::clustering
