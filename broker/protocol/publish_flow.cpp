// PUBLISH from the client, the QoS acknowledgements in both directions, and DISCONNECT.
#include "broker/codec/topic.hpp"
#include "broker/protocol/machine_impl.hpp"

namespace flock::protocol {

void connection_machine::impl::handle_publish(codec::publish& p) {
  if (p.qos > config_.maximum_qos) return disconnect_with(codec::rc::qos_not_supported, "QoS not supported");
  if (p.retain && !config_.retain_available) return disconnect_with(codec::rc::retain_not_supported, "retain not supported");

  // Subscription identifiers travel only from server to client (MQTT 5 3.3.4).
  if (!p.props.subscription_identifiers.empty())
    return disconnect_with(codec::rc::protocol_error, "subscription identifier in PUBLISH from a client");
  if (p.props.topic_alias) {
    std::uint16_t alias = *p.props.topic_alias;
    if (alias == 0 || alias > config_.topic_alias_maximum)
      return disconnect_with(codec::rc::topic_alias_invalid, "topic alias out of range");
    if (!p.topic.empty()) {
      inbound_aliases_[alias] = p.topic;
    } else {
      auto it = inbound_aliases_.find(alias);
      if (it == inbound_aliases_.end()) return disconnect_with(codec::rc::protocol_error, "unknown topic alias");
      p.topic = it->second;
    }
  }
  if (!codec::valid_topic_name(p.topic)) return disconnect_with(codec::rc::topic_name_invalid, "invalid topic name");

  auto& incoming = session_->incoming_qos2();
  if (p.qos == 2 && incoming.count(p.packet_id)) {
    // A resend of a message we already have: acknowledge, never deliver twice.
    send(codec::pub_response{codec::packet_type::pubrec, p.packet_id, 0, {}});
    return;
  }
  if (p.qos == 2 && incoming.size() >= config_.receive_maximum)
    return disconnect_with(codec::rc::receive_maximum_exceeded, "receive maximum exceeded");

  stats().add(stats().publish_received[p.qos]);
  if (v5() && p.props.payload_format_indicator.value_or(0) == 1 && !codec::valid_utf8(p.payload)) {
    // The payload says it is UTF-8 but is not: refuse it (MQTT 5 3.3.2.3.2).
    if (p.qos == 1) send(codec::pub_response{codec::packet_type::puback, p.packet_id, codec::rc::payload_format_invalid, {}});
    if (p.qos == 2) send(codec::pub_response{codec::packet_type::pubrec, p.packet_id, codec::rc::payload_format_invalid, {}});
    return;
  }

  if (!may_publish(p.topic)) {
    // Not routed, not retained. MQTT 5 says so in the ack; 3.1.1 cannot, so
    // it gets the normal ack (as Mosquitto does) and the message is dropped.
    stats().add(stats().publish_denied);
    std::uint8_t reason = v5() ? codec::rc::not_authorized : codec::rc::success;
    if (p.qos == 1) send(codec::pub_response{codec::packet_type::puback, p.packet_id, reason, {}});
    if (p.qos == 2) {
      if (!v5()) incoming.insert(p.packet_id);  // the v3 flow goes on to PUBREL/PUBCOMP
      send(codec::pub_response{codec::packet_type::pubrec, p.packet_id, reason, {}});
    }
    return;
  }

  if (p.qos > 0 && !core_.store_healthy()) {
    // The store cannot write (disk full, I/O error): refuse rather than
    // acknowledge what might not be kept. 3.1.1 has no negative ack.
    stats().add(stats().publish_refused_store);
    if (!v5()) return disconnect_with(codec::rc::quota_exceeded, "the store cannot write");
    auto type = p.qos == 1 ? codec::packet_type::puback : codec::packet_type::pubrec;
    send(codec::pub_response{type, p.packet_id, codec::rc::quota_exceeded, {}});
    return;
  }

  auto m = make_message(std::move(p.topic), std::move(p.payload), p.qos, p.retain, std::move(p.props));
  // After a restart a resend of this QoS 2 message must still be known as a
  // duplicate: its id is stored with the message.
  std::optional<ports::store_op> incoming_op;
  if (p.qos == 2 && session_->stores_messages()) incoming_op = ports::incoming_put{session_->id(), p.packet_id};
  auto result = core_.publish(m, std::move(incoming_op));
  // The ack confirms what persistent subscribers were given: it waits for the
  // disk, and for the peers that got a copy to have it on theirs.
  hold_output_until(result.ticket, result.ack);
  std::uint8_t reason = (result.routed == 0 && v5()) ? codec::rc::no_matching_subscribers : codec::rc::success;
  if (p.qos == 1) {
    send(codec::pub_response{codec::packet_type::puback, p.packet_id, reason, {}});
  } else if (p.qos == 2) {
    incoming.insert(p.packet_id);
    send(codec::pub_response{codec::packet_type::pubrec, p.packet_id, reason, {}});
  }
}

std::shared_ptr<core::message> connection_machine::impl::make_message(std::string&& topic, std::string&& payload, std::uint8_t qos,
                                                        bool retain, codec::properties&& props) {
  auto m = std::make_shared<core::message>();
  m->topic = std::move(topic);
  m->payload = std::move(payload);
  m->qos = qos;
  m->retain = retain;
  m->publisher = client_id_;
  m->received_us = core::wall_clock_us();
  if (qos > 0 && core_.persistent()) m->id = core_.new_message_id();  // persistent subscribers store it under this id
  if (props.message_expiry_interval) m->expires_at = core_.now() + std::chrono::seconds(*props.message_expiry_interval);
  m->props = std::move(props);
  m->props.topic_alias.reset();
  m->props.message_expiry_interval.reset();
  m->props.subscription_identifiers.clear();
  m->props.will_delay_interval.reset();
  return m;
}

void connection_machine::impl::handle_ack(const codec::pub_response& r) {
  const auto now = core_.now();
  switch (r.type) {
    case codec::packet_type::puback:
      session_->on_puback(r.packet_id);
      break;
    case codec::packet_type::pubrec:
      if (!session_->on_pubrec(r.packet_id, r.reason_code >= 0x80) && r.reason_code < 0x80) {
        // Unknown id: still answer so the client can finish its flow.
        send(codec::pub_response{codec::packet_type::pubrel, r.packet_id,
                                 v5() ? codec::rc::packet_identifier_not_found : std::uint8_t{0}, {}});
      }
      break;
    case codec::packet_type::pubrel: {
      bool known = session_->incoming_qos2().erase(r.packet_id) > 0;
      // PUBCOMP frees the id for reuse: the id must be gone from disk first.
      if (known && session_->stores_messages())
        hold_output_until(core_.persist(ports::incoming_delete{session_->id(), r.packet_id}));
      std::uint8_t reason = (known || !v5()) ? codec::rc::success : codec::rc::packet_identifier_not_found;
      send(codec::pub_response{codec::packet_type::pubcomp, r.packet_id, reason, {}});
      return;
    }
    case codec::packet_type::pubcomp:
      session_->on_pubcomp(r.packet_id);
      break;
    default:
      return;
  }
  session_->pump(now, stats());  // the window has room again
}

void connection_machine::impl::handle_disconnect(const codec::disconnect& d) {
  if (v5() && d.props.session_expiry_interval) {
    // MQTT 5 3.14.2.2.2: a session that was to end with the connection cannot be
    // made persistent at DISCONNECT.
    if (session_expiry_ == 0 && *d.props.session_expiry_interval != 0)
      return disconnect_with(codec::rc::protocol_error, "session expiry set at DISCONNECT after 0 at CONNECT");
    session_expiry_ = std::min(*d.props.session_expiry_interval, config_.max_session_expiry);
    session_->set_expiry_interval(session_expiry_);
  }
  // Normal DISCONNECT discards the will; v5 reason 0x04 asks for it.
  if (!(v5() && d.reason_code == codec::rc::disconnect_with_will)) will_.reset();
  close_quietly();
}

}  // namespace flock::protocol
