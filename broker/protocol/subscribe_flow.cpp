// SUBSCRIBE / UNSUBSCRIBE, and retained messages sent on subscribe.
#include "broker/codec/topic.hpp"
#include "broker/protocol/machine_impl.hpp"

namespace flock::protocol {

void connection_machine::impl::handle_subscribe(const codec::subscribe& s) {
  std::uint32_t id = s.props.subscription_identifiers.empty() ? 0 : s.props.subscription_identifiers.front();
  codec::suback ack{s.packet_id, {}, {}};
  std::vector<core::delivery> retained;
  for (const auto& t : s.topics) {
    if (!codec::valid_topic_filter(t.filter)) {
      ack.reason_codes.push_back(v5() ? codec::rc::topic_filter_invalid : codec::rc::unspecified_error);
      continue;
    }
    auto shared = codec::parse_shared_filter(t.filter);
    if (shared && t.no_local && v5())
      return disconnect_with(codec::rc::protocol_error, "No Local on a shared subscription");
    if (!may_read(t.filter)) {
      ack.reason_codes.push_back(v5() ? codec::rc::not_authorized : codec::rc::unspecified_error);
      continue;
    }
    core::subscription_options opts;
    opts.qos = std::min(t.qos, config_.maximum_qos);
    opts.no_local = t.no_local;
    opts.retain_as_published = t.retain_as_published;
    opts.retain_handling = t.retain_handling;
    opts.identifier = id;
    auto change = core_.subscribe(session_, t.filter, opts);
    bool is_new = change.changed;
    hold_output_until(change.ticket);
    ack.reason_codes.push_back(opts.qos);
    // Retained messages: never for shared subscriptions (MQTT 5 4.8.2);
    // Retain Handling 1 only when the subscription is new, 2 never.
    if (shared || t.retain_handling == 2 || (t.retain_handling == 1 && !is_new)) continue;
    for (auto& m : core_.retained_for(t.filter)) {
      core::delivery d{m, std::min(m->qos, opts.qos), true, {}};
      if (id != 0) d.subscription_ids.push_back(id);
      retained.push_back(std::move(d));
    }
  }
  send(ack);  // SUBACK first, then the retained messages
  if (!retained.empty()) session_->enqueue_all(retained, core_.now(), stats());
}

void connection_machine::impl::handle_unsubscribe(const codec::unsubscribe& u) {
  codec::unsuback ack{u.packet_id, {}, {}};
  for (const auto& f : u.filters) {
    if (!codec::valid_topic_filter(f)) {
      ack.reason_codes.push_back(codec::rc::topic_filter_invalid);
      continue;
    }
    auto change = core_.unsubscribe(session_, f);
    hold_output_until(change.ticket);
    ack.reason_codes.push_back(change.changed ? codec::rc::success : codec::rc::no_subscription_existed);
  }
  send(ack);
}

}  // namespace flock::protocol
