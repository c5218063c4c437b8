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
    // Replicas outside the ISR (learners, and followers shrunk for lagging)
    // keep getting parts, so they can catch up and be taken back in.
    for (const auto* list : {&s.replicas, &s.learners})
      for (const auto& id : *list)
        if (id != me && std::find(s.isr.begin(), s.isr.end(), id) == s.isr.end() &&
            std::find(r.learners.begin(), r.learners.end(), id) == r.learners.end())
          r.learners.push_back(id);
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
