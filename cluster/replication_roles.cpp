#include "cluster/replication_roles.hpp"

#include <algorithm>

namespace flock::cluster {

std::vector<ports::partition_role> roles_of(const replication::controller_state& state, const replication::store_id& me) {
  std::vector<ports::partition_role> roles(state.partition_count());
  for (std::uint32_t p = 0; p < state.partition_count(); ++p) {
    const auto& s = state.partition(static_cast<replication::partition_id>(p));
    auto& r = roles[p];
    r.epoch = s.epoch;
    r.owner = !s.offline && s.owner == me;
    if (!r.owner) continue;
    std::copy_if(s.isr.begin(), s.isr.end(), std::back_inserter(r.in_sync), [&](const auto& id) { return id != me; });
    r.learners = s.learners;
  }
  return roles;
}

bool may_send(const replication::controller_state& state, replication::partition_id partition,
              replication::epoch_t epoch, const replication::store_id& from) {
  if (!state.bootstrapped() || partition >= state.partition_count()) return false;
  const auto& s = state.partition(partition);
  return epoch > s.epoch || (epoch == s.epoch && s.owner == from);
}

}  // namespace flock::cluster
