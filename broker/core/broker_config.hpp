#pragma once
// Settings the core reads. Filled by broker/app/config from YAML and flags;
// defaults here are the documented defaults (docs/configuration.md).
#include <chrono>
#include <cstdint>
#include <string>

namespace flock::core {

enum class queue_overflow : std::uint8_t { drop_oldest, drop_newest };

struct broker_config {
  std::string node_name = "flock@127.0.0.1";
  std::uint32_t max_packet_size = 1024 * 1024;        // bytes, both directions
  std::uint16_t receive_maximum = 100;                // QoS 1/2 in flight from a client
  std::uint16_t max_inflight_messages = 32;           // QoS 1/2 in flight to a client
  std::uint32_t max_queued_messages = 1000;           // per offline/slow session
  queue_overflow queue_overflow_policy = queue_overflow::drop_oldest;
  bool queue_qos0_messages = false;                   // queue QoS 0 for offline sessions
  std::size_t max_outbound_bytes = 4 * 1024 * 1024;   // unsent bytes per connection before we stop writing
  std::uint16_t max_keepalive = 0;                    // 0 = no cap; else server keep alive cap (seconds)
  std::chrono::seconds connect_timeout{10};           // socket must send CONNECT within this
  std::uint16_t topic_alias_maximum = 64;             // aliases a client may use towards us
  std::uint16_t max_outgoing_topic_aliases = 64;      // aliases we assign per connection (capped by client)
  std::uint32_t max_session_expiry = 0xFFFFFFFF;      // seconds; caps the client's request
  std::uint16_t max_client_id_length = 65535;
  bool allow_zero_length_client_id = true;
  std::uint8_t maximum_qos = 2;
  bool retain_available = true;
  std::chrono::seconds sys_interval{10};              // $SYS publish period; 0 disables
  std::string password_file;                          // empty: no password authentication
  std::string acl_file;                               // empty: no topic access control
};

// Per-listener settings the protocol machine needs.
struct listener_settings {
  std::string name = "default";
  bool allow_anonymous = true;  // computed by the app: loopback-only listeners default to true
};

}  // namespace flock::core
