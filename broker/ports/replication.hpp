#pragma once
// The store's side of replicated sessions (docs/replication.md, section 3).
//
// An owner's store gives each group that touches a partition it owns the
// next LSN of that partition, and hands the partition's share of the group
// (a replicated_part) to every follower of it through a replication_stream,
// while it writes the group locally. Acknowledgements for the group's ops
// (store::when_durable) then wait until it is durable here AND acknowledged
// by every in-sync follower of the partitions it touched. A follower's
// store applies parts through replica_store::apply, in its own group
// commit, and the cluster acknowledges them once they are durable there.
//
// Parts travel as bytes (storage's encoding of key/value writes, all inside
// the partition's key range): the cluster never looks inside, the follower
// checks every byte before writing (a peer's input is input too).
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "broker/ports/executor.hpp"
#include "broker/replication/types.hpp"

namespace flock::ports {

// Where a partition's copy stands: the epoch it was last written under and
// how many groups of that partition it holds.
struct partition_position {
  replication::epoch_t epoch = 0;
  std::uint64_t lsn = 0;
  bool operator==(const partition_position&) const = default;
};

// Whether two copies at these positions hold the same history. A copy in
// epoch 0 was written before replication (by whichever node served those
// sessions then): it matches nothing but an empty copy's (0, 0).
inline bool same_copy(const partition_position& a, const partition_position& b) {
  return a == b && (a.lsn == 0 || a.epoch != 0);
}

// One partition's share of one group of its owner's store.
struct replicated_part {
  replication::partition_id partition = 0;
  replication::epoch_t epoch = 0;
  std::uint64_t lsn = 0;
  // The epoch of the owner's copy at lsn - 1. A follower applies the part
  // only onto a copy at (base_epoch, lsn - 1): equal positions then mean
  // equal histories, since one epoch has one owner (Raft's log matching).
  replication::epoch_t base_epoch = 0;
  // No writes: the follower drops its copy of the partition, and the
  // owner's copy at (epoch, lsn) follows in snapshot chunks; later parts of
  // the partition wait at the follower until it is installed.
  bool snapshot = false;
  std::string writes;  // storage's encoding; opaque outside storage/
};
// Shared by every follower it is sent to.
using replicated_part_ptr = std::shared_ptr<const replicated_part>;

// What this store does with one partition, from the controller's applied
// state. Partitions without a role (and every partition while replication
// is off) are written here and shipped nowhere.
struct partition_role {
  bool owner = false;                            // this store writes it and ships it
  replication::epoch_t epoch = 0;                // the partition's current epoch
  std::vector<replication::store_id> in_sync;    // followers acknowledgements wait for (not this store)
  std::vector<replication::store_id> learners;   // followers sent to, not waited for
};

// The owner's way out: implemented by the cluster (the peer streams).
class replication_stream {
 public:
  virtual ~replication_stream() = default;
  // Group `group`'s parts that `follower` follows, in group order per
  // follower. Called on the store's writer thread; must not block on I/O.
  virtual void send(const replication::store_id& follower, std::uint64_t group,
                    std::vector<replicated_part_ptr> parts) = 0;
};

enum class apply_status : std::uint8_t {
  applied,      // durable here (or already was: a resend)
  stale_epoch,  // older than the epoch this store knows for the partition
  gap,          // does not follow this copy (or there is none): the owner sends a snapshot
  malformed,    // the writes do not decode or leave the partition's range
  installing,   // a snapshot of the partition is being installed here; the part waits for it
};
struct apply_result {
  replication::partition_id partition = 0;
  apply_status status = apply_status::applied;
  partition_position position;  // where this store's copy stands after the call
};

// One chunk of a snapshot: a consistent copy of one partition of the
// owner's store at one position, cut in pieces of about a chunk's size.
struct snapshot_chunk {
  replication::partition_id partition = 0;
  partition_position position;  // the copy's position (the snapshot part's epoch and LSN)
  std::uint64_t seq = 0;        // from 0, in order
  bool last = false;
  std::string writes;           // storage's encoding, puts only
};

// A snapshot being read on the owner.
struct snapshot_started {
  std::uint64_t id = 0;
  partition_position position;
  std::uint64_t group = 0;  // the copy holds everything of the groups before this one
};

class replica_store {
 public:
  virtual ~replica_store() = default;

  // Where the owner's parts go; set once, before the first role makes this
  // store an owner.
  virtual void set_stream(replication_stream* stream) = 0;
  // The roles of every partition (indexed by partition id); replaces the
  // previous table. A follower no partition waits for any more (left every
  // ISR) is waited for no more.
  virtual void set_roles(std::vector<partition_role> roles) = 0;
  // The table set last (empty before the first).
  virtual std::vector<partition_role> roles() const = 0;
  // `follower` has durably applied every group up to `group` it was sent.
  virtual void acknowledged(const replication::store_id& follower, std::uint64_t group) = 0;

  // A follower applies parts from an owner, in order, through its own group
  // commit; `done` runs on worker `w` once they are durable here, with one
  // result per part. Any thread.
  virtual void apply(std::vector<replicated_part_ptr> parts, worker_id w,
                     std::function<void(std::vector<apply_result>)> done) = 0;

  // Owner: takes a snapshot of partition p for `follower` between two
  // groups and hands the stream a `snapshot` part for it in group order, so
  // it precedes every later part of p. `ready` gets the snapshot (nullopt
  // when this store does not own p). Any thread; callbacks run on the
  // store's writer thread and must not block.
  virtual void snapshot(replication::partition_id p, const replication::store_id& follower,
                        std::function<void(std::optional<snapshot_started>)> ready) = 0;
  // The snapshot's next chunk of about `max_bytes`, read between two
  // groups (nullopt: the snapshot was ended or lost with a failed write).
  virtual void next_chunk(std::uint64_t id, std::size_t max_bytes,
                          std::function<void(std::optional<snapshot_chunk>)> got) = 0;
  virtual void end_snapshot(std::uint64_t id) = 0;

  // Follower: a chunk of the snapshot being installed here (after its
  // `snapshot` part), in order. `done` as apply's; `installing` until the
  // last chunk, which writes the position and applies the parts that
  // waited for it.
  virtual void apply_chunk(snapshot_chunk chunk, worker_id w, std::function<void(apply_result)> done) = 0;
  // Gives up installs whose owner stopped sending chunks for a while (the
  // parts that waited answer `gap`, so the owner sends another snapshot).
  // Any thread; called periodically.
  virtual void expire_installs() = 0;

  // Where each copy held here stands (partitions never written: absent).
  virtual std::vector<std::pair<replication::partition_id, partition_position>> positions() const = 0;
};

}  // namespace flock::ports
