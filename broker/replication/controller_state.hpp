#pragma once
// The controller's state machine (docs/replication.md, sections 2 and 5.1):
// the members (stores) of the cluster and, per partition, its epoch, owner,
// replicas (the placement target, preferred owner first), in-sync set (ISR)
// and learners. Every node applies the same committed commands in the same
// order (the controller's Raft log) and so holds the same state.
//
// Commands are proposals made against some earlier state; each is checked
// against the state it meets, and one that no longer fits (an ISR change
// for an older epoch, an owner that left the ISR meanwhile) is `stale`: a
// no-op, never an error. So the proposer needs no lock on the state, and a
// command applied twice does nothing the second time.
//
// What this guarantees (checked by broken_invariant() after every step in
// the tests): an online partition's owner is an unfenced ISR member; every
// ISR member is an unfenced member of the cluster (an offline partition
// keeps its last ISR: the copies that hold everything acknowledged); epochs
// only grow; learners are replicas outside the ISR; no store holds two
// copies; witnesses hold none. Together with the owner waiting for every
// ISR member before it acknowledges, this is what makes a new owner (always
// an ISR member) hold every acknowledged write.
//
// Pure: no clock, no I/O, deterministic; one thread at a time.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "broker/replication/types.hpp"

namespace flock::replication {

struct member {
  store_id id;
  std::string name;             // its node name (where it is reached)
  std::string zone;             // spread copies over zones first; empty: none
  std::uint64_t incarnation = 0;
  bool witness = false;         // votes, holds no partition
  bool fenced = false;          // declared down (or left): in no online ISR, owns nothing
  bool operator==(const member&) const = default;
};

struct partition_state {
  epoch_t epoch = 0;
  store_id owner;
  std::vector<store_id> replicas;  // target, preferred owner first
  std::vector<store_id> isr;       // the owner first, then followers in sync
  std::vector<store_id> learners;  // replicas catching up, not yet in sync
  bool offline = false;            // no unfenced ISR member: served by nobody
  bool operator==(const partition_state&) const = default;
};

namespace cmd {
// Creates the state: `partitions` partitions placed over `members`.
struct bootstrap {
  std::uint32_t partitions = default_partitions;
  std::uint32_t factor = 2;
  std::vector<member> members;
};
// A store joins, or a fenced one is back. Its offline partitions come back
// online with it as owner (it holds everything acknowledged in them). An
// unfenced store is not updated: a new incarnation is fenced first. A store
// keeps its role (witness or not) for life.
struct node_up {
  member m;
};
// A store is declared down, restarted (the leader fences the old
// incarnation before the new one's node_up: its disk may hold writes its
// followers never saw) or left: it leaves every ISR; each partition it
// owned gets the first unfenced ISR member (in replica order) as owner in a
// new epoch, or goes offline when there is none.
struct node_fenced {
  store_id id;
};
// A fenced store no partition refers to any more is dropped from the table.
struct node_forgotten {
  store_id id;
};
// The owner of `partition` in `epoch` stops waiting for `node`.
struct isr_shrink {
  partition_id partition = 0;
  epoch_t epoch = 0;
  store_id node;
};
// A learner (or a replica that fell out) has caught up with the owner of
// `partition` in `epoch`. Once every replica is in sync, surplus copies
// (in the ISR, not in the target) leave it.
struct isr_expand {
  partition_id partition = 0;
  epoch_t epoch = 0;
  store_id node;
};
// A controlled transfer: `owner`, an ISR member, owns the partition in
// `epoch` (the current one + 1).
struct owner_change {
  partition_id partition = 0;
  epoch_t epoch = 0;
  store_id owner;
};
// A new placement target: stores not in the ISR become learners.
struct set_replicas {
  partition_id partition = 0;
  std::vector<store_id> target;
};
// Operator, unclean: the partition restarts empty on its first placement
// choice, in a new epoch. Whatever only the lost copies held is gone.
struct partition_reset {
  partition_id partition = 0;
};
}  // namespace cmd

using command = std::variant<cmd::bootstrap, cmd::node_up, cmd::node_fenced, cmd::node_forgotten,
                             cmd::isr_shrink, cmd::isr_expand, cmd::owner_change, cmd::set_replicas,
                             cmd::partition_reset>;

enum class outcome : std::uint8_t {
  applied,
  stale,    // made against an older state; nothing changed
  invalid,  // could never apply (unknown store, bad partition); nothing changed
};

class controller_state {
 public:
  // A state read back from a snapshot (check broken_invariant() before use).
  static controller_state restore(std::uint32_t factor, std::vector<member> members,
                                  std::vector<partition_state> partitions);

  outcome apply(const command& c);
  bool operator==(const controller_state&) const = default;

  bool bootstrapped() const { return !partitions_.empty(); }
  std::uint32_t partition_count() const { return static_cast<std::uint32_t>(partitions_.size()); }
  std::uint32_t factor() const { return factor_; }
  const partition_state& partition(partition_id p) const { return partitions_.at(p); }
  const std::vector<partition_state>& partitions() const { return partitions_; }
  const std::vector<member>& members() const { return members_; }
  const member* find(const store_id& id) const;

  // The placement target of `p` over the unfenced, non-witness members.
  std::vector<store_id> target(partition_id p) const;

  // What the leader proposes to bring copies to their target: set_replicas
  // where the target changed (at most `moves_per_store` partitions with
  // learners per store at once), then owner_change back to the preferred
  // owner where it is in sync. Offline partitions are left alone.
  std::vector<command> rebalance(std::size_t moves_per_store) const;

  // The first invariant that does not hold, in words; nullopt when all do.
  std::optional<std::string> broken_invariant() const;

 private:
  outcome apply_one(const cmd::bootstrap& c);
  outcome apply_one(const cmd::node_up& c);
  outcome apply_one(const cmd::node_fenced& c);
  outcome apply_one(const cmd::node_forgotten& c);
  outcome apply_one(const cmd::isr_shrink& c);
  outcome apply_one(const cmd::isr_expand& c);
  outcome apply_one(const cmd::owner_change& c);
  outcome apply_one(const cmd::set_replicas& c);
  outcome apply_one(const cmd::partition_reset& c);
  member* find_mutable(const store_id& id);
  bool may_hold_data(const store_id& id) const;  // an unfenced, non-witness member
  void fence(const store_id& id);
  void drop_surplus(partition_state& p);

  std::uint32_t factor_ = 0;
  std::vector<member> members_;
  std::vector<partition_state> partitions_;
};

}  // namespace flock::replication
