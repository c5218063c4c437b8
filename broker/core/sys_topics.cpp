// $SYS/broker/... statistics, published as retained messages every
// sys_interval (the topics Mosquitto users know).
#include <string>

#include "broker/core/broker_impl.hpp"

namespace flock::core {

void broker::impl::publish_sys() {
  const auto now = this->now();
  auto put = [&](const char* topic, std::string value) {
    auto m = std::make_shared<message>();
    m->topic = topic;
    m->payload = std::move(value);
    m->retain = true;
    publish(m);
  };
  auto uptime = std::chrono::duration_cast<std::chrono::seconds>(now - started).count();
  std::size_t retained_count;
  {
    std::shared_lock lock(retained_mutex);
    retained_count = retained.size();
  }
  std::int64_t connected = clients_connected.load();
  std::int64_t sessions = static_cast<std::int64_t>(session_count());
  put("$SYS/broker/version", "flock " FLOCK_VERSION);
  put("$SYS/broker/uptime", std::to_string(uptime) + " seconds");
  put("$SYS/broker/clients/connected", std::to_string(connected));
  put("$SYS/broker/clients/disconnected", std::to_string(std::max<std::int64_t>(0, sessions - connected)));
  put("$SYS/broker/clients/total", std::to_string(std::max(sessions, connected)));
  put("$SYS/broker/clients/maximum", std::to_string(clients_maximum.load()));
  put("$SYS/broker/messages/received", std::to_string(total(stats, &worker_stats::messages_received)));
  put("$SYS/broker/messages/sent", std::to_string(total(stats, &worker_stats::messages_sent)));
  put("$SYS/broker/publish/messages/received", std::to_string(total(stats, &worker_stats::publish_received)));
  put("$SYS/broker/publish/messages/sent", std::to_string(total(stats, &worker_stats::publish_sent)));
  put("$SYS/broker/publish/messages/dropped",
      std::to_string(total(stats, &worker_stats::dropped_queue_full) + total(stats, &worker_stats::dropped_qos0_offline) +
                     total(stats, &worker_stats::dropped_expired) + total(stats, &worker_stats::dropped_too_large)));
  // Not in Mosquitto: refused by the ACL, refused while the store could not write.
  put("$SYS/broker/publish/messages/denied", std::to_string(total(stats, &worker_stats::publish_denied)));
  put("$SYS/broker/publish/messages/refused", std::to_string(total(stats, &worker_stats::publish_refused_store)));
  put("$SYS/broker/store/healthy", persistence.healthy() ? "1" : "0");
  put("$SYS/broker/load/bytes/received", std::to_string(total(stats, &worker_stats::bytes_received)));
  put("$SYS/broker/load/bytes/sent", std::to_string(total(stats, &worker_stats::bytes_sent)));
  put("$SYS/broker/bytes/received", std::to_string(total(stats, &worker_stats::bytes_received)));
  put("$SYS/broker/bytes/sent", std::to_string(total(stats, &worker_stats::bytes_sent)));
  put("$SYS/broker/subscriptions/count", std::to_string(subscription_count()));
  put("$SYS/broker/retained messages/count", std::to_string(retained_count));
  put("$SYS/broker/store/messages/count", std::to_string(retained_count));
  if (cluster) {
    auto c = cluster->status();
    put("$SYS/broker/cluster/nodes/known", std::to_string(c.peers_known));
    put("$SYS/broker/cluster/nodes/up", std::to_string(c.peers_up));
    put("$SYS/broker/cluster/routes/local", std::to_string(c.local_routes));
    put("$SYS/broker/cluster/routes/remote", std::to_string(remote.size()));
    put("$SYS/broker/cluster/forwarded", std::to_string(c.forwarded));
    put("$SYS/broker/cluster/dropped", std::to_string(c.dropped));
    put("$SYS/broker/cluster/unconfirmed", std::to_string(c.unconfirmed));
    put("$SYS/broker/cluster/outbox", std::to_string(c.outbox));
  }
}

}  // namespace flock::core
