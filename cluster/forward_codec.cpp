#include "cluster/forward_codec.hpp"

#include <chrono>

#include "broker/codec/topic.hpp"
#include "broker/core/message_codec.hpp"
#include "broker/core/varint_io.hpp"
#include "cluster/wire_codec.hpp"

namespace flock::cluster {

namespace {

using core::put_bytes;
using core::put_varint;

enum flag : std::uint8_t {
  qos_mask = 0x03,
  retain = 0x04,
  expiry = 0x08,
  properties = 0x10,
  picks_present = 0x20,
  stamp_present = 0x40,
};

bool has_properties(const codec::properties& p) {
  return p.payload_format_indicator || p.content_type || p.response_topic || p.correlation_data ||
         !p.user_properties.empty();
}

// Count, then group and filter of each: the same in both protocols.
void put_picks(std::string& out, const std::vector<ports::shared_pick>& picks) {
  put_varint(out, picks.size());
  for (const auto& p : picks) {
    put_bytes(out, p.group);
    put_bytes(out, p.filter);
  }
}

void read_picks(core::varint_reader& r, std::vector<ports::shared_pick>& picks) {
  const auto n = r.varint();
  for (std::uint64_t i = 0; i < n && r.ok; ++i) {
    auto group = r.bytes();
    auto filter = r.bytes();
    if (r.ok) picks.push_back({std::string(group), std::string(filter)});
  }
}

}  // namespace

void encode_forward(std::string& out, std::uint64_t seq, const core::message& m,
                    const std::vector<ports::shared_pick>& picks, ports::time_point now) {
  put_varint(out, seq);
  // Length first: a record whose message the receiver finds invalid is
  // skipped, and its seq still acknowledged.
  thread_local std::string message;
  message.clear();
  core::encode_message(m, wire_instant(now), message);
  put_bytes(out, message);
  put_picks(out, picks);
}

bool decode_forwards(std::string_view in, ports::time_point now, std::vector<decoded_forward>& out) {
  core::varint_reader r{in};
  while (r.ok && r.pos < in.size()) {
    decoded_forward f;
    f.seq = r.varint();
    const auto message = r.bytes();
    if (!r.ok) return false;
    std::size_t end = 0;
    f.publish.msg = core::decode_message(message, end, wire_instant(now));
    if (end != message.size()) f.publish.msg = nullptr;  // invalid: skipped, its seq counted
    read_picks(r, f.publish.picks);
    if (!r.ok) return false;
    out.push_back(std::move(f));
  }
  return r.ok;
}

void encode_forward_v1(std::string& out, std::uint64_t seq, const core::message& m,
                       const std::vector<ports::shared_pick>& picks, ports::time_point now) {
  std::uint8_t flags = m.qos & qos_mask;
  if (m.retain) flags |= retain;
  if (m.expires_at) flags |= expiry;
  const bool props = has_properties(m.props);
  if (props) flags |= properties;
  if (!picks.empty()) flags |= picks_present;
  if (!m.written.empty()) flags |= stamp_present;
  put_varint(out, seq);
  out.push_back(static_cast<char>(flags));
  put_bytes(out, m.topic);
  put_bytes(out, m.payload);
  put_bytes(out, m.publisher);
  if (m.expires_at) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*m.expires_at - now).count();
    put_varint(out, left > 0 ? static_cast<std::uint64_t>(left) : 0);
  }
  if (!m.written.empty()) {
    put_varint(out, m.written.time);
    put_varint(out, m.written.node);
  }
  if (props) {
    // Rare (MQTT 5 properties): the protobuf form, so both codecs agree on them.
    core::message only_props;
    only_props.props = m.props;
    wire::Message w;
    encode_message(only_props, now, protocol_first, w);
    w.clear_topic();
    put_bytes(out, w.SerializeAsString());
  }
  if (!picks.empty()) put_picks(out, picks);
}

bool decode_forwards_v1(std::string_view in, ports::time_point now, std::vector<decoded_forward>& out) {
  core::varint_reader r{in};
  while (r.ok && r.pos < in.size()) {
    decoded_forward f;
    f.seq = r.varint();
    const std::uint8_t flags = r.byte();
    auto topic = r.bytes();
    auto payload = r.bytes();
    auto publisher = r.bytes();
    if (!r.ok) return false;
    auto m = std::make_shared<core::message>();
    m->qos = flags & qos_mask;
    m->retain = (flags & retain) != 0;
    m->topic = topic;
    m->payload = payload;
    m->publisher = publisher;
    if (flags & expiry) m->expires_at = now + std::chrono::milliseconds(r.varint());
    if (flags & stamp_present) {
      m->written.time = r.varint();
      m->written.node = r.varint();
    }
    bool valid = m->qos <= 2 && codec::valid_topic_name(m->topic);
    if (flags & properties) {
      wire::Message w;
      auto b = r.bytes();
      if (!r.ok) return false;
      std::shared_ptr<core::message> p;
      bool parsed = w.ParseFromArray(b.data(), static_cast<int>(b.size()));
      w.set_topic("p");  // the properties' holder has no topic of its own
      if (parsed && (p = decode_message(w, now))) {
        m->props = std::move(p->props);
      } else {
        valid = false;
      }
    }
    if (flags & picks_present) read_picks(r, f.publish.picks);
    if (!r.ok) return false;
    if (valid) f.publish.msg = std::move(m);
    out.push_back(std::move(f));
  }
  return r.ok;
}

}  // namespace flock::cluster
