#pragma once
// What an owner asks the controller to change in the ISRs of the
// partitions it owns (docs/replication.md, section 2): shrink a follower
// that is lagging (acknowledgements wait for it past the lag timeout, its
// lane overflowed, or it refused a part) or whose copy is behind ours with
// nothing on its way to it, expand one that is not in the
// ISR but has reported exactly the owner's position. Pure: the node feeds
// it what its peers' streams and its store say.
#include <map>
#include <set>
#include <vector>

#include "broker/ports/replication.hpp"
#include "broker/replication/controller_state.hpp"

namespace flock::cluster {

struct follower_view {
  replication::store_id id;
  bool lagging = false;
  // The positions it reported in its acknowledgements (absent: never
  // written there, as {0, 0}).
  std::map<replication::partition_id, ports::partition_position> reported;
  // Partitions whose copy there is not ours while nothing is on its way to
  // it (a snapshot is): not in sync, whatever the ISR says (a copy from
  // before replication, or stale after a restart).
  std::set<replication::partition_id> behind;
};

std::vector<replication::command> isr_requests(
    const replication::controller_state& state, const replication::store_id& me,
    const std::vector<follower_view>& followers,
    const std::map<replication::partition_id, ports::partition_position>& mine);

// Whether `from` may ask for `c`: an ISR change of a partition it owns.
bool may_request(const replication::controller_state& state, const replication::store_id& from,
                 const replication::command& c);

}  // namespace flock::cluster
