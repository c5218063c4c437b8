// Records -> core types, at start-up only. Besides protobuf's own parse
// check, values the core relies on (QoS 0..2, a known in-flight state, a
// non-zero packet id) are checked here: out of range means the record is not
// what we wrote, and load() reports it as corrupt rather than guessing.
#include "proto/records.pb.h"
#include "storage/keys.hpp"
#include "storage/record_codec.hpp"

namespace flock::storage {
namespace {

namespace rec = flock::records;

template <class Record>
bool parse(Record& r, std::string_view value) {
  return r.ParseFromArray(value.data(), static_cast<int>(value.size()));
}

// Format 1: a protobuf MessageRecord.
std::shared_ptr<core::message> to_message(const rec::MessageRecord& r, const wall_clock_mapping& time) {
  if (r.qos() > 2) return nullptr;
  if (r.has_payload_format_indicator() && r.payload_format_indicator() > 0xFF) return nullptr;
  auto m = std::make_shared<core::message>();
  m->topic = r.topic();
  m->payload = r.payload();
  m->qos = static_cast<std::uint8_t>(r.qos());
  m->retain = r.retain();
  m->publisher = r.publisher();
  if (r.has_expires_at_unix_ms()) m->expires_at = time.from_unix_ms(r.expires_at_unix_ms());
  auto& p = m->props;
  if (r.has_payload_format_indicator()) p.payload_format_indicator = static_cast<std::uint8_t>(r.payload_format_indicator());
  if (r.has_message_expiry_interval()) p.message_expiry_interval = r.message_expiry_interval();
  if (r.has_content_type()) p.content_type = r.content_type();
  if (r.has_response_topic()) p.response_topic = r.response_topic();
  if (r.has_correlation_data()) p.correlation_data = r.correlation_data();
  p.user_properties.reserve(r.user_properties_size());
  for (const auto& up : r.user_properties()) p.user_properties.push_back({up.key(), up.value()});
  m->written = core::stamp{r.written_time(), r.written_node()};
  return m;
}

std::optional<ports::delivery_meta> to_delivery(const rec::DeliveryRecord& r) {
  if (r.qos() > 2) return std::nullopt;
  ports::delivery_meta m;
  m.qos = static_cast<std::uint8_t>(r.qos());
  m.retain = r.retain();
  m.subscription_ids.assign(r.subscription_ids().begin(), r.subscription_ids().end());
  return m;
}

}  // namespace

std::optional<meta_info> decode_meta(std::string_view value) {
  rec::MetaRecord r;
  if (!parse(r, value)) return std::nullopt;
  meta_info m{r.format_version(), r.written_by(), {}};
  if (r.store_id().size() == 16) m.id = {keys::get_be64(r.store_id()), keys::get_be64(r.store_id().substr(8))};
  else if (!r.store_id().empty()) return std::nullopt;
  return m;
}

std::optional<session_info> decode_session(std::string_view value, const wall_clock_mapping& time) {
  rec::SessionRecord r;
  if (!parse(r, value)) return std::nullopt;
  session_info s;
  s.client_id = r.client_id();
  s.expiry_interval = r.expiry_interval();
  if (r.has_expires_at_unix_ms()) s.expires_at = time.from_unix_ms(r.expires_at_unix_ms());
  s.online = r.online();
  if (!r.will_message().empty()) {
    s.will = decode_message(r.will_message(), time);
    if (!s.will) return std::nullopt;
  } else if (r.has_will()) {  // written by format 1
    s.will = to_message(r.will(), time);
    if (!s.will) return std::nullopt;
  }
  if (r.has_will_due_unix_ms()) s.will_due = time.from_unix_ms(r.will_due_unix_ms());
  s.claimed = core::stamp{r.claimed_time(), r.claimed_node()};
  return s;
}

std::optional<core::subscription_options> decode_subscription(std::string_view value) {
  rec::SubscriptionRecord r;
  if (!parse(r, value) || r.qos() > 2 || r.retain_handling() > 2) return std::nullopt;
  core::subscription_options o;
  o.qos = static_cast<std::uint8_t>(r.qos());
  o.no_local = r.no_local();
  o.retain_as_published = r.retain_as_published();
  o.retain_handling = static_cast<std::uint8_t>(r.retain_handling());
  o.identifier = r.identifier();
  return o;
}

std::shared_ptr<core::message> decode_message(std::string_view value, const wall_clock_mapping& time) {
  if (core::is_encoded_message(value)) {
    std::size_t pos = 0;
    auto m = core::decode_message(value, pos, time.instant());
    return m && pos == value.size() ? m : nullptr;
  }
  rec::MessageRecord r;  // written by format 1
  if (!parse(r, value)) return nullptr;
  return to_message(r, time);
}

std::optional<ports::delivery_meta> decode_delivery(std::string_view value) {
  rec::DeliveryRecord r;
  if (!parse(r, value)) return std::nullopt;
  return to_delivery(r);
}

std::optional<inflight_info> decode_inflight(std::string_view value) {
  rec::InflightRecord r;
  if (!parse(r, value) || r.packet_id() == 0 || r.packet_id() > 0xFFFF) return std::nullopt;
  inflight_info f;
  f.packet_id = static_cast<std::uint16_t>(r.packet_id());
  switch (r.state()) {
    case rec::InflightRecord::AWAITING_PUBACK: f.state = core::outgoing_state::awaiting_puback; break;
    case rec::InflightRecord::AWAITING_PUBREC: f.state = core::outgoing_state::awaiting_pubrec; break;
    case rec::InflightRecord::AWAITING_PUBCOMP: f.state = core::outgoing_state::awaiting_pubcomp; break;
    default: return std::nullopt;  // proto3 enums are open: an unknown number parses
  }
  auto meta = to_delivery(r.meta());
  if (!meta) return std::nullopt;
  f.meta = std::move(*meta);
  return f;
}

bool decode_incoming(std::string_view value) {
  rec::IncomingRecord r;
  return parse(r, value);
}

}  // namespace flock::storage
