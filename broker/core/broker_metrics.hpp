#pragma once
// One reading of everything the broker counts, for $SYS and for Prometheus
// (broker/server/metrics_text.cpp). Taken on any thread: counters are summed
// over the workers' blocks (core/stats.hpp), sizes read under their locks.
#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "broker/core/histogram.hpp"
#include "broker/ports/cluster.hpp"
#include "broker/ports/store.hpp"

namespace flock::core {

struct broker_metrics {
  std::int64_t uptime_seconds = 0;
  std::int64_t clients_connected = 0;
  std::int64_t clients_maximum = 0;
  std::size_t sessions = 0;  // online and offline
  std::size_t subscriptions = 0;
  std::size_t retained = 0;
  bool store_healthy = true;

  std::uint64_t connections_total = 0;
  std::array<std::uint64_t, 256> connects_refused{};  // by MQTT 5 reason code
  std::array<std::uint64_t, 16> packets_received{};   // by control packet type
  std::array<std::uint64_t, 16> packets_sent{};
  std::uint64_t bytes_received = 0;
  std::uint64_t bytes_sent = 0;
  std::array<std::uint64_t, 3> publish_received{};  // by QoS
  std::array<std::uint64_t, 3> publish_sent{};

  // By the QoS the delivery would have had.
  std::array<std::uint64_t, 3> dropped_queue_full{};
  std::array<std::uint64_t, 3> dropped_qos0_offline{};
  std::array<std::uint64_t, 3> dropped_expired{};
  std::array<std::uint64_t, 3> dropped_too_large{};
  std::array<std::uint64_t, 3> delivery_denied{};  // the subscriber may not read the topic
  std::uint64_t publish_denied = 0;        // refused by the ACL
  std::uint64_t publish_refused_store = 0; // refused while the store could not write

  latency_reading deliver_local;      // publish-to-deliver, µs (core/stats.hpp)
  latency_reading deliver_forwarded;

  std::optional<ports::store::write_metrics> store;
  // Sessions by messages queued (broker::queue_depths); empty: not asked
  // for, or the workers did not answer in time.
  std::optional<queue_reading> queue_depths;  // empty: durability "memory"

  std::optional<ports::cluster_status> cluster;  // empty: a single node
  // The MQTT listeners' certificates (the server adds them; the cluster's is
  // in `cluster`).
  std::vector<ports::certificate_status> certificates;
  std::size_t remote_routes = 0;

  std::uint64_t dropped() const {
    std::uint64_t n = 0;
    for (std::size_t q = 0; q < 3; ++q)
      n += dropped_queue_full[q] + dropped_qos0_offline[q] + dropped_expired[q] + dropped_too_large[q];
    return n;
  }
};

}  // namespace flock::core
