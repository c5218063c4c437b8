#pragma once
// MQTT 3.1 / 3.1.1 / 5.0 control packets as plain structs.
// The same structs serve every protocol version: fields a version does not
// have (properties, reason codes on v3 acks) are simply ignored by the encoder
// for that version. Pure std; no I/O.
#include <cstdint>
#include <optional>
#include <string>
#include <iterator>
#include <variant>
#include <vector>

namespace flock::codec {

// The protocol level byte of CONNECT.
enum class protocol_version : std::uint8_t { v31 = 3, v311 = 4, v5 = 5 };

enum class packet_type : std::uint8_t {
  connect = 1,
  connack = 2,
  publish = 3,
  puback = 4,
  pubrec = 5,
  pubrel = 6,
  pubcomp = 7,
  subscribe = 8,
  suback = 9,
  unsubscribe = 10,
  unsuback = 11,
  pingreq = 12,
  pingresp = 13,
  disconnect = 14,
  auth = 15,
};

struct user_property {
  std::string key;
  std::string value;
  bool operator==(const user_property&) const = default;
};

// MQTT 5 properties (spec 2.2.2.2). A field is present when the packet carried
// it. Binary data (correlation data, authentication data) is held in strings.
struct properties {
  std::optional<std::uint8_t> payload_format_indicator;           // 0x01
  std::optional<std::uint32_t> message_expiry_interval;           // 0x02
  std::optional<std::string> content_type;                        // 0x03
  std::optional<std::string> response_topic;                      // 0x08
  std::optional<std::string> correlation_data;                    // 0x09
  std::vector<std::uint32_t> subscription_identifiers;            // 0x0B (repeatable in PUBLISH)
  std::optional<std::uint32_t> session_expiry_interval;           // 0x11
  std::optional<std::string> assigned_client_identifier;          // 0x12
  std::optional<std::uint16_t> server_keep_alive;                 // 0x13
  std::optional<std::string> authentication_method;               // 0x15
  std::optional<std::string> authentication_data;                 // 0x16
  std::optional<std::uint8_t> request_problem_information;        // 0x17
  std::optional<std::uint32_t> will_delay_interval;               // 0x18
  std::optional<std::uint8_t> request_response_information;       // 0x19
  std::optional<std::string> response_information;                // 0x1A
  std::optional<std::string> server_reference;                    // 0x1C
  std::optional<std::string> reason_string;                       // 0x1F
  std::optional<std::uint16_t> receive_maximum;                   // 0x21
  std::optional<std::uint16_t> topic_alias_maximum;               // 0x22
  std::optional<std::uint16_t> topic_alias;                       // 0x23
  std::optional<std::uint8_t> maximum_qos;                        // 0x24
  std::optional<std::uint8_t> retain_available;                   // 0x25
  std::vector<user_property> user_properties;                     // 0x26 (repeatable, order kept)
  std::optional<std::uint32_t> maximum_packet_size;               // 0x27
  std::optional<std::uint8_t> wildcard_subscription_available;    // 0x28
  std::optional<std::uint8_t> subscription_identifier_available;  // 0x29
  std::optional<std::uint8_t> shared_subscription_available;      // 0x2A
  bool operator==(const properties&) const = default;
};

struct will_message {
  std::string topic;
  std::string payload;
  std::uint8_t qos = 0;
  bool retain = false;
  properties props;  // will properties (v5)
  bool operator==(const will_message&) const = default;
};

struct connect {
  protocol_version version = protocol_version::v311;
  bool clean_start = true;  // "clean session" in 3.1/3.1.1
  std::uint16_t keep_alive = 0;
  std::string client_id;
  std::optional<will_message> will;
  std::optional<std::string> username;
  std::optional<std::string> password;  // binary
  properties props;
  bool operator==(const connect&) const = default;
};

struct connack {
  bool session_present = false;
  std::uint8_t reason_code = 0;  // v3: return code 0..5
  properties props;
  bool operator==(const connack&) const = default;
};

struct publish {
  bool dup = false;
  std::uint8_t qos = 0;
  bool retain = false;
  std::string topic;  // may be empty in v5 when a topic alias is used
  std::uint16_t packet_id = 0;  // only for QoS 1/2
  properties props;
  std::string payload;
  bool operator==(const publish&) const = default;
};

// PUBACK, PUBREC, PUBREL, PUBCOMP share one shape.
struct pub_response {
  packet_type type = packet_type::puback;
  std::uint16_t packet_id = 0;
  std::uint8_t reason_code = 0;
  properties props;
  bool operator==(const pub_response&) const = default;
};

struct subscription_request {
  std::string filter;
  std::uint8_t qos = 0;
  bool no_local = false;
  bool retain_as_published = false;
  std::uint8_t retain_handling = 0;
  bool operator==(const subscription_request&) const = default;
};

struct subscribe {
  std::uint16_t packet_id = 0;
  properties props;
  std::vector<subscription_request> topics;
  bool operator==(const subscribe&) const = default;
};

struct suback {
  std::uint16_t packet_id = 0;
  properties props;
  std::vector<std::uint8_t> reason_codes;  // v3: granted QoS or 0x80
  bool operator==(const suback&) const = default;
};

struct unsubscribe {
  std::uint16_t packet_id = 0;
  properties props;
  std::vector<std::string> filters;
  bool operator==(const unsubscribe&) const = default;
};

struct unsuback {
  std::uint16_t packet_id = 0;
  properties props;
  std::vector<std::uint8_t> reason_codes;  // v5 only; v3 UNSUBACK has none
  bool operator==(const unsuback&) const = default;
};

struct pingreq {
  bool operator==(const pingreq&) const = default;
};
struct pingresp {
  bool operator==(const pingresp&) const = default;
};

struct disconnect {
  std::uint8_t reason_code = 0;
  properties props;
  bool operator==(const disconnect&) const = default;
};

struct auth {
  std::uint8_t reason_code = 0;
  properties props;
  bool operator==(const auth&) const = default;
};

using packet = std::variant<connect, connack, publish, pub_response, subscribe, suback, unsubscribe,
                            unsuback, pingreq, pingresp, disconnect, auth>;

// The control packet type of a decoded or to-be-encoded packet.
inline packet_type type_of(const packet& p) {
  if (auto* r = std::get_if<pub_response>(&p)) return r->type;
  // In the order of the variant; pub_response (index 3) is answered above.
  static constexpr packet_type by_index[] = {
      packet_type::connect,     packet_type::connack,  packet_type::publish,  packet_type::puback,
      packet_type::subscribe,   packet_type::suback,   packet_type::unsubscribe, packet_type::unsuback,
      packet_type::pingreq,     packet_type::pingresp, packet_type::disconnect,  packet_type::auth};
  static_assert(std::size(by_index) == std::variant_size_v<packet>);
  return by_index[p.index()];
}

}  // namespace flock::codec
