// See partition_migration.hpp. Reads the directory once per column; the
// batch holds a copy of every record that moves, so its size is about the
// persistent state's (measured at start-up only, once per directory).
#include "storage/partition_migration.hpp"

#include <unordered_map>

#include "broker/replication/partition.hpp"
#include "storage/errors.hpp"
#include "storage/keys.hpp"
#include "storage/record_codec.hpp"

namespace flock::storage {
namespace {

class migration {
 public:
  migration(const kv_backend& b, const wall_clock_mapping& time, kv_batch& batch) : b_(b), time_(time), batch_(batch) {}

  partition_migration run() {
    rename_sessions();
    for (column c : {column::subscriptions, column::queue, column::inflight, column::incoming}) move_records(c);
    copy_messages();
    return done_;
  }

 private:
  [[noreturn]] void bad(column c, std::string_view key, std::string_view what) const {
    throw_corrupt(b_.location(),
                  "column family " + std::string(column_name(c)) + ", key " + hex(key) + ": " + std::string(what));
  }

  void move(column c, std::string_view from, std::string to, std::string_view value) {
    batch_.push_back({kv_write::kind::del, c, std::string(from), {}});
    batch_.push_back({kv_write::kind::put, c, std::move(to), std::string(value)});
  }

  void rename_sessions() {
    b_.scan(column::sessions, [&](std::string_view k, std::string_view v) {
      auto sid = keys::parse_id(k);
      if (!sid) bad(column::sessions, k, "malformed key");
      auto s = decode_session(v, time_);
      if (!s) bad(column::sessions, k, "record does not decode");
      if (*sid > replication::session_counter_mask) bad(column::sessions, k, "session id beyond format 2's range");
      const auto renamed = replication::make_session_id(replication::partition_of(s->client_id), *sid);
      if (renamed == *sid) return;  // partition 0 keeps its ids
      renamed_.emplace(*sid, renamed);
      move(column::sessions, k, keys::id_key(renamed), v);
      ++done_.sessions_renamed;
    });
  }

  // Every record keyed by be64(session id) + rest.
  void move_records(column c) {
    b_.scan(c, [&](std::string_view k, std::string_view v) {
      if (k.size() < 8) bad(c, k, "malformed key");
      std::uint64_t sid = keys::get_be64(k);
      if (auto it = renamed_.find(sid); it != renamed_.end()) {
        sid = it->second;
        std::string to = keys::id_key(sid);
        to.append(k.substr(8));
        move(c, k, std::move(to), v);
        ++done_.records_moved;
      }
      if (c == column::queue || c == column::inflight) {
        auto key = keys::parse_pair(k);
        if (!key) bad(c, k, "malformed key");
        referenced_[key->second].add(replication::partition_of_session(sid));
      }
    });
  }

  void copy_messages() {
    b_.scan(column::messages, [&](std::string_view k, std::string_view v) {
      auto id = keys::parse_id(k);
      if (!id) bad(column::messages, k, "malformed key");
      batch_.push_back({kv_write::kind::del, column::messages, std::string(k), {}});
      auto it = referenced_.find(*id);
      if (it == referenced_.end()) return;  // nobody needs it: load would drop it anyway
      it->second.for_each([&](replication::partition_id p) {
        batch_.push_back({kv_write::kind::put, column::messages, keys::message_key(p, *id), std::string(v)});
        ++done_.message_copies;
      });
    });
  }

  const kv_backend& b_;
  const wall_clock_mapping& time_;
  kv_batch& batch_;
  std::unordered_map<std::uint64_t, std::uint64_t> renamed_;  // old session id -> id with its partition
  std::unordered_map<std::uint64_t, replication::partition_set> referenced_;  // message id -> partitions
  partition_migration done_;
};

}  // namespace

partition_migration plan_partition_migration(const kv_backend& backend, const wall_clock_mapping& time,
                                             kv_batch& batch) {
  return migration(backend, time, batch).run();
}

}  // namespace flock::storage
