#pragma once
// Framing, decoding and encoding of MQTT control packets. Sans-I/O: callers
// hand in bytes and get packets (or a reason code) back.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>

#include "broker/codec/packet.hpp"

namespace flock::codec {

// Why a packet could not be decoded. `reason` is the MQTT 5 reason code the
// spec asks for (0x81 malformed, 0x82 protocol error, 0x95 packet too large,
// 0x84 unsupported protocol version, 0x85 client id not valid is NOT raised
// here). `message` is a static string for logs and reason strings.
struct codec_error {
  std::uint8_t reason = 0x81;
  const char* message = "malformed packet";
};

// Result of looking for one complete packet at the front of a buffer.
struct frame {
  enum class status : std::uint8_t { incomplete, complete, error } state = status::incomplete;
  std::size_t size = 0;  // complete: total bytes of the packet (fixed header + remaining length)
  codec_error error{};   // error: bad remaining length (0x81) or size > max_packet_size (0x95)
};

// Inspects the fixed header. Never reads past `buffer`. A remaining length
// encoded in more than 4 bytes is malformed; a packet whose total size exceeds
// `max_packet_size` is an error with reason 0x95 as soon as the length is known.
frame peek_frame(std::span<const std::uint8_t> buffer, std::uint32_t max_packet_size);

// Decodes exactly one complete packet (as delimited by peek_frame).
// `version` is the connection's negotiated version; before CONNECT, pass the
// version you expect nothing of: the first packet must be CONNECT and its own
// protocol level decides how it is parsed (v31 "MQIsdp"/3, v311 "MQTT"/4, v5 "MQTT"/5).
// Validates everything the spec makes a decoder responsible for: fixed header
// flags, reserved bits, QoS 3, packet id 0 where one is required, UTF-8 strings
// (well formed, no U+0000, no surrogates), property identifiers allowed for the
// packet type and not duplicated, empty SUBSCRIBE/UNSUBSCRIBE, etc.
// Topic name/filter *semantics* (wildcards) are checked by topic.hpp, not here.
std::variant<packet, codec_error> decode(std::span<const std::uint8_t> bytes, protocol_version version);

// Appends the encoding of `p` for `version` to `out`. v3 encodings drop
// properties and v5-only fields (for v3 SUBACK the reason codes are the granted
// QoS / 0x80; v3 UNSUBACK has no payload; v3 CONNACK carries the return code).
void encode(const packet& p, protocol_version version, std::string& out);

// Convenience for PUBLISH on the hot path: encodes without building a variant.
void encode_publish(const publish& p, protocol_version version, std::string& out);

// Size in bytes of the encoded packet (for Maximum Packet Size checks).
std::size_t encoded_size(const packet& p, protocol_version version);

// An application message's properties (those a will may carry: payload
// format, message expiry, content type, response topic, correlation data,
// user properties) as an MQTT 5 property block, for flock's own records
// (core/message_codec.hpp). Reading checks what decode() checks and moves
// `pos` past the block; false: malformed or a property a message cannot have.
void append_message_properties(const properties& p, std::string& out);
bool read_message_properties(std::string_view in, std::size_t& pos, properties& out);

}  // namespace flock::codec
