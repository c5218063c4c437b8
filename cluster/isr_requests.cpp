#include "cluster/isr_requests.hpp"

#include <algorithm>

namespace flock::cluster {

namespace {
bool contains(const std::vector<replication::store_id>& v, const replication::store_id& id) {
  return std::find(v.begin(), v.end(), id) != v.end();
}
ports::partition_position at(const std::map<replication::partition_id, ports::partition_position>& m,
                             replication::partition_id p) {
  auto it = m.find(p);
  return it == m.end() ? ports::partition_position{} : it->second;
}
}  // namespace

std::vector<replication::command> isr_requests(
    const replication::controller_state& state, const replication::store_id& me,
    const std::vector<follower_view>& followers,
    const std::map<replication::partition_id, ports::partition_position>& mine) {
  std::vector<replication::command> out;
  for (std::uint32_t i = 0; i < state.partition_count(); ++i) {
    const auto p = static_cast<replication::partition_id>(i);
    const auto& s = state.partition(p);
    if (s.offline || s.owner != me) continue;
    for (const auto& f : followers) {
      if (f.id == me) continue;
      if (contains(s.isr, f.id)) {
        if (f.lagging || f.behind.contains(p)) out.push_back(replication::cmd::isr_shrink{p, s.epoch, f.id});
      } else if ((contains(s.replicas, f.id) || contains(s.learners, f.id)) && !f.lagging && !f.behind.contains(p) &&
                 ports::same_copy(at(f.reported, p), at(mine, p))) {
        out.push_back(replication::cmd::isr_expand{p, s.epoch, f.id});
      }
    }
  }
  return out;
}

bool may_request(const replication::controller_state& state, const replication::store_id& from,
                 const replication::command& c) {
  auto owns = [&](replication::partition_id p) {
    return state.bootstrapped() && p < state.partition_count() && state.partition(p).owner == from;
  };
  if (const auto* s = std::get_if<replication::cmd::isr_shrink>(&c)) return owns(s->partition);
  if (const auto* e = std::get_if<replication::cmd::isr_expand>(&c)) return owns(e->partition);
  return false;
}

}  // namespace flock::cluster
