#include "cluster/replication_lane.hpp"

namespace flock::cluster {

bool replication_lane::add(std::uint64_t id, std::vector<ports::replicated_part_ptr> parts, ports::time_point now) {
  std::size_t bytes = 0;
  for (const auto& p : parts) bytes += p->writes.size() + 32;
  if (bytes_ + bytes > max_bytes_) {
    groups_.clear();
    sent_ = 0;
    bytes_ = 0;
    lagging_ = true;
    return false;
  }
  bytes_ += bytes;
  groups_.push_back({id, std::move(parts), bytes, now});
  return true;
}

std::vector<replication_lane::group> replication_lane::take(std::size_t budget) {
  std::vector<group> out;
  std::size_t taken = 0;
  while (sent_ < groups_.size() && (out.empty() || taken < budget)) {
    out.push_back(groups_[sent_]);
    taken += groups_[sent_].bytes;
    ++sent_;
  }
  return out;
}

void replication_lane::acknowledged(std::uint64_t id) {
  while (!groups_.empty() && groups_.front().id <= id) {
    bytes_ -= groups_.front().bytes;
    groups_.pop_front();
    if (sent_ > 0) --sent_;
  }
}

}  // namespace flock::cluster
