#pragma once
// A total order on writes made anywhere in the cluster: a hybrid logical
// clock (wall-clock milliseconds plus a counter, never going backwards and
// always ahead of every stamp this node has seen), with the writing node's
// id to break ties. Retained messages resolve concurrent writes by it (last
// writer wins, the same way on every node), and session claims by it (the
// newest connection with a client id wins).
#include <atomic>
#include <chrono>
#include <compare>
#include <cstdint>
#include <string_view>

namespace flock::core {

struct stamp {
  std::uint64_t time = 0;  // (unix milliseconds << 16) | counter; 0: never stamped
  std::uint64_t node = 0;  // hash of the writing node's name
  auto operator<=>(const stamp&) const = default;
  bool empty() const { return time == 0 && node == 0; }
};

// FNV-1a: the node id inside stamps. Stable across builds and machines, as
// stamps are stored and compared between nodes. Its offset basis lost its
// last digit long ago (FNV's is 14695981039346656037); kept, since stored
// stamps carry it. replication::fnv1a64 is the published one.
inline std::uint64_t node_hash(std::string_view name) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ull;
  return h;
}

// Thread-safe: workers stamp, the cluster thread observes remote stamps.
class hybrid_clock {
 public:
  explicit hybrid_clock(std::uint64_t node = 0) : node_(node) {}
  void set_node(std::uint64_t node) { node_ = node; }
  std::uint64_t node() const { return node_; }

  stamp now() {
    const std::uint64_t wall = wall_time();
    std::uint64_t last = last_.load(std::memory_order_relaxed);
    std::uint64_t next;
    do {
      next = wall > last ? wall : last + 1;
    } while (!last_.compare_exchange_weak(last, next, std::memory_order_relaxed));
    return {next, node_};
  }
  // A stamp from elsewhere: ours stay ahead of it.
  void observe(const stamp& s) {
    std::uint64_t last = last_.load(std::memory_order_relaxed);
    while (s.time > last && !last_.compare_exchange_weak(last, s.time, std::memory_order_relaxed)) {
    }
  }

 private:
  static std::uint64_t wall_time() {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch());
    return static_cast<std::uint64_t>(ms.count()) << 16;
  }
  std::uint64_t node_;
  std::atomic<std::uint64_t> last_{0};
};

}  // namespace flock::core
