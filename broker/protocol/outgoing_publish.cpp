// The session sink: PUBLISH and PUBREL towards the client, with outgoing
// topic aliases, remaining message expiry and the client's Maximum Packet Size.
#include <chrono>

#include "broker/protocol/machine_impl.hpp"

namespace flock::protocol {

std::uint16_t connection_machine::impl::send_window() const {
  return std::min<std::uint16_t>(client_receive_maximum_, config_.max_inflight_messages);
}

bool connection_machine::impl::writable() const {
  return phase_ == phase::connected && io_.pending_bytes() + held_bytes() < config_.max_outbound_bytes;
}

connection_machine::impl::send_result connection_machine::impl::send_publish(const core::delivery& d,
                                                                             std::uint16_t packet_id, bool dup) {
  if (phase_ == phase::closed) return send_result::sent;  // stays in flight for the next connection
  // Read access per delivered message, as Mosquitto checks it: a subscription
  // to a/# must not carry a topic this client may not read (a deny rule on
  // a/secret, a session resumed under another user name, retained messages).
  if (!may_read(d.msg->topic)) return send_result::not_authorized;
  // Reused per thread: assigning into it keeps the capacity of its strings.
  thread_local codec::publish p;
  const core::message& m = *d.msg;
  p.dup = dup;
  p.qos = d.qos;
  p.retain = d.retain;
  p.packet_id = packet_id;
  p.payload.assign(m.payload);
  p.topic.assign(m.topic);
  std::uint16_t new_alias = 0;
  if (v5()) {
    p.props = m.props;
    p.props.subscription_identifiers = d.subscription_ids;
    if (m.expires_at) {
      auto left = std::chrono::ceil<std::chrono::seconds>(*m.expires_at - core_.now()).count();
      p.props.message_expiry_interval = static_cast<std::uint32_t>(std::max<std::int64_t>(left, 1));
    }
    if (client_topic_alias_maximum_ > 0) {
      auto it = outbound_aliases_.find(m.topic);
      if (it != outbound_aliases_.end()) {
        p.props.topic_alias = it->second;
        p.topic.clear();  // the client already knows this alias
      } else if (outbound_aliases_.size() < client_topic_alias_maximum_) {
        new_alias = static_cast<std::uint16_t>(outbound_aliases_.size() + 1);
        p.props.topic_alias = new_alias;
      }
    }
  } else {
    p.props = {};
  }

  auto& buffer = out();
  std::size_t before = buffer.size();
  codec::encode_publish(p, version_, buffer);
  std::size_t size = buffer.size() - before;
  if (client_maximum_packet_size_ != 0 && size > client_maximum_packet_size_) {
    // Never send a client more than it said it accepts (MQTT 5 3.1.2.11.4):
    // the message is dropped for this client as if it had been delivered.
    buffer.resize(before);
    return send_result::too_large;
  }
  if (new_alias != 0) outbound_aliases_.emplace(m.topic, new_alias);
  auto& st = stats();
  st.add(st.publish_sent[p.qos]);
  st.add(st.packets_sent[static_cast<std::size_t>(codec::packet_type::publish)]);
  st.add(st.bytes_sent, size);
  if (d.live && m.received_us != 0) {
    auto waited = core::wall_clock_us() - m.received_us;  // another node's clock may run ahead
    (m.from_peer ? st.deliver_forwarded : st.deliver_local).observe(waited > 0 ? std::uint64_t(waited) : 0);
  }
  flush_out();
  return send_result::sent;
}

void connection_machine::impl::send_pubrel(std::uint16_t packet_id) {
  if (phase_ == phase::closed) return;
  send(codec::pub_response{codec::packet_type::pubrel, packet_id, 0, {}});
}

}  // namespace flock::protocol
