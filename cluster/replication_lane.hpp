#pragma once
// A peer's replication lane (docs/replication.md, 3.2 and 3.4): the groups
// of our store's owned partitions this peer follows, from the moment the
// store hands them over until the peer acknowledges them durable. Written
// after the control lane and before forwards; a broken stream rewinds it,
// so the next stream sends every unacknowledged group again, in order
// (the follower skips LSNs it has: a resend is harmless).
//
// Bounded: a follower too far behind for `max_bytes` loses its queue and is
// marked lagging (it will see a gap; the owner has it shrunk from the ISR
// and resynced by a snapshot, docs/replication.md 6).
//
// Not thread-safe: the peer calls it under its outbox lock.
#include <cstdint>
#include <deque>
#include <optional>
#include <utility>
#include <vector>

#include "broker/ports/clock.hpp"
#include "broker/ports/replication.hpp"

namespace flock::cluster {

class replication_lane {
 public:
  struct group {
    std::uint64_t id = 0;
    std::vector<ports::replicated_part_ptr> parts;
    std::size_t bytes = 0;
    ports::time_point queued_at{};
  };

  explicit replication_lane(std::size_t max_bytes) : max_bytes_(max_bytes) {}

  // False when it did not fit: the lane is emptied and marked lagging.
  bool add(std::uint64_t id, std::vector<ports::replicated_part_ptr> parts, ports::time_point now);
  // When the oldest group not yet acknowledged was queued (none: nullopt).
  std::optional<ports::time_point> oldest() const {
    if (groups_.empty()) return std::nullopt;
    return groups_.front().queued_at;
  }
  // Groups not yet written on this stream, oldest first, up to about
  // `budget` bytes (at least one); they count as written. Copies (the
  // parts are shared), so they can be encoded outside the peer's lock.
  std::vector<group> take(std::size_t budget);
  bool unsent() const { return sent_ < groups_.size(); }
  // Every group up to `id` is durable at the follower.
  void acknowledged(std::uint64_t id);
  // A new stream: everything unacknowledged goes again.
  void rewind() { sent_ = 0; }

  // Whether it overflowed since the last call.
  bool take_lagging() { return std::exchange(lagging_, false); }
  std::size_t bytes() const { return bytes_; }
  std::size_t size() const { return groups_.size(); }

 private:
  std::size_t max_bytes_;
  std::deque<group> groups_;
  std::size_t sent_ = 0;  // groups_[0, sent_) written on the current stream
  std::size_t bytes_ = 0;
  bool lagging_ = false;
};

}  // namespace flock::cluster
