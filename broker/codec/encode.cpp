// encode(), encode_publish(), encoded_size(). Every packet is encoded in two
// steps: plan_for() computes the remaining length (and property block sizes,
// so they are computed once), then write_body() fills exactly that many bytes.
// encoded_size() runs only the first step, so the two can never disagree.
#include <cassert>
#include <string>
#include <type_traits>
#include <variant>
#include <string_view>

#include "broker/codec/byte_io.hpp"
#include "broker/codec/codec.hpp"
#include "broker/codec/properties_codec.hpp"

namespace flock::codec {

namespace {

using detail::byte_writer;
using detail::prefixed_size;
using detail::prop_context;
using detail::properties_block_size;
using detail::properties_size;
using detail::varint_size;
using detail::write_properties;

struct plan {
  std::size_t body = 0;        // remaining length
  std::size_t props = 0;       // property bytes, without the length prefix
  std::size_t will_props = 0;  // CONNECT only
};

bool is_v5(protocol_version v) { return v == protocol_version::v5; }

// --- CONNECT: always encoded in the packet's own version, like decode() reads it.

std::string_view protocol_name(protocol_version v) { return v == protocol_version::v31 ? "MQIsdp" : "MQTT"; }

plan plan_for(const connect& c, protocol_version) {
  const bool v5 = is_v5(c.version);
  plan pl;
  pl.body = prefixed_size(protocol_name(c.version)) + 1 + 1 + 2 + prefixed_size(c.client_id);
  if (v5) {
    pl.props = properties_size(c.props, prop_context::connect);
    pl.body += properties_block_size(pl.props);
  }
  if (c.will) {
    if (v5) {
      pl.will_props = properties_size(c.will->props, prop_context::will);
      pl.body += properties_block_size(pl.will_props);
    }
    pl.body += prefixed_size(c.will->topic) + prefixed_size(c.will->payload);
  }
  if (c.username) pl.body += prefixed_size(*c.username);
  if (c.password) pl.body += prefixed_size(*c.password);
  return pl;
}

std::uint8_t header_byte(const connect&) { return 0x10; }

void write_body(byte_writer& w, const connect& c, protocol_version, const plan& pl) {
  const bool v5 = is_v5(c.version);
  w.prefixed(protocol_name(c.version));
  w.u8(static_cast<std::uint8_t>(c.version));
  std::uint8_t flags = 0;
  if (c.clean_start) flags |= 0x02;
  if (c.will) {
    flags |= 0x04 | static_cast<std::uint8_t>((c.will->qos & 0x03) << 3);
    if (c.will->retain) flags |= 0x20;
  }
  if (c.password) flags |= 0x40;
  if (c.username) flags |= 0x80;
  w.u8(flags);
  w.u16(c.keep_alive);
  if (v5) write_properties(w, c.props, prop_context::connect, pl.props);
  w.prefixed(c.client_id);
  if (c.will) {
    if (v5) write_properties(w, c.will->props, prop_context::will, pl.will_props);
    w.prefixed(c.will->topic);
    w.prefixed(c.will->payload);
  }
  if (c.username) w.prefixed(*c.username);
  if (c.password) w.prefixed(*c.password);
}

// --- CONNACK

plan plan_for(const connack& c, protocol_version v) {
  plan pl{2};
  if (is_v5(v)) {
    pl.props = properties_size(c.props, prop_context::connack);
    pl.body += properties_block_size(pl.props);
  }
  return pl;
}

std::uint8_t header_byte(const connack&) { return 0x20; }

void write_body(byte_writer& w, const connack& c, protocol_version v, const plan& pl) {
  // 3.1 had no session-present flag.
  w.u8(c.session_present && v != protocol_version::v31 ? 1 : 0);
  w.u8(c.reason_code);
  if (is_v5(v)) write_properties(w, c.props, prop_context::connack, pl.props);
}

// --- PUBLISH

plan plan_for(const publish& p, protocol_version v) {
  plan pl;
  pl.body = prefixed_size(p.topic) + ((p.qos & 0x03) != 0 ? 2 : 0) + p.payload.size();
  if (is_v5(v)) {
    pl.props = properties_size(p.props, prop_context::publish);
    pl.body += properties_block_size(pl.props);
  }
  return pl;
}

std::uint8_t header_byte(const publish& p) {
  return static_cast<std::uint8_t>(0x30 | (p.dup ? 0x08 : 0) | ((p.qos & 0x03) << 1) | (p.retain ? 0x01 : 0));
}

// Everything but the payload, which encode_publish appends straight from `p`.
void write_body_head(byte_writer& w, const publish& p, protocol_version v, const plan& pl) {
  w.prefixed(p.topic);
  if ((p.qos & 0x03) != 0) w.u16(p.packet_id);
  if (is_v5(v)) write_properties(w, p.props, prop_context::publish, pl.props);
}

// --- PUBACK / PUBREC / PUBREL / PUBCOMP

plan plan_for(const pub_response& r, protocol_version v) {
  plan pl{2};
  if (is_v5(v)) {
    pl.props = properties_size(r.props, prop_context::pub_response);
    if (pl.props != 0) {
      pl.body += 1 + properties_block_size(pl.props);
    } else if (r.reason_code != 0) {
      pl.body += 1;  // reason code without property length (3.4.2.2.1)
    }
  }
  return pl;
}

std::uint8_t header_byte(const pub_response& r) {
  const auto type = static_cast<std::uint8_t>(r.type);
  return static_cast<std::uint8_t>((type << 4) | (r.type == packet_type::pubrel ? 0x02 : 0x00));
}

void write_body(byte_writer& w, const pub_response& r, protocol_version v, const plan& pl) {
  w.u16(r.packet_id);
  if (pl.body > 2) w.u8(r.reason_code);
  if (pl.props != 0) write_properties(w, r.props, prop_context::pub_response, pl.props);
}

// --- SUBSCRIBE / SUBACK / UNSUBSCRIBE / UNSUBACK

plan plan_for(const subscribe& s, protocol_version v) {
  plan pl{2};
  if (is_v5(v)) {
    pl.props = properties_size(s.props, prop_context::subscribe);
    pl.body += properties_block_size(pl.props);
  }
  for (const auto& t : s.topics) pl.body += prefixed_size(t.filter) + 1;
  return pl;
}

std::uint8_t header_byte(const subscribe&) { return 0x82; }

void write_body(byte_writer& w, const subscribe& s, protocol_version v, const plan& pl) {
  const bool v5 = is_v5(v);
  w.u16(s.packet_id);
  if (v5) write_properties(w, s.props, prop_context::subscribe, pl.props);
  for (const auto& t : s.topics) {
    w.prefixed(t.filter);
    std::uint8_t options = t.qos & 0x03;
    if (v5) {
      if (t.no_local) options |= 0x04;
      if (t.retain_as_published) options |= 0x08;
      options |= static_cast<std::uint8_t>((t.retain_handling & 0x03) << 4);
    }
    w.u8(options);
  }
}

plan plan_for(const suback& s, protocol_version v) {
  plan pl{2 + s.reason_codes.size()};
  if (is_v5(v)) {
    pl.props = properties_size(s.props, prop_context::suback);
    pl.body += properties_block_size(pl.props);
  }
  return pl;
}

std::uint8_t header_byte(const suback&) { return 0x90; }

void write_body(byte_writer& w, const suback& s, protocol_version v, const plan& pl) {
  const bool v5 = is_v5(v);
  w.u16(s.packet_id);
  if (v5) write_properties(w, s.props, prop_context::suback, pl.props);
  // v3 knows only granted QoS and 0x80 "failure".
  for (std::uint8_t c : s.reason_codes) w.u8(v5 || c < 0x80 ? c : 0x80);
}

plan plan_for(const unsubscribe& u, protocol_version v) {
  plan pl{2};
  if (is_v5(v)) {
    pl.props = properties_size(u.props, prop_context::unsubscribe);
    pl.body += properties_block_size(pl.props);
  }
  for (const auto& f : u.filters) pl.body += prefixed_size(f);
  return pl;
}

std::uint8_t header_byte(const unsubscribe&) { return 0xA2; }

void write_body(byte_writer& w, const unsubscribe& u, protocol_version v, const plan& pl) {
  w.u16(u.packet_id);
  if (is_v5(v)) write_properties(w, u.props, prop_context::unsubscribe, pl.props);
  for (const auto& f : u.filters) w.prefixed(f);
}

plan plan_for(const unsuback& u, protocol_version v) {
  plan pl{2};
  if (is_v5(v)) {  // v3 UNSUBACK is just the packet identifier
    pl.props = properties_size(u.props, prop_context::unsuback);
    pl.body += properties_block_size(pl.props) + u.reason_codes.size();
  }
  return pl;
}

std::uint8_t header_byte(const unsuback&) { return 0xB0; }

void write_body(byte_writer& w, const unsuback& u, protocol_version v, const plan& pl) {
  w.u16(u.packet_id);
  if (!is_v5(v)) return;
  write_properties(w, u.props, prop_context::unsuback, pl.props);
  for (std::uint8_t c : u.reason_codes) w.u8(c);
}

// --- PINGREQ / PINGRESP

plan plan_for(const pingreq&, protocol_version) { return {}; }
plan plan_for(const pingresp&, protocol_version) { return {}; }
std::uint8_t header_byte(const pingreq&) { return 0xC0; }
std::uint8_t header_byte(const pingresp&) { return 0xD0; }
void write_body(byte_writer&, const pingreq&, protocol_version, const plan&) {}
void write_body(byte_writer&, const pingresp&, protocol_version, const plan&) {}

// --- DISCONNECT / AUTH: empty body for success without properties (3.14.2.1, 3.15.2.1).

plan plan_for(const disconnect& d, protocol_version v) {
  plan pl;
  if (!is_v5(v)) return pl;
  pl.props = properties_size(d.props, prop_context::disconnect);
  if (pl.props != 0) {
    pl.body = 1 + properties_block_size(pl.props);
  } else if (d.reason_code != 0) {
    pl.body = 1;
  }
  return pl;
}

std::uint8_t header_byte(const disconnect&) { return 0xE0; }

void write_body(byte_writer& w, const disconnect& d, protocol_version, const plan& pl) {
  if (pl.body != 0) w.u8(d.reason_code);
  if (pl.props != 0) write_properties(w, d.props, prop_context::disconnect, pl.props);
}

// AUTH has no short form with a reason code alone, so any body carries the
// property length, even when it is 0.
plan plan_for(const auth& a, protocol_version) {
  plan pl;
  pl.props = properties_size(a.props, prop_context::auth);
  if (pl.props != 0 || a.reason_code != 0) pl.body = 1 + properties_block_size(pl.props);
  return pl;
}

std::uint8_t header_byte(const auth&) { return 0xF0; }

void write_body(byte_writer& w, const auth& a, protocol_version, const plan& pl) {
  if (pl.body == 0) return;
  w.u8(a.reason_code);
  write_properties(w, a.props, prop_context::auth, pl.props);
}

// --- drivers

std::size_t total_size(const plan& pl) { return 1 + varint_size(pl.body) + pl.body; }

// AUTH does not exist before MQTT 5: there is nothing to encode.
template <class T>
bool encodable(const T&, protocol_version v) {
  if constexpr (std::is_same_v<T, auth>) return is_v5(v);
  return true;
}

template <class T>
void encode_packet(const T& p, protocol_version v, std::string& out) {
  if (!encodable(p, v)) return;
  const plan pl = plan_for(p, v);
  const std::size_t old = out.size();
  out.resize(old + total_size(pl));
  byte_writer w(out.data() + old);
  w.u8(header_byte(p));
  w.varint(pl.body);
  write_body(w, p, v, pl);
  assert(w.position() == out.data() + out.size());
}

}  // namespace

void encode_publish(const publish& p, protocol_version v, std::string& out) {
  const plan pl = plan_for(p, v);
  const std::size_t total = total_size(pl);
  const std::size_t old = out.size();
  // Reserve once, write the header in place, then copy the payload once
  // (resizing over the payload would zero-fill it first).
  out.reserve(old + total);
  out.resize(old + total - p.payload.size());
  byte_writer w(out.data() + old);
  w.u8(header_byte(p));
  w.varint(pl.body);
  write_body_head(w, p, v, pl);
  assert(w.position() == out.data() + out.size());
  out.append(p.payload);
}

void encode(const packet& p, protocol_version v, std::string& out) {
  std::visit(
      [&](const auto& pkt) {
        if constexpr (std::is_same_v<std::decay_t<decltype(pkt)>, publish>) {
          encode_publish(pkt, v, out);
        } else {
          encode_packet(pkt, v, out);
        }
      },
      p);
}

std::size_t encoded_size(const packet& p, protocol_version v) {
  return std::visit(
      [&](const auto& pkt) -> std::size_t { return encodable(pkt, v) ? total_size(plan_for(pkt, v)) : 0; }, p);
}

}  // namespace flock::codec
