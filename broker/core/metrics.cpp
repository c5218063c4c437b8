// One reading of the broker's counters and sizes (broker_metrics.hpp), for
// $SYS (sys_topics.cpp) and /metrics (broker/server/metrics_text.cpp).
#include <condition_variable>
#include <mutex>

#include "broker/core/broker_impl.hpp"

namespace flock::core {

broker_metrics broker::impl::metrics() {
  broker_metrics m;
  m.uptime_seconds = std::chrono::duration_cast<std::chrono::seconds>(now() - started).count();
  m.clients_connected = clients_connected.load();
  m.clients_maximum = clients_maximum.load();
  m.sessions = session_count();
  m.subscriptions = subscription_count();
  {
    std::shared_lock lock(retained_mutex);
    m.retained = retained.size();
  }
  m.store_healthy = persistence.healthy();
  if (auto* s = persistence.store()) m.store = s->metrics();
  m.connections_total = total(stats, &worker_stats::connections_total);
  m.connects_refused = totals(stats, &worker_stats::connects_refused);
  m.packets_received = totals(stats, &worker_stats::packets_received);
  m.packets_sent = totals(stats, &worker_stats::packets_sent);
  m.bytes_received = total(stats, &worker_stats::bytes_received);
  m.bytes_sent = total(stats, &worker_stats::bytes_sent);
  m.publish_received = totals(stats, &worker_stats::publish_received);
  m.publish_sent = totals(stats, &worker_stats::publish_sent);
  m.dropped_queue_full = totals(stats, &worker_stats::dropped_queue_full);
  m.dropped_qos0_offline = totals(stats, &worker_stats::dropped_qos0_offline);
  m.dropped_expired = totals(stats, &worker_stats::dropped_expired);
  m.dropped_too_large = totals(stats, &worker_stats::dropped_too_large);
  m.delivery_denied = totals(stats, &worker_stats::delivery_denied);
  m.publish_denied = total(stats, &worker_stats::publish_denied);
  m.publish_refused_store = total(stats, &worker_stats::publish_refused_store);
  for (const auto& w : stats) {
    m.deliver_local += w.deliver_local.read();
    m.deliver_forwarded += w.deliver_forwarded.read();
  }
  cluster->add_metrics(m);
  return m;
}

std::optional<queue_reading> broker::impl::queue_depths(std::chrono::milliseconds timeout) {
  // A session's queue belongs to its owning worker: each worker counts its
  // own sessions. The state is shared, so a worker that answers after the
  // deadline writes into it harmlessly.
  struct answers {
    std::mutex mutex;
    std::condition_variable done;
    queue_reading sum;
    std::uint32_t pending;
  };
  auto state = std::make_shared<answers>();
  state->pending = executor.worker_count();
  for (ports::worker_id w = 0; w < executor.worker_count(); ++w) {
    executor.post(w, [this, w, state] {
      queue_reading mine;
      {
        std::lock_guard lock(directory_mutex);
        for (const auto& [id, s] : directory) {
          if (s->owner() != w) continue;
          std::uint64_t n = s->queued_count();
          std::size_t i = 0;
          while (i < queue_bounds.size() && n > queue_bounds[i]) ++i;
          ++mine.counts[i];
          mine.sum += n;
        }
      }
      std::lock_guard lock(state->mutex);
      state->sum += mine;
      if (--state->pending == 0) state->done.notify_all();
    });
  }
  std::unique_lock lock(state->mutex);
  if (!state->done.wait_for(lock, timeout, [&] { return state->pending == 0; })) return std::nullopt;
  return state->sum;
}

}  // namespace flock::core
