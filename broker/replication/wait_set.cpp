#include "broker/replication/wait_set.hpp"

#include <algorithm>

namespace flock::replication {

bool wait_set::add(ticket t, std::vector<store_id> followers) {
  // A follower that acknowledged up to t already (possible only for groups
  // added late) is not waited for.
  std::erase_if(followers, [&](const store_id& f) {
    auto it = acked_.find(f);
    return it != acked_.end() && it->second >= t;
  });
  if (t <= durable_ && followers.empty()) return true;
  groups_[t] = group{t <= durable_, std::move(followers)};
  return false;
}

std::vector<wait_set::ticket> wait_set::release(std::map<ticket, group>::iterator first,
                                                std::map<ticket, group>::iterator last, const store_id* done) {
  std::vector<ticket> out;
  for (auto it = first; it != last;) {
    if (done) std::erase(it->second.followers, *done);
    if (it->second.durable && it->second.followers.empty()) {
      out.push_back(it->first);
      it = groups_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

std::vector<wait_set::ticket> wait_set::durable(ticket t) {
  if (t <= durable_) return {};
  durable_ = t;
  auto last = groups_.upper_bound(t);
  for (auto it = groups_.begin(); it != last; ++it) it->second.durable = true;
  return release(groups_.begin(), last, nullptr);
}

std::vector<wait_set::ticket> wait_set::acknowledged(const store_id& follower, ticket t) {
  auto& seen = acked_[follower];
  if (t <= seen) return {};
  seen = t;
  return release(groups_.begin(), groups_.upper_bound(t), &follower);
}

std::vector<wait_set::ticket> wait_set::dropped(const store_id& follower) {
  acked_.erase(follower);
  return release(groups_.begin(), groups_.end(), &follower);
}

bool wait_set::waits_for(const store_id& follower) const {
  return std::any_of(groups_.begin(), groups_.end(), [&](const auto& g) {
    return std::find(g.second.followers.begin(), g.second.followers.end(), follower) != g.second.followers.end();
  });
}

}  // namespace flock::replication
