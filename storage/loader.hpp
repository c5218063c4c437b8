#pragma once
// load(): the whole stored state, read once at start-up, checked, repaired
// and turned into ports::restored_state for the core to rebuild from.
//
// Repairs (one synced batch, reported in repair_report and a log line) only
// what a crash between two groups can leave, or what the core's own writes
// can leave when a session ends while a delivery is on its way:
//  - several session records for one client id (a clean start whose delete
//    of the old incarnation did not land): the highest session id wins, the
//    others go with everything under them;
//  - subscription/queue/inflight/incoming records of a session that does
//    not exist;
//  - queue and inflight records (except awaiting_pubcomp, which no longer
//    needs it) of a message that does not exist;
//  - messages that no queue or inflight record references.
// Anything that does not decode is not repaired: load() throws, naming the
// column family and key, and leaves the data alone.
#include <cstddef>
#include <functional>
#include <string>

#include "broker/ports/clock.hpp"
#include "broker/ports/store.hpp"
#include "broker/replication/types.hpp"
#include "storage/kv_backend.hpp"
#include "storage/partition_migration.hpp"

namespace flock::storage {

struct repair_report {
  std::size_t old_incarnations = 0;        // session ids replaced by a newer one of the same client
  std::size_t orphan_sessions = 0;         // session ids with records but no session record
  std::size_t missing_message_refs = 0;    // queue/inflight records whose message is gone
  std::size_t unreferenced_messages = 0;
  bool wrote_meta = false;                 // a new data directory, or one of an older format
  bool migrated = false;                   // rewritten from format 1 or 2 to partitioned keys
  partition_migration migration;
  bool any() const { return old_incarnations + orphan_sessions + missing_message_refs + unreferenced_messages > 0; }
  std::string describe() const;
};

// Throws std::runtime_error (one line) on corrupt or newer-format data, or
// when the repair cannot be written.
ports::restored_state load_state(kv_backend& backend, const ports::clock& clock,
                                 const std::function<void(const std::string&)>& log, repair_report* report = nullptr);

// The sessions of one partition (a replica taking it over), checked and
// repaired the same way; `retained` and `identity` stay empty, `next_id` is
// above the partition's ids.
ports::restored_state load_partition(kv_backend& backend, const ports::clock& clock, replication::partition_id p,
                                     const std::function<void(const std::string&)>& log,
                                     repair_report* report = nullptr);

}  // namespace flock::storage
