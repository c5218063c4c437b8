#pragma once
// Counters for $SYS and (later) Prometheus. One block per worker, written only
// by that worker (relaxed atomics, no sharing of cache lines), summed on read.
#include <atomic>
#include <cstdint>
#include <vector>

namespace flock::core {

struct alignas(64) worker_stats {
  std::atomic<std::uint64_t> messages_received{0};
  std::atomic<std::uint64_t> messages_sent{0};
  std::atomic<std::uint64_t> bytes_received{0};
  std::atomic<std::uint64_t> bytes_sent{0};
  std::atomic<std::uint64_t> publish_received{0};
  std::atomic<std::uint64_t> publish_sent{0};
  std::atomic<std::uint64_t> dropped_queue_full{0};
  std::atomic<std::uint64_t> dropped_qos0_offline{0};
  std::atomic<std::uint64_t> dropped_expired{0};
  std::atomic<std::uint64_t> dropped_too_large{0};
  std::atomic<std::uint64_t> publish_denied{0};   // PUBLISH or will refused by the ACL
  std::atomic<std::uint64_t> delivery_denied{0};  // not delivered: the subscriber may not read the topic
  std::atomic<std::uint64_t> connections_total{0};
  std::atomic<std::uint64_t> publish_refused_store{0};  // QoS 1/2 refused while the store could not write

  void add(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) { c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
};

// Sums one counter over all workers.
template <class Member>
std::uint64_t total(const std::vector<worker_stats>& all, Member member) {
  std::uint64_t sum = 0;
  for (const auto& w : all) sum += (w.*member).load(std::memory_order_relaxed);
  return sum;
}

}  // namespace flock::core
