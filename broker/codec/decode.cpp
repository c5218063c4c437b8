// decode(): fixed header checks and every packet body except CONNECT/CONNACK
// (decode_connect.cpp). Packets are built in place inside the result variant
// so a PUBLISH is never copied or moved after its strings are filled.
#include <string_view>
#include <utility>

#include "broker/codec/codec.hpp"
#include "broker/codec/decode_internal.hpp"
#include "broker/codec/properties_codec.hpp"
#include "broker/codec/reason_code.hpp"
#include "broker/codec/reason_tables.hpp"
#include "broker/codec/topic.hpp"

namespace flock::codec {

namespace {

using detail::byte_reader;
using detail::expect_end;
using detail::fail;
using detail::prop_context;

using decode_result = std::variant<packet, codec_error>;

bool read_packet_id(byte_reader& r, std::uint16_t& id, codec_error& err) {
  if (!r.read_u16(id)) return fail(err, rc::malformed_packet, "packet identifier missing");
  // MQTT-2.2.1-3: the packet parses, but 0 is not a usable identifier.
  return id != 0 || fail(err, rc::protocol_error, "packet identifier 0");
}

bool read_utf8(byte_reader& r, std::string& out, codec_error& err) {
  std::string_view s;
  if (!r.read_prefixed(s)) return fail(err, rc::malformed_packet, "string overruns packet");
  if (!valid_utf8(s)) return fail(err, rc::malformed_packet, "invalid UTF-8 string");
  out.assign(s);
  return true;
}

bool decode_publish(byte_reader& r, std::uint8_t flags, protocol_version v, publish& out, codec_error& err) {
  out.dup = (flags & 0x08) != 0;
  out.qos = (flags >> 1) & 0x03;
  out.retain = (flags & 0x01) != 0;
  if (out.qos == 3) return fail(err, rc::malformed_packet, "PUBLISH QoS 3");
  if (out.dup && out.qos == 0) return fail(err, rc::protocol_error, "DUP set on QoS 0 PUBLISH");
  std::string_view topic;
  if (!r.read_prefixed(topic)) return fail(err, rc::malformed_packet, "topic overruns packet");
  if (!valid_utf8(topic)) return fail(err, rc::malformed_packet, "invalid UTF-8 in topic");
  if (out.qos != 0 && !read_packet_id(r, out.packet_id, err)) return false;
  if (v == protocol_version::v5) {
    if (!detail::decode_properties(r, prop_context::publish, out.props, err)) return false;
    if (topic.empty() && !out.props.topic_alias) return fail(err, rc::protocol_error, "empty topic without topic alias");
  }
  out.topic.assign(topic);
  out.payload.assign(r.rest());
  return true;
}

bool decode_pub_response(byte_reader& r, packet_type type, protocol_version v, pub_response& out, codec_error& err) {
  out.type = type;
  if (!read_packet_id(r, out.packet_id, err)) return false;
  if (v != protocol_version::v5 || r.empty()) return expect_end(r, err);  // v5: length 2 means success
  r.read_u8(out.reason_code);
  const bool ok = (type == packet_type::puback || type == packet_type::pubrec)
                      ? detail::puback_reasons.contains(out.reason_code)
                      : detail::pubrel_reasons.contains(out.reason_code);
  if (!ok) return fail(err, rc::protocol_error, "invalid reason code for acknowledgement");
  if (r.empty()) return true;  // length 3: no properties
  if (!detail::decode_properties(r, prop_context::pub_response, out.props, err)) return false;
  return expect_end(r, err);
}

bool decode_subscribe(byte_reader& r, protocol_version v, subscribe& out, codec_error& err) {
  const bool v5 = v == protocol_version::v5;
  if (!read_packet_id(r, out.packet_id, err)) return false;
  if (v5 && !detail::decode_properties(r, prop_context::subscribe, out.props, err)) return false;
  if (r.empty()) return fail(err, rc::protocol_error, "SUBSCRIBE without topic filters");
  while (!r.empty()) {
    subscription_request& s = out.topics.emplace_back();
    std::uint8_t options;
    if (!read_utf8(r, s.filter, err)) return false;
    if (!r.read_u8(options)) return fail(err, rc::malformed_packet, "subscription options missing");
    s.qos = options & 0x03;
    if (!v5) {
      if (options & 0xFC) return fail(err, rc::malformed_packet, "reserved bits set in requested QoS");
      if (s.qos == 3) return fail(err, rc::malformed_packet, "subscription QoS 3");
      continue;
    }
    if (options & 0xC0) return fail(err, rc::malformed_packet, "reserved subscription option bits set");
    s.no_local = (options & 0x04) != 0;
    s.retain_as_published = (options & 0x08) != 0;
    s.retain_handling = (options >> 4) & 0x03;
    if (s.qos == 3) return fail(err, rc::protocol_error, "subscription QoS 3");
    if (s.retain_handling == 3) return fail(err, rc::protocol_error, "retain handling 3");
    if (s.no_local && parse_shared_filter(s.filter))
      return fail(err, rc::protocol_error, "no local on a shared subscription");
  }
  return true;
}

bool decode_suback(byte_reader& r, protocol_version v, suback& out, codec_error& err) {
  const bool v5 = v == protocol_version::v5;
  if (!read_packet_id(r, out.packet_id, err)) return false;
  if (v5 && !detail::decode_properties(r, prop_context::suback, out.props, err)) return false;
  if (r.empty()) return fail(err, rc::protocol_error, "SUBACK without reason codes");
  std::string_view codes = r.rest();
  out.reason_codes.assign(codes.begin(), codes.end());
  const detail::reason_set& valid = v5 ? detail::suback_reasons : detail::v3_suback_codes;
  for (std::uint8_t c : out.reason_codes)
    if (!valid.contains(c)) return fail(err, rc::protocol_error, "invalid SUBACK reason code");
  return true;
}

bool decode_unsubscribe(byte_reader& r, protocol_version v, unsubscribe& out, codec_error& err) {
  if (!read_packet_id(r, out.packet_id, err)) return false;
  if (v == protocol_version::v5 && !detail::decode_properties(r, prop_context::unsubscribe, out.props, err))
    return false;
  if (r.empty()) return fail(err, rc::protocol_error, "UNSUBSCRIBE without topic filters");
  while (!r.empty())
    if (!read_utf8(r, out.filters.emplace_back(), err)) return false;
  return true;
}

bool decode_unsuback(byte_reader& r, protocol_version v, unsuback& out, codec_error& err) {
  if (!read_packet_id(r, out.packet_id, err)) return false;
  if (v != protocol_version::v5) return expect_end(r, err);
  if (!detail::decode_properties(r, prop_context::unsuback, out.props, err)) return false;
  if (r.empty()) return fail(err, rc::protocol_error, "UNSUBACK without reason codes");
  std::string_view codes = r.rest();
  out.reason_codes.assign(codes.begin(), codes.end());
  for (std::uint8_t c : out.reason_codes)
    if (!detail::unsuback_reasons.contains(c)) return fail(err, rc::protocol_error, "invalid UNSUBACK reason code");
  return true;
}

// DISCONNECT and AUTH: empty body means success; one byte means no properties.
template <class T>
bool decode_reason_only(byte_reader& r, prop_context ctx, const detail::reason_set& valid, T& out, codec_error& err) {
  if (r.empty()) return true;
  r.read_u8(out.reason_code);
  if (!valid.contains(out.reason_code)) return fail(err, rc::protocol_error, "invalid reason code");
  if (r.empty()) return true;
  if (!detail::decode_properties(r, ctx, out.props, err)) return false;
  return expect_end(r, err);
}

bool flags_valid(packet_type type, std::uint8_t flags, protocol_version v) {
  switch (type) {
    case packet_type::publish: return true;  // checked by decode_publish
    case packet_type::pubrel:
    case packet_type::subscribe:
    case packet_type::unsubscribe:
      // 3.1 sent these as QoS 1 and allowed DUP on retries.
      if (v == protocol_version::v31) return (flags & 0x07) == 0x02;
      return flags == 0x02;
    default: return flags == 0;
  }
}

template <class T, class F>
decode_result build(F&& body) {
  decode_result out(std::in_place_type<packet>, std::in_place_type<T>);
  codec_error err;
  if (!body(std::get<T>(std::get<packet>(out)), err)) out = err;
  return out;
}

}  // namespace

std::variant<packet, codec_error> decode(std::span<const std::uint8_t> bytes, protocol_version v) {
  byte_reader r(bytes.data(), bytes.data() + bytes.size());
  std::uint8_t header;
  std::uint32_t length;
  if (!r.read_u8(header) || !r.read_varint(length)) return codec_error{rc::malformed_packet, "bad fixed header"};
  if (r.remaining() != length) return codec_error{rc::malformed_packet, "remaining length does not match packet size"};

  const auto type = static_cast<packet_type>(header >> 4);
  const std::uint8_t flags = header & 0x0F;
  if (type == packet_type{0}) return codec_error{rc::malformed_packet, "reserved packet type 0"};
  if (type == packet_type::auth && v != protocol_version::v5) return codec_error{rc::malformed_packet, "AUTH before MQTT 5"};
  if (!flags_valid(type, flags, v)) return codec_error{rc::malformed_packet, "invalid fixed header flags"};

  switch (type) {
    case packet_type::connect:
      return build<connect>([&](connect& p, codec_error& e) { return detail::decode_connect(r, p, e); });
    case packet_type::connack:
      return build<connack>([&](connack& p, codec_error& e) { return detail::decode_connack(r, v, p, e); });
    case packet_type::publish:
      return build<publish>([&](publish& p, codec_error& e) { return decode_publish(r, flags, v, p, e); });
    case packet_type::puback:
    case packet_type::pubrec:
    case packet_type::pubrel:
    case packet_type::pubcomp:
      return build<pub_response>([&](pub_response& p, codec_error& e) { return decode_pub_response(r, type, v, p, e); });
    case packet_type::subscribe:
      return build<subscribe>([&](subscribe& p, codec_error& e) { return decode_subscribe(r, v, p, e); });
    case packet_type::suback:
      return build<suback>([&](suback& p, codec_error& e) { return decode_suback(r, v, p, e); });
    case packet_type::unsubscribe:
      return build<unsubscribe>([&](unsubscribe& p, codec_error& e) { return decode_unsubscribe(r, v, p, e); });
    case packet_type::unsuback:
      return build<unsuback>([&](unsuback& p, codec_error& e) { return decode_unsuback(r, v, p, e); });
    case packet_type::pingreq:
      return build<pingreq>([&](pingreq&, codec_error& e) { return expect_end(r, e); });
    case packet_type::pingresp:
      return build<pingresp>([&](pingresp&, codec_error& e) { return expect_end(r, e); });
    case packet_type::disconnect:
      return build<disconnect>([&](disconnect& p, codec_error& e) {
        if (v != protocol_version::v5) return expect_end(r, e);
        return decode_reason_only(r, prop_context::disconnect, detail::disconnect_reasons, p, e);
      });
    case packet_type::auth:
      return build<auth>([&](auth& p, codec_error& e) {
        return decode_reason_only(r, prop_context::auth, detail::auth_reasons, p, e);
      });
  }
  return codec_error{rc::malformed_packet, "reserved packet type"};
}

}  // namespace flock::codec
