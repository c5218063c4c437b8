// Builds prometheus-cpp metric families from a broker_metrics reading at
// scrape time. The hot path keeps its own per-worker counters (core/stats.hpp)
// rather than prometheus-cpp's objects: a relaxed add on a worker-owned cache
// line costs nothing, and a scrape sums them once.
#include "broker/server/metrics_text.hpp"

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <deque>
#include <limits>
#include <sstream>
#include <utility>
#include <vector>

#include "broker/codec/packet.hpp"
#include "broker/codec/reason_code.hpp"

namespace flock::server {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using labels = std::vector<ClientMetric::Label>;

class families {
 public:
  MetricFamily& family(std::string name, std::string help, MetricType type) {
    all_.push_back(MetricFamily{std::move(name), std::move(help), type, {}});
    return all_.back();
  }
  void counter(std::string name, std::string help, double value, labels l = {}) {
    add(family(std::move(name), std::move(help), MetricType::Counter), value, std::move(l));
  }
  void gauge(std::string name, std::string help, double value, labels l = {}) {
    add(family(std::move(name), std::move(help), MetricType::Gauge), value, std::move(l));
  }
  // A histogram whose values are `bounds` units; exported as unit / per_unit
  // (microseconds as seconds: 1e6). Divided, not multiplied by 1e-6: 100 /
  // 1e6 is the double nearest 0.0001 and prints as le="0.0001", while
  // 100 * 1e-6 prints as le="9.999999999999999e-05", which a query for
  // le="0.0001" would not find.
  template <std::size_t N>
  static void add_scaled(MetricFamily& f, const core::histogram_reading<N>& r,
                         const std::array<std::uint64_t, N>& bounds, double per_unit, labels l = {}) {
    ClientMetric c;
    c.label = std::move(l);
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < N; ++i) {
      cumulative += r.counts[i];
      c.histogram.bucket.push_back({cumulative, double(bounds[i]) / per_unit});
    }
    cumulative += r.counts[N];
    c.histogram.bucket.push_back({cumulative, std::numeric_limits<double>::infinity()});
    c.histogram.sample_count = cumulative;
    c.histogram.sample_sum = double(r.sum) / per_unit;
    f.metric.push_back(std::move(c));
  }
  template <std::size_t N>
  static void add_us(MetricFamily& f, const core::histogram_reading<N>& r, const std::array<std::uint64_t, N>& bounds,
                     labels l = {}) {
    add_scaled(f, r, bounds, 1e6, std::move(l));
  }
  static void add(MetricFamily& f, double value, labels l = {}) {
    ClientMetric c;
    c.label = std::move(l);
    if (f.type == MetricType::Counter) c.counter.value = value;
    else c.gauge.value = value;
    f.metric.push_back(std::move(c));
  }
  std::string text() const {
    std::ostringstream out;
    prometheus::TextSerializer().Serialize(out, std::vector<MetricFamily>(all_.begin(), all_.end()));
    return out.str();
  }

 private:
  // A deque: family() hands out references that later families must not move.
  std::deque<MetricFamily> all_;
};

const char* packet_name(std::size_t type) {
  static constexpr const char* names[] = {"",        "connect",  "connack",     "publish",  "puback",
                                          "pubrec",  "pubrel",   "pubcomp",     "subscribe", "suback",
                                          "unsubscribe", "unsuback", "pingreq", "pingresp", "disconnect",
                                          "auth"};
  return names[type];
}

// The CONNACK reasons a broker refuses a connection with, as label values.
const char* refusal_name(std::uint8_t code) {
  namespace rc = codec::rc;
  switch (code) {
    case rc::malformed_packet: return "malformed_packet";
    case rc::protocol_error: return "protocol_error";
    case rc::unsupported_protocol_version: return "unsupported_protocol_version";
    case rc::client_identifier_not_valid: return "client_identifier_not_valid";
    case rc::bad_user_name_or_password: return "bad_user_name_or_password";
    case rc::not_authorized: return "not_authorized";
    case rc::server_unavailable: return "server_unavailable";
    case rc::server_busy: return "server_busy";
    case rc::banned: return "banned";
    case rc::bad_authentication_method: return "bad_authentication_method";
    case rc::packet_too_large: return "packet_too_large";
    case rc::quota_exceeded: return "quota_exceeded";
    case rc::connection_rate_exceeded: return "connection_rate_exceeded";
    default: return "other";
  }
}

const char* qos_label(std::size_t q) { return q == 0 ? "0" : q == 1 ? "1" : "2"; }

}  // namespace

std::string metrics_text(const core::broker_metrics& m) {
  families f;
  f.gauge("flock_build_info", "Always 1; the flockd version is in the label.", 1, {{"version", FLOCK_VERSION}});
  f.gauge("flock_uptime_seconds", "Seconds since this flockd process started.", double(m.uptime_seconds));

  f.gauge("flock_connections", "MQTT connections currently open.", double(m.clients_connected));
  f.gauge("flock_connections_max", "Most MQTT connections open at once since start.", double(m.clients_maximum));
  f.counter("flock_connections_total", "MQTT connections accepted (CONNACK success).", double(m.connections_total));
  {
    auto& fam = f.family("flock_connections_rejected_total", "CONNECTs refused, by CONNACK reason.",
                         MetricType::Counter);
    // Sum per label: several codes map to "other".
    std::vector<std::pair<std::string, double>> by_reason;
    for (std::size_t code = 0; code < m.connects_refused.size(); ++code) {
      if (m.connects_refused[code] == 0) continue;
      std::string name = refusal_name(static_cast<std::uint8_t>(code));
      auto it = std::find_if(by_reason.begin(), by_reason.end(), [&](auto& p) { return p.first == name; });
      if (it == by_reason.end()) by_reason.emplace_back(name, double(m.connects_refused[code]));
      else it->second += double(m.connects_refused[code]);
    }
    // Always expose the common reasons, so alerts see 0 rather than nothing.
    for (const char* common : {"bad_user_name_or_password", "not_authorized", "client_identifier_not_valid"})
      if (std::none_of(by_reason.begin(), by_reason.end(), [&](auto& p) { return p.first == common; }))
        by_reason.emplace_back(common, 0.0);
    for (auto& [name, value] : by_reason) families::add(fam, value, {{"reason", name}});
  }

  auto online = static_cast<double>(std::min<std::int64_t>(m.clients_connected, std::int64_t(m.sessions)));
  {
    auto& fam = f.family("flock_sessions", "Sessions held by this node, by state.", MetricType::Gauge);
    families::add(fam, online, {{"state", "online"}});
    families::add(fam, double(m.sessions) - online, {{"state", "offline"}});
  }
  if (m.queue_depths) {
    // A histogram over sessions (not over time): each session counts once,
    // in the bucket of its current queue length.
    auto& fam = f.family("flock_session_queue_depth", "Sessions by messages queued for them, now.",
                         MetricType::Histogram);
    families::add_scaled(fam, *m.queue_depths, core::queue_bounds, 1.0);
  }
  f.gauge("flock_subscriptions", "Subscriptions held by this node's sessions.", double(m.subscriptions));
  f.gauge("flock_retained_messages", "Retained messages stored.", double(m.retained));
  if (m.store) {
    auto& lat = f.family("flock_store_write_duration_seconds",
                         "Time to write one group of changes to RocksDB (fsync included with durability sync; "
                         "retries included).",
                         MetricType::Histogram);
    families::add_us(lat, m.store->write_us, core::latency_bounds_us);
    auto& ops = f.family("flock_store_write_batch_operations", "Operations per group written to RocksDB.",
                         MetricType::Histogram);
    families::add_scaled(ops, m.store->batch_ops, core::size_bounds, 1.0);
    f.counter("flock_store_write_failures_total", "Writes to RocksDB that failed (and were retried).",
              double(m.store->failed_writes));
  }
  f.gauge("flock_store_healthy", "1 while the durable store can write, 0 while QoS 1/2 publishes are refused.",
          m.store_healthy ? 1 : 0);

  {
    auto& in = f.family("flock_messages_received_total", "PUBLISH packets received from clients, by QoS.",
                        MetricType::Counter);
    auto& out = f.family("flock_messages_sent_total", "PUBLISH packets sent to clients, by QoS.",
                         MetricType::Counter);
    for (std::size_t q = 0; q < 3; ++q) {
      families::add(in, double(m.publish_received[q]), {{"qos", qos_label(q)}});
      families::add(out, double(m.publish_sent[q]), {{"qos", qos_label(q)}});
    }
  }
  {
    auto& fam = f.family("flock_messages_dropped_total",
                         "Messages not delivered to a subscriber, by reason and by the QoS they would have had.",
                         MetricType::Counter);
    for (std::size_t q = 0; q < 3; ++q) {
      families::add(fam, double(m.dropped_queue_full[q]), {{"qos", qos_label(q)}, {"reason", "queue_full"}});
      families::add(fam, double(m.dropped_qos0_offline[q]), {{"qos", qos_label(q)}, {"reason", "qos0_offline"}});
      families::add(fam, double(m.dropped_expired[q]), {{"qos", qos_label(q)}, {"reason", "expired"}});
      families::add(fam, double(m.dropped_too_large[q]), {{"qos", qos_label(q)}, {"reason", "too_large_for_client"}});
      families::add(fam, double(m.delivery_denied[q]), {{"qos", qos_label(q)}, {"reason", "not_authorized"}});
    }
  }
  {
    auto& fam = f.family("flock_publishes_refused_total", "PUBLISH packets (and wills) refused, by reason.",
                         MetricType::Counter);
    families::add(fam, double(m.publish_denied), {{"reason", "not_authorized"}});
    families::add(fam, double(m.publish_refused_store), {{"reason", "store_unavailable"}});
  }
  f.counter("flock_received_bytes_total", "Bytes of MQTT received from clients.", double(m.bytes_received));
  f.counter("flock_sent_bytes_total", "Bytes of MQTT sent to clients.", double(m.bytes_sent));
  {
    auto& in = f.family("flock_packets_received_total", "MQTT control packets received, by type.",
                        MetricType::Counter);
    auto& out = f.family("flock_packets_sent_total", "MQTT control packets sent, by type.", MetricType::Counter);
    for (std::size_t t = 1; t < 16; ++t) {
      families::add(in, double(m.packets_received[t]), {{"type", packet_name(t)}});
      families::add(out, double(m.packets_sent[t]), {{"type", packet_name(t)}});
    }
  }

  {
    auto& fam = f.family("flock_delivery_latency_seconds",
                         "From a publisher's PUBLISH arriving (on this or another node) to the copy written to a "
                         "subscriber, by where the publisher was.",
                         MetricType::Histogram);
    families::add_us(fam, m.deliver_local, core::latency_bounds_us, {{"origin", "local"}});
    families::add_us(fam, m.deliver_forwarded, core::latency_bounds_us, {{"origin", "peer"}});
  }

  if (m.cluster) {
    const auto& c = *m.cluster;
    {
      auto& fam = f.family("flock_cluster_peers", "Other nodes of the cluster, by state.", MetricType::Gauge);
      families::add(fam, double(c.peers_known), {{"state", "known"}});
      families::add(fam, double(c.peers_up), {{"state", "up"}});
    }
    {
      auto& fam = f.family("flock_cluster_routes", "Topic filters in the cluster route table, by origin.",
                           MetricType::Gauge);
      families::add(fam, double(c.local_routes), {{"origin", "local"}});
      families::add(fam, double(m.remote_routes), {{"origin", "remote"}});
    }
    f.counter("flock_cluster_forwarded_total", "Copies of publishes forwarded to other nodes.", double(c.forwarded));
    f.counter("flock_cluster_forward_dropped_total",
              "Copies not forwarded: no stream to the peer (QoS 0) or its outbox full.", double(c.dropped));
    f.counter("flock_cluster_unconfirmed_acks_total",
              "Publisher acks released before a peer confirmed its copy (timeout or link lost).",
              double(c.unconfirmed));
    f.gauge("flock_cluster_outbox_messages", "Forwarded copies waiting for a peer's confirmation.", double(c.outbox));
    {
      auto& fwd = f.family("flock_cluster_peer_forwarded_total", "Copies of publishes forwarded, by peer.",
                           MetricType::Counter);
      auto& drop = f.family("flock_cluster_peer_forward_dropped_total", "Copies not forwarded, by peer.",
                            MetricType::Counter);
      auto& box = f.family("flock_cluster_peer_outbox_messages", "Copies waiting for the peer, by peer.",
                           MetricType::Gauge);
      auto& lag = f.family("flock_cluster_route_lag_seconds",
                           "From a peer's route change (its clock) until this node routes by it, by peer.",
                           MetricType::Histogram);
      for (const auto& p : c.peers) {
        families::add_us(lag, p.route_lag, core::latency_bounds_us, {{"peer", p.name}});
        families::add(fwd, double(p.forwarded), {{"peer", p.name}});
        families::add(drop, double(p.dropped), {{"peer", p.name}});
        families::add(box, double(p.outbox), {{"peer", p.name}});
      }
    }
    f.counter("flock_cluster_streams_opened_total", "Streams to peers that came up (reconnects count here).",
              double(c.streams_opened));
    {
      auto& fam = f.family("flock_cluster_peers_refused_total",
                           "Would-be peers refused before they could join, by reason.", MetricType::Counter);
      for (std::size_t i = 0; i < c.refused.size(); ++i)
        families::add(fam, double(c.refused[i]), {{"reason", ports::peer_refusal_names[i]}});
    }
    if (c.controller.running) {
      const auto& ctl = c.controller;
      f.gauge("flock_controller_leader", "1 while this node leads the replication controller.", ctl.leads ? 1 : 0);
      f.gauge("flock_controller_lease",
              "1 while this node leads the replication controller or follows a leader it hears from.",
              ctl.lease ? 1 : 0);
      f.gauge("flock_controller_term", "The replication controller's Raft term as this node knows it.",
              double(ctl.term));
      f.gauge("flock_controller_commit_index", "The controller log's last entry this node knows committed.",
              double(ctl.commit_index));
      f.gauge("flock_controller_voters", "Voters in the controller's Raft configuration.", double(ctl.voters));
      auto& stores = f.family("flock_controller_stores", "Data directories the controller knows, by state.",
                              MetricType::Gauge);
      families::add(stores, double(ctl.members - ctl.fenced), {{"state", "up"}});
      families::add(stores, double(ctl.fenced), {{"state", "fenced"}});
      auto& parts = f.family("flock_replication_partitions",
                             "Partitions of persistent sessions this store holds, by role, as the controller "
                             "placed them.",
                             MetricType::Gauge);
      families::add(parts, double(ctl.owned.size()), {{"role", "owner"}});
      families::add(parts, double(ctl.following.size()), {{"role", "follower"}});
      families::add(parts, double(ctl.catching_up.size()), {{"role", "learner"}});
      f.counter("flock_replication_refused_total", "Parts from owners this store refused (stale epoch, malformed).",
                double(c.replication_refused));
      f.gauge("flock_replication_snapshots_sending",
              "Snapshots of this store's partitions on their way to followers that have no copy or another one.",
              double(c.snapshots_sending));
      auto& snapshots = f.family("flock_replication_snapshots_total",
                                 "Snapshots of this store's partitions sent to followers, by result.",
                                 MetricType::Counter);
      families::add(snapshots, double(c.snapshots_sent), {{"result", "installed"}});
      families::add(snapshots, double(c.snapshots_failed), {{"result", "failed"}});
      f.counter("flock_replication_snapshot_bytes_total", "Bytes of snapshot chunks sent to followers.",
                double(c.snapshot_bytes_sent));
      f.counter("flock_replication_snapshots_installed_total", "Snapshots from owners installed in this store.",
                double(c.snapshots_installed));
      auto& backlog = f.family("flock_replication_peer_backlog_groups",
                               "Groups of this store's partitions sent to a follower and not yet acknowledged.",
                               MetricType::Gauge);
      for (const auto& p : c.peers) families::add(backlog, double(p.replication_backlog), {{"peer", p.name}});
    }
  }
  auto certificates = m.certificates;
  if (m.cluster && m.cluster->certificate.not_after_unix != 0) certificates.push_back(m.cluster->certificate);
  if (!certificates.empty()) {
    auto& expiry = f.family("flock_tls_certificate_expiry_timestamp_seconds",
                            "When the certificate in use expires (notAfter, unix time), by listener.",
                            MetricType::Gauge);
    auto& reloads = f.family("flock_tls_certificate_reloads_total",
                             "Certificate files re-read after they changed, by listener and result.",
                             MetricType::Counter);
    for (const auto& cert : certificates) {
      families::add(expiry, double(cert.not_after_unix), {{"listener", cert.listener}});
      families::add(reloads, double(cert.reloads_ok), {{"listener", cert.listener}, {"result", "ok"}});
      families::add(reloads, double(cert.reloads_failed), {{"listener", cert.listener}, {"result", "error"}});
    }
  }
  return f.text();
}

}  // namespace flock::server
