#include "cluster/wire_codec.hpp"

#include <chrono>

#include "broker/codec/topic.hpp"

namespace flock::cluster {

namespace {

void encode_options(const std::string& filter, const core::subscription_options& o, wire::Subscription& out) {
  out.set_filter(filter);
  out.set_qos(o.qos);
  out.set_no_local(o.no_local);
  out.set_retain_as_published(o.retain_as_published);
  out.set_retain_handling(o.retain_handling);
  out.set_identifier(o.identifier);
}

template <class Delivery>
void encode_any_delivery(const Delivery& d, ports::time_point now, std::uint32_t protocol, wire::Delivery& out) {
  if (d.msg) encode_message(*d.msg, now, protocol, *out.mutable_message());
  out.set_qos(d.qos);
  out.set_retain(d.retain);
  for (auto id : d.subscription_ids) out.add_subscription_ids(id);
}

}  // namespace

void encode_message(const core::message& m, ports::time_point now, std::uint32_t protocol, wire::Message& out) {
  if (protocol >= protocol_message_codec) return core::encode_message(m, wire_instant(now), *out.mutable_encoded());
  // Protocol 1 (a peer from before): remove once no release speaks it.
  out.set_topic(m.topic);
  out.set_payload(m.payload);
  out.set_qos(m.qos);
  out.set_retain(m.retain);
  out.set_publisher(m.publisher);
  if (m.expires_at) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*m.expires_at - now).count();
    out.set_expiry_ms(left > 0 ? static_cast<std::uint64_t>(left) : 0);
  }
  const auto& p = m.props;
  if (p.payload_format_indicator) out.set_payload_format_indicator(*p.payload_format_indicator);
  if (p.content_type) out.set_content_type(*p.content_type);
  if (p.response_topic) out.set_response_topic(*p.response_topic);
  if (p.correlation_data) out.set_correlation_data(*p.correlation_data);
  for (const auto& up : p.user_properties) {
    auto* u = out.add_user_properties();
    u->set_key(up.key);
    u->set_value(up.value);
  }
  out.set_written_time(m.written.time);
  out.set_written_node(m.written.node);
}

std::shared_ptr<core::message> decode_message(const wire::Message& in, ports::time_point now) {
  if (!in.encoded().empty()) {
    std::size_t pos = 0;
    auto m = core::decode_message(in.encoded(), pos, wire_instant(now));
    return m && pos == in.encoded().size() ? m : nullptr;
  }
  if (in.qos() > 2 || !codec::valid_topic_name(in.topic())) return nullptr;
  if (in.has_payload_format_indicator() && in.payload_format_indicator() > 1) return nullptr;
  auto m = std::make_shared<core::message>();
  m->topic = in.topic();
  m->payload = in.payload();
  m->qos = static_cast<std::uint8_t>(in.qos());
  m->retain = in.retain();
  m->publisher = in.publisher();
  if (in.has_expiry_ms()) m->expires_at = now + std::chrono::milliseconds(in.expiry_ms());
  auto& p = m->props;
  if (in.has_payload_format_indicator()) p.payload_format_indicator = static_cast<std::uint8_t>(in.payload_format_indicator());
  if (in.has_content_type()) p.content_type = in.content_type();
  if (in.has_response_topic()) p.response_topic = in.response_topic();
  if (in.has_correlation_data()) p.correlation_data = in.correlation_data();
  for (const auto& up : in.user_properties()) p.user_properties.push_back({up.key(), up.value()});
  m->written = core::stamp{in.written_time(), in.written_node()};
  return m;
}

void encode_delivery(const core::delivery& d, ports::time_point now, std::uint32_t protocol, wire::Delivery& out) {
  encode_any_delivery(d, now, protocol, out);
}
void encode_delivery(const ports::moved_delivery& d, ports::time_point now, std::uint32_t protocol,
                     wire::Delivery& out) {
  encode_any_delivery(d, now, protocol, out);
}

std::optional<ports::moved_delivery> decode_delivery(const wire::Delivery& in, ports::time_point now) {
  if (in.qos() > 2) return std::nullopt;
  ports::moved_delivery d;
  if (in.has_message()) {
    d.msg = decode_message(in.message(), now);
    if (!d.msg) return std::nullopt;
  }
  d.qos = static_cast<std::uint8_t>(in.qos());
  d.retain = in.retain();
  d.subscription_ids.assign(in.subscription_ids().begin(), in.subscription_ids().end());
  return d;
}

void encode_session(const ports::moved_session& s, ports::time_point now, std::uint32_t protocol,
                    wire::SessionState& out) {
  out.set_claimed_time(s.claimed.time);
  out.set_claimed_node(s.claimed.node);
  out.set_expiry_interval(s.expiry_interval);
  for (const auto& [filter, o] : s.subscriptions) encode_options(filter, o, *out.add_subscriptions());
  for (const auto& d : s.queue) encode_delivery(d, now, protocol, *out.add_queue());
  for (const auto& f : s.inflight) {
    auto* w = out.add_inflight();
    w->set_packet_id(f.packet_id);
    w->set_state(static_cast<std::uint32_t>(f.state));
    encode_delivery(f.d, now, protocol, *w->mutable_delivery());
  }
  for (auto id : s.incoming_qos2) out.add_incoming_qos2(id);
}

std::optional<ports::moved_session> decode_session(const wire::SessionState& in, ports::time_point now) {
  ports::moved_session s;
  s.claimed = core::stamp{in.claimed_time(), in.claimed_node()};
  s.expiry_interval = in.expiry_interval();
  for (const auto& w : in.subscriptions()) {
    if (w.qos() > 2 || w.retain_handling() > 2 || !codec::valid_topic_filter(w.filter())) return std::nullopt;
    core::subscription_options o;
    o.qos = static_cast<std::uint8_t>(w.qos());
    o.no_local = w.no_local();
    o.retain_as_published = w.retain_as_published();
    o.retain_handling = static_cast<std::uint8_t>(w.retain_handling());
    o.identifier = w.identifier();
    s.subscriptions.emplace_back(w.filter(), o);
  }
  for (const auto& w : in.queue()) {
    auto d = decode_delivery(w, now);
    if (!d || !d->msg) return std::nullopt;
    s.queue.push_back(std::move(*d));
  }
  for (const auto& w : in.inflight()) {
    if (w.packet_id() == 0 || w.packet_id() > 0xFFFF || w.state() > 2) return std::nullopt;
    auto d = decode_delivery(w.delivery(), now);
    if (!d) return std::nullopt;
    auto state = static_cast<core::outgoing_state>(w.state());
    if (!d->msg && state != core::outgoing_state::awaiting_pubcomp) return std::nullopt;
    s.inflight.push_back({static_cast<std::uint16_t>(w.packet_id()), state, std::move(*d)});
  }
  for (auto id : in.incoming_qos2()) {
    if (id == 0 || id > 0xFFFF) return std::nullopt;
    s.incoming_qos2.push_back(static_cast<std::uint16_t>(id));
  }
  return s;
}

}  // namespace flock::cluster
