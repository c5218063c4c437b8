// store_op -> writes. Runs on the store's writer thread, once per op that
// survives coalescing; the message payload is copied once, into the record.
#include <type_traits>

#include "proto/records.pb.h"
#include "storage/keys.hpp"
#include "storage/partition_writes.hpp"
#include "storage/record_codec.hpp"

namespace flock::storage {
namespace {

namespace rec = flock::records;

void fill_delivery(rec::DeliveryRecord& r, const ports::delivery_meta& m) {
  r.set_qos(m.qos);
  r.set_retain(m.retain);
  for (auto id : m.subscription_ids) r.add_subscription_ids(id);
}

template <class Record>
void put(kv_batch& batch, column c, std::string key, const Record& r) {
  kv_write w{kv_write::kind::put, c, std::move(key), {}};
  r.SerializeToString(&w.value);
  batch.push_back(std::move(w));
}

void put_message(kv_batch& batch, column c, std::string key, const core::message& m, const wall_clock_mapping& time) {
  kv_write w{kv_write::kind::put, c, std::move(key), {}};
  core::encode_message(m, time.instant(), w.value);
  batch.push_back(std::move(w));
}

void del(kv_batch& batch, column c, std::string key) {
  batch.push_back(kv_write{kv_write::kind::del, c, std::move(key), {}});
}

rec::InflightRecord::State to_record(core::outgoing_state s) {
  switch (s) {
    case core::outgoing_state::awaiting_puback: return rec::InflightRecord::AWAITING_PUBACK;
    case core::outgoing_state::awaiting_pubrec: return rec::InflightRecord::AWAITING_PUBREC;
    case core::outgoing_state::awaiting_pubcomp: return rec::InflightRecord::AWAITING_PUBCOMP;
  }
  return rec::InflightRecord::AWAITING_PUBACK;
}

}  // namespace

void encode_op(const ports::store_op& op, const wall_clock_mapping& time, kv_batch& batch) {
  std::visit(
      [&](const auto& o) {
        using T = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<T, ports::session_put>) {
          rec::SessionRecord r;
          r.set_client_id(o.client_id);
          r.set_expiry_interval(o.expiry_interval);
          if (o.expires_at) r.set_expires_at_unix_ms(time.to_unix_ms(*o.expires_at));
          r.set_online(o.online);
          if (o.will) core::encode_message(*o.will, time.instant(), *r.mutable_will_message());
          if (o.will_due) r.set_will_due_unix_ms(time.to_unix_ms(*o.will_due));
          r.set_claimed_time(o.claimed.time);
          r.set_claimed_node(o.claimed.node);
          put(batch, column::sessions, keys::id_key(o.session_id), r);
        } else if constexpr (std::is_same_v<T, ports::session_delete>) {
          del(batch, column::sessions, keys::id_key(o.session_id));
          auto [begin, end] = keys::session_range(o.session_id);
          for (column c : {column::subscriptions, column::queue, column::inflight, column::incoming})
            batch.push_back(kv_write{kv_write::kind::del_range, c, begin, end});
        } else if constexpr (std::is_same_v<T, ports::subscription_put>) {
          rec::SubscriptionRecord r;
          r.set_qos(o.options.qos);
          r.set_no_local(o.options.no_local);
          r.set_retain_as_published(o.options.retain_as_published);
          r.set_retain_handling(o.options.retain_handling);
          r.set_identifier(o.options.identifier);
          put(batch, column::subscriptions, keys::subscription_key(o.session_id, o.filter), r);
        } else if constexpr (std::is_same_v<T, ports::subscription_delete>) {
          del(batch, column::subscriptions, keys::subscription_key(o.session_id, o.filter));
        } else if constexpr (std::is_same_v<T, ports::message_put>) {
          // Encoded once, copied into each partition's record.
          const std::size_t first = batch.size();
          o.msg->partitions.for_each([&](replication::partition_id p) {
            if (batch.size() == first) put_message(batch, column::messages, keys::message_key(p, o.msg->id), *o.msg, time);
            else batch.push_back({kv_write::kind::put, column::messages, keys::message_key(p, o.msg->id), batch[first].value});
          });
        } else if constexpr (std::is_same_v<T, ports::message_delete>) {
          o.partitions.for_each(
              [&](replication::partition_id p) { del(batch, column::messages, keys::message_key(p, o.message_id)); });
        } else if constexpr (std::is_same_v<T, ports::partition_drop>) {
          drop_partition(o.partition, batch);
        } else if constexpr (std::is_same_v<T, ports::queued_put>) {
          rec::DeliveryRecord r;
          fill_delivery(r, o.meta);
          put(batch, column::queue, keys::pair_key(o.session_id, o.message_id), r);
        } else if constexpr (std::is_same_v<T, ports::queued_delete>) {
          del(batch, column::queue, keys::pair_key(o.session_id, o.message_id));
        } else if constexpr (std::is_same_v<T, ports::inflight_put>) {
          rec::InflightRecord r;
          r.set_packet_id(o.packet_id);
          r.set_state(to_record(o.state));
          fill_delivery(*r.mutable_meta(), o.meta);
          put(batch, column::inflight, keys::pair_key(o.session_id, o.message_id), r);
        } else if constexpr (std::is_same_v<T, ports::inflight_delete>) {
          del(batch, column::inflight, keys::pair_key(o.session_id, o.message_id));
        } else if constexpr (std::is_same_v<T, ports::incoming_put>) {
          put(batch, column::incoming, keys::incoming_key(o.session_id, o.packet_id), rec::IncomingRecord{});
        } else if constexpr (std::is_same_v<T, ports::incoming_delete>) {
          del(batch, column::incoming, keys::incoming_key(o.session_id, o.packet_id));
        } else if constexpr (std::is_same_v<T, ports::retained_put>) {
          put_message(batch, column::retained, o.msg->topic, *o.msg, time);
        } else if constexpr (std::is_same_v<T, ports::retained_delete>) {
          del(batch, column::retained, o.topic);
        } else {
          static_assert(sizeof(T) == 0, "every store_op is encoded");
        }
      },
      op);
}

std::string encode_meta(std::uint32_t format_version, std::string_view written_by, ports::store_identity id) {
  rec::MetaRecord r;
  r.set_format_version(format_version);
  r.set_written_by(std::string(written_by));
  if (!id.empty()) {
    std::string raw;
    keys::put_be64(raw, id.hi);
    keys::put_be64(raw, id.lo);
    r.set_store_id(raw);
  }
  return r.SerializeAsString();
}

}  // namespace flock::storage
