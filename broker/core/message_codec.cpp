#include "broker/core/message_codec.hpp"

#include <chrono>

#include "broker/codec/codec.hpp"
#include "broker/codec/topic.hpp"
#include "broker/core/varint_io.hpp"

namespace flock::core {

namespace {

enum flag : std::uint64_t {
  qos_mask = 0x03,
  retain = 0x04,
  expiry = 0x08,
  stamp_present = 0x10,
  properties_present = 0x20,
  publisher_present = 0x40,
  known_flags = 0x7F,
};

bool has_properties(const codec::properties& p) {
  return p.payload_format_indicator || p.message_expiry_interval || p.content_type || p.response_topic ||
         p.correlation_data || !p.user_properties.empty();
}

}  // namespace

void encode_message(const message& m, const wall_instant& at, std::string& out) {
  std::uint64_t flags = m.qos & qos_mask;
  if (m.retain) flags |= retain;
  if (m.expires_at) flags |= expiry;
  if (!m.written.empty()) flags |= stamp_present;
  const bool props = has_properties(m.props);
  if (props) flags |= properties_present;
  if (!m.publisher.empty()) flags |= publisher_present;
  out.push_back(static_cast<char>(message_codec_magic));
  put_varint(out, flags);
  put_bytes(out, m.topic);
  put_bytes(out, m.payload);
  if (!m.publisher.empty()) put_bytes(out, m.publisher);
  if (m.expires_at) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*m.expires_at - at.now).count();
    const std::int64_t deadline = at.unix_ms + left;
    put_varint(out, deadline > 0 ? static_cast<std::uint64_t>(deadline) : 0);
  }
  if (!m.written.empty()) {
    put_varint(out, m.written.time);
    put_varint(out, m.written.node);
  }
  // As a will carries them: a will is the one message that keeps its
  // Message Expiry Interval until it is published.
  if (props) codec::append_message_properties(m.props, out);
}

std::shared_ptr<message> decode_message(std::string_view in, std::size_t& pos, const wall_instant& at) {
  if (pos >= in.size() || static_cast<std::uint8_t>(in[pos]) != message_codec_magic) return nullptr;
  varint_reader r{in, pos + 1};
  const std::uint64_t flags = r.varint();
  auto topic = r.bytes();
  auto payload = r.bytes();
  if (!r.ok || (flags & ~std::uint64_t{known_flags}) != 0 || (flags & qos_mask) > 2) return nullptr;
  if (!codec::valid_topic_name(topic)) return nullptr;
  auto m = std::make_shared<message>();
  m->topic = topic;
  m->payload = payload;
  m->qos = static_cast<std::uint8_t>(flags & qos_mask);
  m->retain = (flags & retain) != 0;
  if (flags & publisher_present) m->publisher = r.bytes();
  if (flags & expiry) {
    // Clamped to +-100 years: a strange value must not overflow the
    // nanosecond arithmetic of time_point.
    constexpr std::int64_t limit = 100LL * 366 * 24 * 3600 * 1000;
    const std::uint64_t deadline = r.varint();
    const std::int64_t diff =
        deadline > static_cast<std::uint64_t>(at.unix_ms + limit) ? limit : static_cast<std::int64_t>(deadline) - at.unix_ms;
    m->expires_at = at.now + std::chrono::milliseconds(std::max(diff, -limit));
  }
  if (flags & stamp_present) {
    m->written.time = r.varint();
    m->written.node = r.varint();
  }
  if (!r.ok) return nullptr;
  if ((flags & properties_present) && !codec::read_message_properties(in, r.pos, m->props)) return nullptr;
  pos = r.pos;
  return m;
}

}  // namespace flock::core
