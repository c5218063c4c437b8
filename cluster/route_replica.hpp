#pragma once
// A peer's routes as this node received them: a snapshot, then ordered
// deltas. Applying them yields the changes for the core's peer-route index;
// a gap in the sequence or a digest that disagrees asks for a new snapshot.
// Pure logic, unit-tested with any sequence of frames; the node runs it on
// its own thread, one replica per peer.
#include <cstdint>
#include <functional>
#include <span>
#include <utility>
#include <string>
#include <string_view>

#include "cluster/route_table.hpp"

namespace flock::cluster {

class route_replica {
 public:
  using change_fn = std::function<void(std::string_view filter, std::uint32_t holders)>;

  enum class result : std::uint8_t { applied, ignored, resync };

  // One chunk of a snapshot as of `seq`. Changes are reported once the last
  // chunk is in: only what differs from the routes held until then.
  result snapshot(std::uint64_t seq, bool first, bool last, std::span<const std::pair<std::string, std::uint32_t>> routes,
                  const change_fn& changed) {
    if (first) {
      building_.clear();
      building_seq_ = seq;
      building_active_ = true;
    }
    if (!building_active_ || seq != building_seq_) return result::resync;  // a chunk of a snapshot we did not see begin
    for (const auto& [filter, holders] : routes) building_.set(filter, holders);
    if (!last) return result::applied;
    for (const auto& [filter, holders] : current_.entries())
      if (building_.get(filter) == 0) changed(filter, 0);
    for (const auto& [filter, holders] : building_.entries())
      if (current_.get(filter) != holders) changed(filter, holders);
    current_ = std::move(building_);
    building_ = route_set{};
    building_active_ = false;
    seq_ = seq;
    synced_ = true;
    return result::applied;
  }

  result delta(std::uint64_t seq, std::string_view filter, std::uint32_t holders, const change_fn& changed) {
    if (!synced_ || building_active_) return building_active_ ? result::ignored : result::resync;
    if (seq <= seq_) return result::ignored;  // seen already
    if (seq != seq_ + 1) {
      synced_ = false;  // lost something: wait for a snapshot
      return result::resync;
    }
    seq_ = seq;
    if (current_.set(filter, holders)) changed(filter, holders);
    return result::applied;
  }

  // The peer's heartbeat: its routes as of `seq` hash to `digest`.
  result check(std::uint64_t seq, std::uint64_t digest) {
    if (building_active_) return result::ignored;
    if (!synced_) return result::resync;
    if (seq != seq_) return seq < seq_ ? result::ignored : result::resync;
    if (digest != current_.digest()) {
      synced_ = false;
      return result::resync;
    }
    return result::applied;
  }

  // The peer is gone or restarted: reports every route as removed.
  void clear(const change_fn& changed) {
    for (const auto& [filter, holders] : current_.entries()) changed(filter, 0);
    current_.clear();
    building_.clear();
    building_active_ = false;
    synced_ = false;
    seq_ = 0;
  }

  std::uint64_t seq() const { return seq_; }
  bool synced() const { return synced_; }
  const route_set& routes() const { return current_; }

 private:
  route_set current_;
  route_set building_;
  std::uint64_t seq_ = 0;
  std::uint64_t building_seq_ = 0;
  bool building_active_ = false;
  bool synced_ = false;
};

}  // namespace flock::cluster
