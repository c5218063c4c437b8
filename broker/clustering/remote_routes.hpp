#pragma once
// Which peers want which topics: the routes every peer announced (cluster
// route replication), in the same index as local subscriptions but with
// peers as targets. A plain filter is one entry per peer however many
// subscribers it has there; a shared group entry carries the peer's member
// count, so the group's next member is chosen fairly across the cluster.
//
// Threads: written by the cluster's thread (cluster_host), read by every
// publishing worker under a shared lock; the router holds that lock while it
// weighs groups, so group references stay valid.
#include <atomic>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "broker/core/subscription_index.hpp"
#include "broker/ports/cluster.hpp"

namespace flock::clustering {

struct remote_peer {
  ports::peer_id id = 0;
};

struct route_weight {
  std::uint32_t holders = 0;  // group members on that peer; 1 for plain filters
  bool operator==(const route_weight&) const = default;
};

class remote_routes {
 public:
  using index_type = core::basic_subscription_index<remote_peer, route_weight>;
  using group = index_type::group;

  // holders 0 removes the route.
  void set(ports::peer_id peer, std::string_view filter, std::uint32_t holders) {
    std::unique_lock lock(mutex_);
    auto& target = peer_target(peer);
    auto& filters = filters_[peer];
    if (holders == 0) {
      if (index_.remove(filter, target.get())) filters.erase(std::string(filter));
    } else {
      index_.add(filter, target, route_weight{holders});
      filters.emplace(filter, holders);
    }
    size_.store(index_.size(), std::memory_order_release);
  }

  void clear(ports::peer_id peer) {
    std::unique_lock lock(mutex_);
    auto it = filters_.find(peer);
    if (it == filters_.end()) return;
    auto& target = peer_target(peer);
    for (const auto& [filter, holders] : it->second) index_.remove(filter, target.get());
    filters_.erase(it);
    size_.store(index_.size(), std::memory_order_release);
  }

  // Numbers a local publish; under mutex() (shared), in the section that
  // reads the routes for it. A number above what publishes() returned after
  // a route change belongs to a publish that saw the change.
  std::uint64_t next_publish() { return publishes_.fetch_add(1, std::memory_order_relaxed) + 1; }
  std::uint64_t publishes() const { return publishes_.load(std::memory_order_relaxed); }

  bool empty() const { return size_.load(std::memory_order_acquire) == 0; }
  std::size_t size() const { return size_.load(std::memory_order_acquire); }
  std::size_t routes_of(ports::peer_id peer) const {
    std::shared_lock lock(mutex_);
    auto it = filters_.find(peer);
    return it == filters_.end() ? 0 : it->second.size();
  }

  // For the router: hold this while matching and while using the groups.
  std::shared_mutex& mutex() const { return mutex_; }
  const index_type& index() const { return index_; }

 private:
  const std::shared_ptr<remote_peer>& peer_target(ports::peer_id peer) {
    if (peer >= targets_.size()) targets_.resize(peer + 1);
    if (!targets_[peer]) targets_[peer] = std::make_shared<remote_peer>(remote_peer{peer});
    return targets_[peer];
  }

  mutable std::shared_mutex mutex_;
  index_type index_;
  std::vector<std::shared_ptr<remote_peer>> targets_;  // by peer id
  std::unordered_map<ports::peer_id, std::unordered_map<std::string, std::uint32_t>> filters_;
  std::atomic<std::size_t> size_{0};
  std::atomic<std::uint64_t> publishes_{0};
};

}  // namespace flock::clustering
