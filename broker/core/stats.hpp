#pragma once
// Counters for $SYS and (later) Prometheus. One block per worker, written only
// by that worker (relaxed atomics, no sharing of cache lines), summed on read.
#include <array>
#include <atomic>
#include <cstdint>
#include <vector>

#include "broker/core/histogram.hpp"

namespace flock::core {

using counter = std::atomic<std::uint64_t>;

struct alignas(64) worker_stats {
  // By MQTT control packet type (1..15); 0 is unused.
  std::array<counter, 16> packets_received{};
  std::array<counter, 16> packets_sent{};
  std::atomic<std::uint64_t> bytes_received{0};
  std::atomic<std::uint64_t> bytes_sent{0};
  // PUBLISH packets by QoS.
  std::array<counter, 3> publish_received{};
  std::array<counter, 3> publish_sent{};
  // CONNECTs answered with a refusing CONNACK, by MQTT 5 reason code.
  std::array<counter, 256> connects_refused{};
  // Deliveries not made, by reason and by the QoS they would have had.
  std::array<counter, 3> dropped_queue_full{};
  std::array<counter, 3> dropped_qos0_offline{};
  std::array<counter, 3> dropped_expired{};
  std::array<counter, 3> dropped_too_large{};
  std::array<counter, 3> delivery_denied{};  // the subscriber may not read the topic
  std::atomic<std::uint64_t> publish_denied{0};   // PUBLISH or will refused by the ACL
  std::atomic<std::uint64_t> connections_total{0};
  std::atomic<std::uint64_t> publish_refused_store{0};  // QoS 1/2 refused while the store could not write
  // From the publisher's PUBLISH arriving (on whichever node) to the copy
  // written to the subscriber's connection; live deliveries only (not
  // retained-on-subscribe, not restored). Local publishers, then peers'.
  latency_histogram deliver_local{latency_bounds_us};
  latency_histogram deliver_forwarded{latency_bounds_us};

  void add(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) { c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
};

// Sums one counter over all workers.
inline std::uint64_t total(const std::vector<worker_stats>& all, counter worker_stats::*member) {
  std::uint64_t sum = 0;
  for (const auto& w : all) sum += (w.*member).load(std::memory_order_relaxed);
  return sum;
}

// Sums one array of counters over all workers, element by element.
template <std::size_t N>
std::array<std::uint64_t, N> totals(const std::vector<worker_stats>& all, std::array<counter, N> worker_stats::*member) {
  std::array<std::uint64_t, N> sum{};
  for (const auto& w : all)
    for (std::size_t i = 0; i < N; ++i) sum[i] += (w.*member)[i].load(std::memory_order_relaxed);
  return sum;
}

template <std::size_t N>
std::uint64_t sum_of(const std::array<std::uint64_t, N>& a) {
  std::uint64_t s = 0;
  for (auto v : a) s += v;
  return s;
}

}  // namespace flock::core
