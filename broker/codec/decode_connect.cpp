// CONNECT and CONNACK bodies (spec 3.1, 3.2 of MQTT 5; 3.1, 3.2 of 3.1.1).
#include <string_view>

#include "broker/codec/decode_internal.hpp"
#include "broker/codec/properties_codec.hpp"
#include "broker/codec/reason_code.hpp"
#include "broker/codec/reason_tables.hpp"
#include "broker/codec/topic.hpp"

namespace flock::codec::detail {

namespace {

constexpr const char* truncated = "CONNECT field overruns packet";

bool read_utf8(byte_reader& r, std::string& out, codec_error& err) {
  std::string_view s;
  if (!r.read_prefixed(s)) return fail(err, rc::malformed_packet, truncated);
  if (!valid_utf8(s)) return fail(err, rc::malformed_packet, "invalid UTF-8 string");
  out.assign(s);
  return true;
}

bool read_binary(byte_reader& r, std::string& out, codec_error& err) {
  std::string_view s;
  if (!r.read_prefixed(s)) return fail(err, rc::malformed_packet, truncated);
  out.assign(s);
  return true;
}

// The protocol name and level decide how the rest is parsed, whatever the
// caller believed the version to be.
bool read_protocol(byte_reader& r, protocol_version& v, codec_error& err) {
  std::string_view name;
  std::uint8_t level;
  if (!r.read_prefixed(name) || !r.read_u8(level)) return fail(err, rc::malformed_packet, truncated);
  if (name == "MQTT") {
    if (level == 4) return v = protocol_version::v311, true;
    if (level == 5) return v = protocol_version::v5, true;
  } else if (name == "MQIsdp") {
    if (level == 3) return v = protocol_version::v31, true;
  } else {
    // Not MQTT at all: the spec lets the server close without a CONNACK.
    return fail(err, rc::protocol_error, "unknown protocol name");
  }
  // Distinct reason so the caller can answer CONNACK 0x84 / return code 1.
  return fail(err, rc::unsupported_protocol_version, "unsupported protocol level");
}

}  // namespace

bool decode_connect(byte_reader& r, connect& out, codec_error& err) {
  if (!read_protocol(r, out.version, err)) return false;
  const bool v5 = out.version == protocol_version::v5;

  std::uint8_t flags;
  if (!r.read_u8(flags) || !r.read_u16(out.keep_alive)) return fail(err, rc::malformed_packet, truncated);
  if (flags & 0x01) return fail(err, rc::malformed_packet, "CONNECT reserved flag set");
  out.clean_start = (flags & 0x02) != 0;
  const bool will_flag = (flags & 0x04) != 0;
  const std::uint8_t will_qos = (flags >> 3) & 0x03;
  const bool will_retain = (flags & 0x20) != 0;
  const bool password_flag = (flags & 0x40) != 0;
  const bool username_flag = (flags & 0x80) != 0;
  if (!will_flag && (will_qos != 0 || will_retain))
    return fail(err, rc::malformed_packet, "will QoS or retain set without will flag");
  if (will_qos == 3) return fail(err, rc::malformed_packet, "will QoS 3");
  // MQTT-3.1.2-22; MQTT 5 dropped this rule.
  if (password_flag && !username_flag && !v5) return fail(err, rc::malformed_packet, "password without user name");

  if (v5 && !decode_properties(r, prop_context::connect, out.props, err)) return false;
  if (!read_utf8(r, out.client_id, err)) return false;

  if (will_flag) {
    will_message& w = out.will.emplace();
    w.qos = will_qos;
    w.retain = will_retain;
    if (v5 && !decode_properties(r, prop_context::will, w.props, err)) return false;
    if (!read_utf8(r, w.topic, err) || !read_binary(r, w.payload, err)) return false;
  }
  if (username_flag && !read_utf8(r, out.username.emplace(), err)) return false;
  if (password_flag && !read_binary(r, out.password.emplace(), err)) return false;
  return expect_end(r, err);
}

bool decode_connack(byte_reader& r, protocol_version v, connack& out, codec_error& err) {
  std::uint8_t ack_flags;
  if (!r.read_u8(ack_flags) || !r.read_u8(out.reason_code))
    return fail(err, rc::malformed_packet, "CONNACK too short");
  if (v == protocol_version::v31) {
    // 3.1 had no session-present flag; the byte was unused.
    out.session_present = false;
  } else {
    if (ack_flags & 0xFE) return fail(err, rc::malformed_packet, "CONNACK reserved flags set");
    out.session_present = (ack_flags & 0x01) != 0;
  }
  if (v != protocol_version::v5) {
    if (out.reason_code > rc::v3::not_authorized) return fail(err, rc::protocol_error, "reserved CONNACK return code");
    return expect_end(r, err);
  }
  if (!connack_reasons.contains(out.reason_code)) return fail(err, rc::protocol_error, "invalid CONNACK reason code");
  if (!decode_properties(r, prop_context::connack, out.props, err)) return false;
  return expect_end(r, err);
}

}  // namespace flock::codec::detail
