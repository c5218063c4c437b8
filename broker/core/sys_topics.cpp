// $SYS/broker/... statistics, published as retained messages every
// sys_interval (the topics Mosquitto users know).
#include <string>

#include "broker/core/broker_impl.hpp"

namespace flock::core {

void broker::impl::publish_sys() {
  auto put = [&](const char* topic, std::string value) {
    auto msg = std::make_shared<message>();
    msg->topic = topic;
    msg->payload = std::move(value);
    msg->retain = true;
    publish(msg);
  };
  auto m = metrics();
  auto n = [](auto v) { return std::to_string(v); };
  auto sessions = static_cast<std::int64_t>(m.sessions);
  put("$SYS/broker/version", "flock " FLOCK_VERSION);
  put("$SYS/broker/uptime", n(m.uptime_seconds) + " seconds");
  put("$SYS/broker/clients/connected", n(m.clients_connected));
  put("$SYS/broker/clients/disconnected", n(std::max<std::int64_t>(0, sessions - m.clients_connected)));
  put("$SYS/broker/clients/total", n(std::max(sessions, m.clients_connected)));
  put("$SYS/broker/clients/maximum", n(m.clients_maximum));
  put("$SYS/broker/messages/received", n(sum_of(m.packets_received)));
  put("$SYS/broker/messages/sent", n(sum_of(m.packets_sent)));
  put("$SYS/broker/publish/messages/received", n(sum_of(m.publish_received)));
  put("$SYS/broker/publish/messages/sent", n(sum_of(m.publish_sent)));
  put("$SYS/broker/publish/messages/dropped", n(m.dropped()));
  // Not in Mosquitto: refused by the ACL, refused while the store could not write.
  put("$SYS/broker/publish/messages/denied", n(m.publish_denied));
  put("$SYS/broker/publish/messages/refused", n(m.publish_refused_store));
  put("$SYS/broker/store/healthy", m.store_healthy ? "1" : "0");
  put("$SYS/broker/load/bytes/received", n(m.bytes_received));
  put("$SYS/broker/load/bytes/sent", n(m.bytes_sent));
  put("$SYS/broker/bytes/received", n(m.bytes_received));
  put("$SYS/broker/bytes/sent", n(m.bytes_sent));
  put("$SYS/broker/subscriptions/count", n(m.subscriptions));
  put("$SYS/broker/retained messages/count", n(m.retained));
  put("$SYS/broker/store/messages/count", n(m.retained));
  if (m.cluster) {
    const auto& c = *m.cluster;
    put("$SYS/broker/cluster/nodes/known", n(c.peers_known));
    put("$SYS/broker/cluster/nodes/up", n(c.peers_up));
    put("$SYS/broker/cluster/routes/local", n(c.local_routes));
    put("$SYS/broker/cluster/routes/remote", n(m.remote_routes));
    put("$SYS/broker/cluster/forwarded", n(c.forwarded));
    put("$SYS/broker/cluster/dropped", n(c.dropped));
    put("$SYS/broker/cluster/unconfirmed", n(c.unconfirmed));
    put("$SYS/broker/cluster/outbox", n(c.outbox));
  }
}

}  // namespace flock::core
