#include "broker/app/config_keys.hpp"

#include <limits>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "broker/server/log.hpp"

namespace flock::app {

bool parse_bool(const std::string& text) {
  if (text == "true" || text == "True" || text == "TRUE" || text == "yes" || text == "on") return true;
  if (text == "false" || text == "False" || text == "FALSE" || text == "no" || text == "off") return false;
  throw std::invalid_argument("expected true or false, got '" + text + "'");
}

std::uint64_t parse_unsigned(const std::string& text, std::uint64_t min, std::uint64_t max) {
  auto bounds = std::to_string(min) + ".." + std::to_string(max);
  auto range = "an integer in " + bounds;
  if (text.empty()) throw std::invalid_argument("expected " + range + ", got nothing");
  std::uint64_t value = 0;
  for (char ch : text) {
    if (ch < '0' || ch > '9') throw std::invalid_argument("expected " + range + ", got '" + text + "'");
    auto digit = static_cast<std::uint64_t>(ch - '0');
    if (value > (std::numeric_limits<std::uint64_t>::max() - digit) / 10)
      throw std::invalid_argument("value " + text + " out of range (" + bounds + ")");
    value = value * 10 + digit;
  }
  if (value < min || value > max)
    throw std::invalid_argument("value " + text + " out of range (" + bounds + ")");
  return value;
}

std::string flag_name(std::string_view key) {
  std::string out = "--";
  for (char ch : key) out.push_back(ch == '_' ? '-' : ch);
  return out;
}

namespace {

// Builders: `access` returns a reference to the field inside a config.
template <class Access>
key_spec unsigned_key(std::string_view key, std::string_view help, Access access, std::uint64_t min,
                      std::uint64_t max) {
  return {key, "N", help,
          [access, min, max](config& c, const std::string& v) {
            auto& field = access(c);
            field = static_cast<std::remove_reference_t<decltype(field)>>(parse_unsigned(v, min, max));
          },
          [access](const config& c) { return std::to_string(access(const_cast<config&>(c))); }};
}

template <class Access>
key_spec seconds_key(std::string_view key, std::string_view help, Access access, std::uint64_t min,
                     std::uint64_t max) {
  return {key, "SECONDS", help,
          [access, min, max](config& c, const std::string& v) {
            access(c) = std::chrono::seconds(parse_unsigned(v, min, max));
          },
          [access](const config& c) { return std::to_string(access(const_cast<config&>(c)).count()); }};
}

template <class Access>
key_spec bool_key(std::string_view key, std::string_view help, Access access) {
  return {key, "BOOL", help, [access](config& c, const std::string& v) { access(c) = parse_bool(v); },
          [access](const config& c) -> std::string { return access(const_cast<config&>(c)) ? "true" : "false"; }};
}

template <class Access>
key_spec string_key(std::string_view key, std::string_view hint, std::string_view help, Access access,
                    bool allow_empty) {
  return {key, hint, help,
          [access, allow_empty](config& c, const std::string& v) {
            if (v.empty() && !allow_empty) throw std::invalid_argument("must not be empty");
            access(c) = v;
          },
          [access](const config& c) -> std::string {
            const std::string& v = access(const_cast<config&>(c));
            return v.empty() ? "(none)" : v;
          }};
}

template <class Access>
key_spec millis_key(std::string_view key, std::string_view help, Access access, std::uint64_t min, std::uint64_t max) {
  return {key, "MS", help,
          [access, min, max](config& c, const std::string& v) {
            access(c) = std::chrono::milliseconds(parse_unsigned(v, min, max));
          },
          [access](const config& c) { return std::to_string(access(const_cast<config&>(c)).count()); }};
}

std::vector<std::string> split_list(const std::string& v) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= v.size()) {
    auto end = v.find(',', start);
    if (end == std::string::npos) end = v.size();
    auto item = v.substr(start, end - start);
    while (!item.empty() && item.front() == ' ') item.erase(0, 1);
    while (!item.empty() && item.back() == ' ') item.pop_back();
    if (!item.empty()) {
      if (item.find(':') == std::string::npos) throw std::invalid_argument("expected HOST:PORT, got '" + item + "'");
      out.push_back(item);
    }
    start = end + 1;
  }
  return out;
}

std::string join_list(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

std::vector<key_spec> make_keys() {
  constexpr std::uint64_t u16 = 65535, u32 = 0xFFFFFFFFull;
  std::vector<key_spec> k;
  k.push_back(string_key("data_dir", "DIR", "directory for durable state; created if missing",
                         [](config& c) -> auto& { return c.data_dir; }, false));
  k.push_back({"durability", "MODE",
               "sync (fsync before acking: survives power loss), async (survives a killed flockd) "
               "or memory (nothing on disk)",
               [](config& c, const std::string& v) {
                 if (v != "sync" && v != "async" && v != "memory")
                   throw std::invalid_argument("expected sync, async or memory, got '" + v + "'");
                 c.durability = v;
               },
               [](const config& c) { return c.durability; }});
  k.push_back(unsigned_key("disk_reserve_mb",
                           "free space (MiB) kept on data_dir's disk: below it writes stop and QoS 1/2 is refused",
                           [](config& c) -> auto& { return c.disk_reserve_mb; }, 0, 1u << 20));
  k.push_back(unsigned_key("workers", "worker threads; 0 = one per core", [](config& c) -> auto& { return c.workers; },
                           0, 1024));
  k.push_back(string_key("metrics_listen", "HOST:PORT",
                         "serve Prometheus /metrics, /healthz and /readyz over HTTP here; empty: off",
                         [](config& c) -> auto& { return c.metrics_listen; }, true));
  k.push_back(string_key("node_name", "NAME", "this node's name in the cluster and in $SYS",
                         [](config& c) -> auto& { return c.broker.node_name; }, false));
  k.push_back({"log_level", "LEVEL", "trace, debug, info, warn or error",
               [](config& c, const std::string& v) {
                 if (!server::log::parse_level(v))
                   throw std::invalid_argument("expected trace, debug, info, warn or error, got '" + v + "'");
                 c.log_level = v;
               },
               [](const config& c) { return c.log_level; }});
  k.push_back({"allow_anonymous", "BOOL",
               "let clients connect without a user name on listeners that do not say; "
               "unset: only on loopback listeners",
               [](config& c, const std::string& v) { c.allow_anonymous = parse_bool(v); },
               [](const config& c) -> std::string {
                 return c.allow_anonymous ? (*c.allow_anonymous ? "true" : "false") : "(loopback only)";
               }});
  k.push_back(string_key("password_file", "FILE", "user:password file (mosquitto_passwd format); empty: none",
                         [](config& c) -> auto& { return c.broker.password_file; }, true));
  k.push_back(string_key("acl_file", "FILE", "topic access rules (Mosquitto acl_file format); empty: none",
                         [](config& c) -> auto& { return c.broker.acl_file; }, true));
  k.push_back(unsigned_key("max_packet_size", "largest MQTT packet in bytes, either direction",
                           [](config& c) -> auto& { return c.broker.max_packet_size; }, 64, 268435455));
  k.push_back(unsigned_key("receive_maximum", "QoS 1/2 publishes a client may have in flight towards us",
                           [](config& c) -> auto& { return c.broker.receive_maximum; }, 1, u16));
  k.push_back(unsigned_key("max_inflight_messages", "QoS 1/2 publishes in flight towards one client",
                           [](config& c) -> auto& { return c.broker.max_inflight_messages; }, 1, u16));
  k.push_back(unsigned_key("max_queued_messages", "messages queued per offline or slow session; 0 = no limit",
                           [](config& c) -> auto& { return c.broker.max_queued_messages; }, 0, u32));
  k.push_back({"queue_overflow", "POLICY", "when a queue is full: drop_oldest or drop_newest",
               [](config& c, const std::string& v) {
                 if (v == "drop_oldest") c.broker.queue_overflow_policy = core::queue_overflow::drop_oldest;
                 else if (v == "drop_newest") c.broker.queue_overflow_policy = core::queue_overflow::drop_newest;
                 else throw std::invalid_argument("expected drop_oldest or drop_newest, got '" + v + "'");
               },
               [](const config& c) -> std::string {
                 return c.broker.queue_overflow_policy == core::queue_overflow::drop_oldest ? "drop_oldest"
                                                                                           : "drop_newest";
               }});
  k.push_back(bool_key("queue_qos0_messages", "queue QoS 0 messages for offline sessions too",
                       [](config& c) -> auto& { return c.broker.queue_qos0_messages; }));
  k.push_back(unsigned_key("max_outbound_bytes", "unsent bytes per connection before delivery pauses",
                           [](config& c) -> auto& { return c.broker.max_outbound_bytes; }, 1024,
                           std::numeric_limits<std::uint32_t>::max()));
  k.push_back(unsigned_key("max_keepalive", "cap on the client's keep alive in seconds; 0 = no cap",
                           [](config& c) -> auto& { return c.broker.max_keepalive; }, 0, u16));
  k.push_back(seconds_key("connect_timeout", "seconds a new socket has to send CONNECT",
                          [](config& c) -> auto& { return c.broker.connect_timeout; }, 1, 3600));
  k.push_back(unsigned_key("topic_alias_maximum", "topic aliases a client may use towards us (MQTT 5)",
                           [](config& c) -> auto& { return c.broker.topic_alias_maximum; }, 0, u16));
  k.push_back(unsigned_key("max_outgoing_topic_aliases", "topic aliases we assign per connection (MQTT 5)",
                           [](config& c) -> auto& { return c.broker.max_outgoing_topic_aliases; }, 0, u16));
  k.push_back(unsigned_key("max_session_expiry", "cap on the session expiry a client asks for, seconds",
                           [](config& c) -> auto& { return c.broker.max_session_expiry; }, 0, u32));
  k.push_back(unsigned_key("max_client_id_length", "longest client identifier accepted",
                           [](config& c) -> auto& { return c.broker.max_client_id_length; }, 23, u16));
  k.push_back(bool_key("allow_zero_length_client_id", "assign an id to clients that send an empty one",
                       [](config& c) -> auto& { return c.broker.allow_zero_length_client_id; }));
  k.push_back(unsigned_key("maximum_qos", "highest QoS granted (0, 1 or 2)",
                           [](config& c) -> auto& { return c.broker.maximum_qos; }, 0, 2));
  k.push_back(bool_key("retain_available", "accept retained messages",
                       [](config& c) -> auto& { return c.broker.retain_available; }));
  k.push_back(seconds_key("sys_interval", "seconds between $SYS updates; 0 = off",
                          [](config& c) -> auto& { return c.broker.sys_interval; }, 0, 86400));
  // Cluster (docs/clustering.md). In the file also as a map: cluster: {listen: ..., seeds: [...]}.
  k.push_back(string_key("cluster_listen", "HOST:PORT", "accept cluster streams (gRPC) here; empty: a single node",
                         [](config& c) -> auto& { return c.cluster.listen; }, true));
  k.push_back(string_key("cluster_advertise", "HOST:PORT", "the address peers dial; empty: cluster_listen",
                         [](config& c) -> auto& { return c.cluster.advertise; }, true));
  k.push_back({"seeds", "HOST:PORT,...", "nodes to join the cluster through (comma-separated)",
               [](config& c, const std::string& v) { c.cluster.seeds = split_list(v); },
               [](const config& c) -> std::string { return c.cluster.seeds.empty() ? "(none)" : join_list(c.cluster.seeds); }});
  k.push_back(string_key("cluster_dns", "NAME:PORT",
                         "a DNS name whose addresses are peers (a Kubernetes headless Service), resolved periodically",
                         [](config& c) -> auto& { return c.cluster.dns; }, true));
  k.push_back(millis_key("cluster_heartbeat_ms", "milliseconds between heartbeats to each peer",
                         [](config& c) -> auto& { return c.cluster.heartbeat; }, 10, 60000));
  k.push_back(millis_key("cluster_failure_timeout_ms", "a peer silent this long is down: its routes go",
                         [](config& c) -> auto& { return c.cluster.failure_timeout; }, 50, 3600000));
  k.push_back(millis_key("cluster_claim_timeout_ms", "a connect waits this long for peers that do not answer",
                         [](config& c) -> auto& { return c.cluster.claim_timeout; }, 10, 600000));
  k.push_back(millis_key("cluster_ack_timeout_ms",
                         "a publisher's ack waits this long for a peer to confirm its copy; 0 = does not wait",
                         [](config& c) -> auto& { return c.cluster.ack_timeout; }, 0, 600000));
  k.push_back(millis_key("cluster_join_timeout_ms", "start-up waits this long for the seeds before taking clients",
                         [](config& c) -> auto& { return c.cluster.join_timeout; }, 0, 600000));
  k.push_back(millis_key("cluster_drain_timeout_ms",
                         "at shutdown, wait this long for other nodes to take this node's sessions; 0 = keep them",
                         [](config& c) -> auto& { return c.cluster.drain_timeout; }, 0, 600000));
  k.push_back(unsigned_key("cluster_outbox_messages", "forwarded publishes queued per peer before new ones are dropped",
                           [](config& c) -> auto& { return c.cluster.max_outbox_messages; }, 1, 100000000));
  k.push_back(unsigned_key("replication_factor",
                           "copies of each persistent session's partition (docs/replication.md); 0 = off. Experimental: "
                           "the controller runs, sessions are not replicated yet",
                           [](config& c) -> auto& { return c.cluster.replication_factor; }, 0, 5));
  k.push_back(unsigned_key("cluster_expect",
                           "nodes that create a new replication controller together at first start; 0 = the seeds + 1",
                           [](config& c) -> auto& { return c.cluster.cluster_expect; }, 0, 256));
  k.push_back(millis_key("cluster_forget_after_ms",
                         "a peer unreachable this long (with copies queued for it) is forgotten",
                         [](config& c) -> auto& { return c.cluster.forget_after; }, 1000, 604800000));
  k.push_back(bool_key("cluster_tls",
                       "mutual TLS between nodes (needs cluster_certfile, cluster_keyfile, cluster_cafile); false: plaintext",
                       [](config& c) -> auto& { return c.cluster.tls; }));
  k.push_back(string_key("cluster_certfile", "FILE", "PEM certificate (chain) this node presents to its peers",
                         [](config& c) -> auto& { return c.cluster.certfile; }, true));
  k.push_back(string_key("cluster_keyfile", "FILE", "PEM private key of cluster_certfile",
                         [](config& c) -> auto& { return c.cluster.keyfile; }, true));
  k.push_back(string_key("cluster_cafile", "FILE", "PEM CA(s) that sign every node's certificate",
                         [](config& c) -> auto& { return c.cluster.cafile; }, true));
  k.push_back(string_key("cluster_secret_file", "FILE", "file holding a shared secret every peer must prove at its hello",
                         [](config& c) -> auto& { return c.cluster.secret_file; }, true));
  k.push_back(millis_key("certificate_reload_interval_ms", "how often certificate files are checked for changes",
                         [](config& c) -> auto& { return c.certificate_reload_interval; }, 100, 3600000));
  return k;
}

}  // namespace

std::span<const key_spec> config_keys() {
  static const std::vector<key_spec> keys = make_keys();
  return keys;
}

const key_spec* find_key(std::string_view key) {
  for (auto& k : config_keys())
    if (k.key == key) return &k;
  return nullptr;
}

}  // namespace flock::app
