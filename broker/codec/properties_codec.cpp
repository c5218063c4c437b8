#include "broker/codec/properties_codec.hpp"

#include <array>
#include <optional>
#include <string>
#include <string_view>

#include "broker/codec/reason_code.hpp"
#include "broker/codec/topic.hpp"

namespace flock::codec::detail {

namespace {

constexpr std::uint16_t bit(prop_context c) { return static_cast<std::uint16_t>(1u << static_cast<unsigned>(c)); }

constexpr std::uint16_t c_connect = bit(prop_context::connect);
constexpr std::uint16_t c_connack = bit(prop_context::connack);
constexpr std::uint16_t c_publish = bit(prop_context::publish);
constexpr std::uint16_t c_will = bit(prop_context::will);
constexpr std::uint16_t c_pub_response = bit(prop_context::pub_response);
constexpr std::uint16_t c_subscribe = bit(prop_context::subscribe);
constexpr std::uint16_t c_suback = bit(prop_context::suback);
constexpr std::uint16_t c_unsubscribe = bit(prop_context::unsubscribe);
constexpr std::uint16_t c_unsuback = bit(prop_context::unsuback);
constexpr std::uint16_t c_disconnect = bit(prop_context::disconnect);
constexpr std::uint16_t c_auth = bit(prop_context::auth);
constexpr std::uint16_t c_all = 0x07FF;

// Spec 2.2.2.2: the packets (and the will) each property may appear in.
// Zero means the identifier is unknown.
constexpr std::array<std::uint16_t, 0x2B> allowed_in = [] {
  std::array<std::uint16_t, 0x2B> t{};
  t[0x01] = c_publish | c_will;  // payload format indicator
  t[0x02] = c_publish | c_will;  // message expiry interval
  t[0x03] = c_publish | c_will;  // content type
  t[0x08] = c_publish | c_will;  // response topic
  t[0x09] = c_publish | c_will;  // correlation data
  t[0x0B] = c_publish | c_subscribe;
  t[0x11] = c_connect | c_connack | c_disconnect;  // session expiry interval
  t[0x12] = c_connack;                              // assigned client identifier
  t[0x13] = c_connack;                              // server keep alive
  t[0x15] = c_connect | c_connack | c_auth;         // authentication method
  t[0x16] = c_connect | c_connack | c_auth;         // authentication data
  t[0x17] = c_connect;                              // request problem information
  t[0x18] = c_will;                                 // will delay interval
  t[0x19] = c_connect;                              // request response information
  t[0x1A] = c_connack;                              // response information
  t[0x1C] = c_connack | c_disconnect;               // server reference
  t[0x1F] = c_connack | c_pub_response | c_suback | c_unsuback | c_disconnect | c_auth;  // reason string
  t[0x21] = c_connect | c_connack;  // receive maximum
  t[0x22] = c_connect | c_connack;  // topic alias maximum
  t[0x23] = c_publish;              // topic alias
  t[0x24] = c_connack;              // maximum qos
  t[0x25] = c_connack;              // retain available
  t[0x26] = c_all;                  // user property
  t[0x27] = c_connect | c_connack;  // maximum packet size
  t[0x28] = c_connack;              // wildcard subscription available
  t[0x29] = c_connack;              // subscription identifier available
  t[0x2A] = c_connack;              // shared subscription available
  return t;
}();

bool allowed(std::uint8_t id, prop_context ctx) { return id < allowed_in.size() && (allowed_in[id] & bit(ctx)) != 0; }

bool fail(codec_error& err, std::uint8_t reason, const char* message) {
  err = codec_error{reason, message};
  return false;
}

constexpr const char* truncated = "property value overruns property length";

// Every one-byte property in MQTT 5 is a 0/1 flag, except Maximum QoS which is
// also only 0 or 1 (a server never advertises "2" — it omits the property).
bool read_flag(byte_reader& r, std::optional<std::uint8_t>& slot, codec_error& err) {
  std::uint8_t v;
  if (!r.read_u8(v)) return fail(err, rc::malformed_packet, truncated);
  if (slot) return fail(err, rc::protocol_error, "duplicate property");
  if (v > 1) return fail(err, rc::protocol_error, "property value must be 0 or 1");
  slot = v;
  return true;
}

bool read_u16(byte_reader& r, std::optional<std::uint16_t>& slot, bool nonzero, codec_error& err) {
  std::uint16_t v;
  if (!r.read_u16(v)) return fail(err, rc::malformed_packet, truncated);
  if (slot) return fail(err, rc::protocol_error, "duplicate property");
  if (nonzero && v == 0) return fail(err, rc::protocol_error, "property value must not be 0");
  slot = v;
  return true;
}

bool read_u32(byte_reader& r, std::optional<std::uint32_t>& slot, bool nonzero, codec_error& err) {
  std::uint32_t v;
  if (!r.read_u32(v)) return fail(err, rc::malformed_packet, truncated);
  if (slot) return fail(err, rc::protocol_error, "duplicate property");
  if (nonzero && v == 0) return fail(err, rc::protocol_error, "property value must not be 0");
  slot = v;
  return true;
}

bool read_string(byte_reader& r, std::optional<std::string>& slot, bool utf8, codec_error& err) {
  std::string_view v;
  if (!r.read_prefixed(v)) return fail(err, rc::malformed_packet, truncated);
  if (slot) return fail(err, rc::protocol_error, "duplicate property");
  if (utf8 && !valid_utf8(v)) return fail(err, rc::malformed_packet, "invalid UTF-8 in property");
  slot.emplace(v);
  return true;
}

bool read_property(byte_reader& r, std::uint8_t id, prop_context ctx, properties& p, codec_error& err) {
  switch (id) {
    case 0x01: return read_flag(r, p.payload_format_indicator, err);
    case 0x02: return read_u32(r, p.message_expiry_interval, false, err);
    case 0x03: return read_string(r, p.content_type, true, err);
    case 0x08: return read_string(r, p.response_topic, true, err);
    case 0x09: return read_string(r, p.correlation_data, false, err);
    case 0x0B: {
      std::uint32_t v;
      if (!r.read_varint(v)) return fail(err, rc::malformed_packet, "bad subscription identifier");
      if (v == 0) return fail(err, rc::protocol_error, "subscription identifier 0");
      // A PUBLISH to a client carries one per matching subscription; a
      // SUBSCRIBE carries at most one (3.8.2.1.2).
      if (ctx == prop_context::subscribe && !p.subscription_identifiers.empty())
        return fail(err, rc::protocol_error, "duplicate property");
      p.subscription_identifiers.push_back(v);
      return true;
    }
    case 0x11: return read_u32(r, p.session_expiry_interval, false, err);
    case 0x12: return read_string(r, p.assigned_client_identifier, true, err);
    case 0x13: return read_u16(r, p.server_keep_alive, false, err);
    case 0x15: return read_string(r, p.authentication_method, true, err);
    case 0x16: return read_string(r, p.authentication_data, false, err);
    case 0x17: return read_flag(r, p.request_problem_information, err);
    case 0x18: return read_u32(r, p.will_delay_interval, false, err);
    case 0x19: return read_flag(r, p.request_response_information, err);
    case 0x1A: return read_string(r, p.response_information, true, err);
    case 0x1C: return read_string(r, p.server_reference, true, err);
    case 0x1F: return read_string(r, p.reason_string, true, err);
    case 0x21: return read_u16(r, p.receive_maximum, true, err);
    case 0x22: return read_u16(r, p.topic_alias_maximum, false, err);
    case 0x23: {
      std::uint16_t v;
      if (!r.read_u16(v)) return fail(err, rc::malformed_packet, truncated);
      if (p.topic_alias) return fail(err, rc::protocol_error, "duplicate property");
      // 3.3.2.3.4: alias 0 is never valid, whatever the negotiated maximum.
      if (v == 0) return fail(err, rc::topic_alias_invalid, "topic alias 0");
      p.topic_alias = v;
      return true;
    }
    case 0x24: return read_flag(r, p.maximum_qos, err);
    case 0x25: return read_flag(r, p.retain_available, err);
    case 0x26: {
      std::string_view k, v;
      if (!r.read_prefixed(k) || !r.read_prefixed(v)) return fail(err, rc::malformed_packet, truncated);
      if (!valid_utf8(k) || !valid_utf8(v)) return fail(err, rc::malformed_packet, "invalid UTF-8 in user property");
      p.user_properties.push_back(user_property{std::string(k), std::string(v)});
      return true;
    }
    case 0x27: return read_u32(r, p.maximum_packet_size, true, err);
    case 0x28: return read_flag(r, p.wildcard_subscription_available, err);
    case 0x29: return read_flag(r, p.subscription_identifier_available, err);
    case 0x2A: return read_flag(r, p.shared_subscription_available, err);
    default: return fail(err, rc::malformed_packet, "unknown property");
  }
}

}  // namespace

bool decode_properties(byte_reader& r, prop_context ctx, properties& out, codec_error& err) {
  std::uint32_t length;
  if (!r.read_varint(length)) return fail(err, rc::malformed_packet, "bad property length");
  byte_reader block(nullptr, nullptr);
  if (!r.take(length, block)) return fail(err, rc::malformed_packet, "property length overruns packet");
  while (!block.empty()) {
    // The identifier is formally a variable byte integer, but every defined
    // one fits in 7 bits: a first byte >= 0x80 can only be unknown.
    std::uint8_t id;
    block.read_u8(id);
    if (!allowed(id, ctx)) {
      bool known = id < allowed_in.size() && allowed_in[id] != 0;
      return fail(err, rc::malformed_packet, known ? "property not allowed in this packet" : "unknown property");
    }
    if (!read_property(block, id, ctx, out, err)) return false;
  }
  // 3.1.2.11.10 / 3.2.2.3.18 / 3.15.2.2.3: data without a method is meaningless.
  if (out.authentication_data && !out.authentication_method)
    return fail(err, rc::protocol_error, "authentication data without authentication method");
  return true;
}

// The encoder below visits properties in identifier order. `emit` is called
// with (id, value) for each property to write; sizing and writing share it so
// encoded_size() can never disagree with encode().
namespace {

struct size_sink {
  std::size_t n = 0;
  void flag(std::uint8_t, std::uint8_t) { n += 2; }
  void u16(std::uint8_t, std::uint16_t) { n += 3; }
  void u32(std::uint8_t, std::uint32_t) { n += 5; }
  void varint(std::uint8_t, std::uint32_t v) { n += 1 + varint_size(v); }
  void str(std::uint8_t, std::string_view s) { n += 1 + prefixed_size(s); }
  void pair(std::uint8_t, std::string_view k, std::string_view v) { n += 1 + prefixed_size(k) + prefixed_size(v); }
};

struct write_sink {
  byte_writer& w;
  void flag(std::uint8_t id, std::uint8_t v) { w.u8(id), w.u8(v); }
  void u16(std::uint8_t id, std::uint16_t v) { w.u8(id), w.u16(v); }
  void u32(std::uint8_t id, std::uint32_t v) { w.u8(id), w.u32(v); }
  void varint(std::uint8_t id, std::uint32_t v) { w.u8(id), w.varint(v); }
  void str(std::uint8_t id, std::string_view s) { w.u8(id), w.prefixed(s); }
  void pair(std::uint8_t id, std::string_view k, std::string_view v) { w.u8(id), w.prefixed(k), w.prefixed(v); }
};

template <class Sink>
void emit(Sink& s, const properties& p, prop_context ctx) {
  const std::uint16_t here = bit(ctx);
  auto ok = [here](std::uint8_t id) { return (allowed_in[id] & here) != 0; };
  if (p.payload_format_indicator && ok(0x01)) s.flag(0x01, *p.payload_format_indicator);
  if (p.message_expiry_interval && ok(0x02)) s.u32(0x02, *p.message_expiry_interval);
  if (p.content_type && ok(0x03)) s.str(0x03, *p.content_type);
  if (p.response_topic && ok(0x08)) s.str(0x08, *p.response_topic);
  if (p.correlation_data && ok(0x09)) s.str(0x09, *p.correlation_data);
  if (!p.subscription_identifiers.empty() && ok(0x0B)) {
    // SUBSCRIBE may carry only one; a PUBLISH carries one per subscription.
    std::size_t count = ctx == prop_context::subscribe ? 1 : p.subscription_identifiers.size();
    for (std::size_t i = 0; i < count; ++i) s.varint(0x0B, p.subscription_identifiers[i]);
  }
  if (p.session_expiry_interval && ok(0x11)) s.u32(0x11, *p.session_expiry_interval);
  if (p.assigned_client_identifier && ok(0x12)) s.str(0x12, *p.assigned_client_identifier);
  if (p.server_keep_alive && ok(0x13)) s.u16(0x13, *p.server_keep_alive);
  if (p.authentication_method && ok(0x15)) s.str(0x15, *p.authentication_method);
  if (p.authentication_data && ok(0x16)) s.str(0x16, *p.authentication_data);
  if (p.request_problem_information && ok(0x17)) s.flag(0x17, *p.request_problem_information);
  if (p.will_delay_interval && ok(0x18)) s.u32(0x18, *p.will_delay_interval);
  if (p.request_response_information && ok(0x19)) s.flag(0x19, *p.request_response_information);
  if (p.response_information && ok(0x1A)) s.str(0x1A, *p.response_information);
  if (p.server_reference && ok(0x1C)) s.str(0x1C, *p.server_reference);
  if (p.reason_string && ok(0x1F)) s.str(0x1F, *p.reason_string);
  if (p.receive_maximum && ok(0x21)) s.u16(0x21, *p.receive_maximum);
  if (p.topic_alias_maximum && ok(0x22)) s.u16(0x22, *p.topic_alias_maximum);
  if (p.topic_alias && ok(0x23)) s.u16(0x23, *p.topic_alias);
  if (p.maximum_qos && ok(0x24)) s.flag(0x24, *p.maximum_qos);
  if (p.retain_available && ok(0x25)) s.flag(0x25, *p.retain_available);
  for (const auto& up : p.user_properties) s.pair(0x26, up.key, up.value);
  if (p.maximum_packet_size && ok(0x27)) s.u32(0x27, *p.maximum_packet_size);
  if (p.wildcard_subscription_available && ok(0x28)) s.flag(0x28, *p.wildcard_subscription_available);
  if (p.subscription_identifier_available && ok(0x29)) s.flag(0x29, *p.subscription_identifier_available);
  if (p.shared_subscription_available && ok(0x2A)) s.flag(0x2A, *p.shared_subscription_available);
}

}  // namespace

std::size_t properties_size(const properties& p, prop_context ctx) {
  size_sink s;
  emit(s, p, ctx);
  return s.n;
}

void write_properties(byte_writer& w, const properties& p, prop_context ctx, std::size_t size) {
  w.varint(size);
  write_sink s{w};
  emit(s, p, ctx);
}

}  // namespace flock::codec::detail

namespace flock::codec {

void append_message_properties(const properties& p, std::string& out) {
  using namespace detail;
  if (p.will_delay_interval) {  // a will's, never a message's: the reader refuses it
    properties without = p;
    without.will_delay_interval.reset();
    return append_message_properties(without, out);
  }
  const std::size_t size = properties_size(p, prop_context::will);
  const std::size_t start = out.size();
  out.resize(start + properties_block_size(size));
  byte_writer w(out.data() + start);
  write_properties(w, p, prop_context::will, size);
}

bool read_message_properties(std::string_view in, std::size_t& pos, properties& out) {
  using namespace detail;
  if (pos > in.size()) return false;
  const auto* base = reinterpret_cast<const std::uint8_t*>(in.data());
  byte_reader r(base + pos, base + in.size());
  codec_error err;
  if (!decode_properties(r, prop_context::will, out, err)) return false;
  if (out.will_delay_interval) return false;  // a will's, never a message's
  pos = in.size() - r.remaining();
  return true;
}

}  // namespace flock::codec
