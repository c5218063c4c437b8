#pragma once
// What this node's store does with each partition, read off the
// controller's applied state (ports::partition_role): owner (ship to the
// ISR and the learners, wait for the ISR) or not, and the epoch a part must
// at least carry to be applied here.
#include <vector>

#include "broker/ports/replication.hpp"
#include "broker/replication/controller_state.hpp"

namespace flock::cluster {

std::vector<ports::partition_role> roles_of(const replication::controller_state& state, const replication::store_id& me);

// Whether a part for `partition` in `epoch` from store `from` may be applied
// here: not when the state names another owner for that very epoch (a newer
// epoch is let through: the controller's entry may not have reached this
// node yet; the store refuses older ones).
bool may_send(const replication::controller_state& state, replication::partition_id partition,
              replication::epoch_t epoch, const replication::store_id& from);

}  // namespace flock::cluster
