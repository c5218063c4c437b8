// See loader.hpp. One pass per column, in an order where everything a
// record refers to is already known: sessions, messages, then the records
// under a session (which may reference messages), then retained.
#include "storage/loader.hpp"

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <stdexcept>
#include <unordered_map>

#include "broker/replication/partition.hpp"
#include "storage/errors.hpp"
#include "storage/keys.hpp"
#include "storage/partition_migration.hpp"
#include "storage/partition_writes.hpp"
#include "storage/record_codec.hpp"

namespace flock::storage {
namespace {

constexpr std::uint32_t never_expires = 0xFFFFFFFF;

class loader {
 public:
  loader(kv_backend& b, const ports::clock& clock, std::optional<replication::partition_id> only)
      : b_(b), clock_(clock), time_(clock), only_(only) {}

  // One partition's sessions, repaired like a whole load (no retained, no
  // format record).
  ports::restored_state run_partition(repair_report& report) {
    load_session_columns();
    return finish(report);
  }

  ports::restored_state run(repair_report& report) {
    std::uint32_t format = check_meta();  // 0: no format record
    const bool has_meta = format != 0;
    if (has_meta && format < 3) {
      migrate(report);
      format = record_format_version;
    }
    load_session_columns();
    load_retained();
    if (!has_meta && records_seen_ > 0)
      throw_corrupt(b_.location(), "column family default, key \"format\": the format record is missing");
    // A new directory, or one from before store ids, gets its identity now.
    // Records this build writes from now on are of its format: an older
    // build must refuse the directory rather than misread them.
    if (!has_meta || format < record_format_version || identity_.empty()) {
      if (identity_.empty()) identity_ = new_identity();
      repair_.push_back({kv_write::kind::put, column::meta, std::string(keys::meta_format),
                         encode_meta(record_format_version, "flock " FLOCK_VERSION, identity_)});
      report.wrote_meta = true;
    }
    auto out = finish(report);
    out.retained = std::move(retained_);
    out.identity = identity_;
    return out;
  }

 private:
  // Format 1 and 2 directories to the partitioned keys, in one synced batch
  // with the new format record.
  void migrate(repair_report& report) {
    if (identity_.empty()) identity_ = new_identity();
    kv_batch batch;
    report.migration = plan_partition_migration(b_, time_, batch);
    batch.push_back({kv_write::kind::put, column::meta, std::string(keys::meta_format),
                     encode_meta(record_format_version, "flock " FLOCK_VERSION, identity_)});
    auto st = b_.write(batch, true);
    if (!st.ok()) throw std::runtime_error(b_.location() + " is not writable: " + st.error);
    report.migrated = true;
  }

  void load_session_columns() {
    load_sessions();
    load_messages();
    load_subscriptions();
    load_deliveries(column::queue);
    load_deliveries(column::inflight);
    load_incoming();
  }

  ports::restored_state finish(repair_report& report) {
    drop_unreferenced_messages();
    for (auto sid : doomed_) encode_op(ports::session_delete{sid}, time_, repair_);
    report.old_incarnations = old_incarnations_;
    report.orphan_sessions = doomed_.size() - old_incarnations_;
    report.missing_message_refs = missing_refs_;
    report.unreferenced_messages = unreferenced_;
    if (!repair_.empty()) {
      auto st = b_.write(repair_, true);
      if (!st.ok()) throw std::runtime_error(b_.location() + " is not writable: " + st.error);
    }
    ports::restored_state out;
    out.sessions = std::move(sessions_);
    out.partitions = std::move(positions_);
    out.next_id = max_id_ + 1;
    return out;
  }

  [[noreturn]] void bad(column c, std::string_view key, std::string_view what) {
    throw_corrupt(b_.location(), "column family " + std::string(column_name(c)) + ", key " + hex(key) + ": " +
                                     std::string(what));
  }
  // Ids come from one counter (session ids carry it below their partition).
  void saw_id(std::uint64_t id) { max_id_ = std::max(max_id_, id & replication::session_counter_mask); }

  void scan(column c, const std::function<void(std::string_view, std::string_view)>& fn) {
    if (!only_) return b_.scan(c, fn);
    auto [begin, end] = keys::partition_range(*only_);
    b_.scan_range(c, begin, end, fn);
  }
  ports::store_identity identity_;

  // The format of the data here; 0: no format record.
  std::uint32_t check_meta() {
    auto v = b_.get(column::meta, keys::meta_format);
    if (!v) return 0;
    auto meta = decode_meta(*v);
    if (!meta) bad(column::meta, keys::meta_format, "record does not decode");
    if (meta->format_version > record_format_version)
      throw std::runtime_error(b_.location() + " was written by a newer flock (record format " +
                               std::to_string(meta->format_version) + "; this build reads up to " +
                               std::to_string(record_format_version) + ")");
    identity_ = meta->id;
    return std::max<std::uint32_t>(meta->format_version, 1);
  }

  static ports::store_identity new_identity() {
    std::random_device rd;
    ports::store_identity id;
    while (id.empty()) {
      id.hi = (std::uint64_t{rd()} << 32) | rd();
      id.lo = (std::uint64_t{rd()} << 32) | rd();
    }
    return id;
  }

  void load_sessions() {
    std::unordered_map<std::string, std::size_t> by_client;  // client id -> index in sessions_
    const auto now = clock_.now();
    scan(column::sessions, [&](std::string_view k, std::string_view v) {
      ++records_seen_;
      if (is_position_key(k)) {
        auto pos = decode_position(v);
        if (!pos) bad(column::sessions, k, "partition record does not decode");
        positions_.emplace_back(keys::get_be16(k), *pos);
        return;
      }
      auto sid = keys::parse_id(k);
      if (!sid) bad(column::sessions, k, "malformed key");
      auto s = decode_session(v, time_);
      if (!s) bad(column::sessions, k, "record does not decode");
      saw_id(*sid);
      ports::restored_session r;
      r.session_id = *sid;
      r.client_id = std::move(s->client_id);
      r.expiry_interval = s->expiry_interval;
      if (s->online) {
        // It was online when the broker stopped: its expiry starts now.
        if (s->expiry_interval != never_expires) r.expires_at = now + std::chrono::seconds(s->expiry_interval);
      } else {
        r.expires_at = s->expires_at;
      }
      r.will = std::move(s->will);
      r.will_due = s->will_due;
      r.claimed = s->claimed;
      // Keys come in id order, so a later record of the same client is newer.
      auto [it, fresh] = by_client.try_emplace(r.client_id, sessions_.size());
      if (!fresh) {
        doomed_.insert(sessions_[it->second].session_id);
        ++old_incarnations_;
        index_.erase(sessions_[it->second].session_id);
        sessions_[it->second] = std::move(r);
        index_[*sid] = it->second;
        return;
      }
      index_[*sid] = sessions_.size();
      sessions_.push_back(std::move(r));
    });
  }

  // The live session for sid, or null (and sid marked for deletion).
  ports::restored_session* session_of(std::uint64_t sid) {
    saw_id(sid);
    auto it = index_.find(sid);
    if (it != index_.end()) return &sessions_[it->second];
    doomed_.insert(sid);
    return nullptr;
  }

  void load_messages() {
    scan(column::messages, [&](std::string_view k, std::string_view v) {
      ++records_seen_;
      auto key = keys::parse_message(k);
      if (!key) bad(column::messages, k, "malformed key");
      const auto [partition, id] = *key;
      saw_id(id);
      // The copies in several partitions are one message: decoded once.
      auto [it, fresh] = messages_.try_emplace(id);
      if (fresh) {
        it->second.msg = decode_message(v, time_);
        if (!it->second.msg) bad(column::messages, k, "record does not decode");
        it->second.msg->id = id;
      }
      it->second.copies.add(partition);
    });
  }

  void load_subscriptions() {
    scan(column::subscriptions, [&](std::string_view k, std::string_view v) {
      ++records_seen_;
      auto key = keys::parse_subscription(k);
      if (!key) bad(column::subscriptions, k, "malformed key");
      auto opts = decode_subscription(v);
      if (!opts) bad(column::subscriptions, k, "record does not decode");
      if (auto* s = session_of(key->first)) s->subscriptions.emplace_back(std::string(key->second), *opts);
    });
  }

  void load_deliveries(column c) {
    scan(c, [&](std::string_view k, std::string_view v) {
      ++records_seen_;
      auto key = keys::parse_pair(k);
      if (!key) bad(c, k, "malformed key");
      ports::restored_inflight f;
      if (c == column::queue) {
        auto meta = decode_delivery(v);
        if (!meta) bad(c, k, "record does not decode");
        f.d.meta = std::move(*meta);
      } else {
        auto info = decode_inflight(v);
        if (!info) bad(c, k, "record does not decode");
        f.d.meta = std::move(info->meta);
        f.packet_id = info->packet_id;
        f.state = info->state;
      }
      auto* s = session_of(key->first);
      saw_id(key->second);
      if (!s) return;
      f.d.message_id = key->second;
      if (c == column::inflight && f.state == core::outgoing_state::awaiting_pubcomp) {
        s->inflight.push_back(std::move(f));  // only the PUBREL is left: no message needed
        return;
      }
      // Its message must have a copy in the session's own partition.
      const auto partition = replication::partition_of_session(key->first);
      auto m = messages_.find(key->second);
      if (m == messages_.end() || !m->second.copies.contains(partition)) {
        repair_.push_back({kv_write::kind::del, c, std::string(k), {}});
        ++missing_refs_;
        return;
      }
      m->second.msg->partitions.add(partition);
      f.d.msg = m->second.msg;
      if (c == column::queue) s->queue.push_back(std::move(f.d));
      else s->inflight.push_back(std::move(f));
    });
  }

  void load_incoming() {
    scan(column::incoming, [&](std::string_view k, std::string_view v) {
      ++records_seen_;
      auto key = keys::parse_incoming(k);
      if (!key) bad(column::incoming, k, "malformed key");
      if (!decode_incoming(v)) bad(column::incoming, k, "record does not decode");
      if (auto* s = session_of(key->first)) s->incoming_qos2.push_back(key->second);
    });
  }

  void load_retained() {
    b_.scan(column::retained, [&](std::string_view k, std::string_view v) {
      ++records_seen_;
      auto m = decode_message(v, time_);
      if (!m) bad(column::retained, k, "record does not decode");
      if (m->topic != k) bad(column::retained, k, "the record is for another topic");
      retained_.push_back(std::move(m));  // id 0: stored by topic, not as a message
    });
  }

  // Copies in partitions none of whose sessions reference the message
  // (msg->partitions holds those that do).
  void drop_unreferenced_messages() {
    for (auto& [id, m] : messages_) {
      m.copies.for_each([&](replication::partition_id p) {
        if (m.msg->partitions.contains(p)) return;
        repair_.push_back({kv_write::kind::del, column::messages, keys::message_key(p, id), {}});
        ++unreferenced_;
      });
    }
  }

  struct stored_message {
    std::shared_ptr<core::message> msg;
    replication::partition_set copies;  // where a record of it is
  };

  kv_backend& b_;
  const ports::clock& clock_;
  wall_clock_mapping time_;
  std::vector<ports::restored_session> sessions_;
  std::unordered_map<std::uint64_t, std::size_t> index_;  // live session id -> sessions_ index
  std::set<std::uint64_t> doomed_;                        // session ids whose records go
  std::map<std::uint64_t, stored_message> messages_;
  std::vector<core::message_ptr> retained_;
  std::optional<replication::partition_id> only_;
  std::vector<std::pair<replication::partition_id, ports::partition_position>> positions_;
  kv_batch repair_;
  std::uint64_t max_id_ = 0;
  std::size_t records_seen_ = 0;
  std::size_t old_incarnations_ = 0;
  std::size_t missing_refs_ = 0;
  std::size_t unreferenced_ = 0;
};

}  // namespace

std::string repair_report::describe() const {
  return "removed " + std::to_string(old_incarnations) + " replaced session incarnation(s), the records of " +
         std::to_string(orphan_sessions) + " missing session(s), " + std::to_string(missing_message_refs) +
         " queued/in-flight record(s) of missing messages and " + std::to_string(unreferenced_messages) +
         " unreferenced message(s)";
}

ports::restored_state load_state(kv_backend& backend, const ports::clock& clock,
                                 const std::function<void(const std::string&)>& log, repair_report* report) {
  repair_report local;
  auto& r = report ? *report : local;
  r = repair_report{};
  auto state = loader(backend, clock, std::nullopt).run(r);
  if (r.migrated && log)
    log(backend.location() + ": keyed by partition (record format " + std::to_string(record_format_version) +
        "): renamed " + std::to_string(r.migration.sessions_renamed) + " session(s), moved " +
        std::to_string(r.migration.records_moved) + " of their record(s), wrote " +
        std::to_string(r.migration.message_copies) + " message cop(ies)");
  if (r.any() && log) log(backend.location() + ": repaired what a crash left: " + r.describe());
  return state;
}

ports::restored_state load_partition(kv_backend& backend, const ports::clock& clock, replication::partition_id p,
                                     const std::function<void(const std::string&)>& log, repair_report* report) {
  repair_report local;
  auto& r = report ? *report : local;
  r = repair_report{};
  auto state = loader(backend, clock, p).run_partition(r);
  if (r.any() && log)
    log(backend.location() + ", partition " + std::to_string(p) + ": repaired " + r.describe());
  return state;
}

}  // namespace flock::storage
