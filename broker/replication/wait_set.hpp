#pragma once
// What an owner's acknowledgements wait for (docs/replication.md, 3.2-3.3):
// group t of its store is replicated once it is durable locally and every
// follower in its wait set (the ISR members it knew, for the partitions the
// group touched) has acknowledged it. A follower acknowledges cumulatively
// (all groups up to t); one that leaves the ISR (committed) is waited for no
// more. Groups complete in any order: a slow follower of one partition does
// not hold another partition's acks.
//
// Pure; one thread at a time (the owner's store writer).
#include <cstdint>
#include <map>
#include <vector>

#include "broker/replication/types.hpp"

namespace flock::replication {

class wait_set {
 public:
  using ticket = std::uint64_t;  // the store's group numbers, increasing

  // Group `t` waits for local durability and for `followers`. True when it
  // has nothing left to wait for (durable already, no follower waited for).
  bool add(ticket t, std::vector<store_id> followers);
  // Groups up to `t` are durable here. Returns the groups this completes.
  std::vector<ticket> durable(ticket t);
  // `follower` has every group up to `t`.
  std::vector<ticket> acknowledged(const store_id& follower, ticket t);
  // `follower` left the ISR: nobody waits for it.
  std::vector<ticket> dropped(const store_id& follower);

  std::size_t pending() const { return groups_.size(); }
  // Whether some group still waits for `follower`.
  bool waits_for(const store_id& follower) const;

 private:
  struct group {
    bool durable = false;
    std::vector<store_id> followers;
  };
  std::vector<ticket> release(std::map<ticket, group>::iterator first, std::map<ticket, group>::iterator last,
                              const store_id* done_follower);

  std::map<ticket, group> groups_;
  ticket durable_ = 0;
  std::map<store_id, ticket> acked_;
};

}  // namespace flock::replication
