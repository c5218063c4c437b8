#pragma once
// Deliveries on their way to the sessions of one worker, from publishers on
// other workers. One per worker, owned by broker::impl for its lifetime.
//
// Why not one executor post per publish: under a flood the owner's event
// queue filled with millions of small tasks, the subscriber's write
// completions waited behind them, and delivery collapsed to a few hundred
// msg/s while memory grew by a gigabyte. Here producers append under a short
// lock and only the append that finds the box idle posts a drain, so the
// owner takes everything that arrived meanwhile in one task, between socket
// events. The box is bounded: past `limit` deliveries waiting, QoS 0 copies
// are dropped (counted) instead of queued; QoS 1/2 copies are always kept
// (the publisher may have its PUBACK already).
#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "broker/core/delivery.hpp"

namespace flock::core {

class session;

class delivery_mailbox {
 public:
  using item = std::pair<std::shared_ptr<session>, delivery>;

  // Deliveries waiting above this: QoS 0 is dropped.
  static constexpr std::size_t limit = 64 * 1024;

  // Moves `items` in (QoS 0 ones past the limit are left out and counted in
  // `dropped`). True: the box was idle, the caller posts one drain task.
  bool put(std::vector<item>& items, std::uint64_t& dropped) {
    std::vector<item> none;
    return put(items, dropped, [](const item&) { return true; }, none);
  }

  // The same, for items whose session may have changed worker since the
  // caller looked: `ours(item)` is asked under the box's lock, and items it
  // rejects go to `elsewhere` instead. An owner change made under this lock
  // too (move_items_of) is then never missed: an item is in the box of the
  // worker that owned its session when it went in.
  template <typename Ours>
  bool put(std::vector<item>& items, std::uint64_t& dropped, Ours ours, std::vector<item>& elsewhere) {
    std::lock_guard lock(mutex_);
    const bool was_empty = waiting_.empty();
    for (auto& i : items) {
      if (!ours(i)) {
        elsewhere.push_back(std::move(i));
        continue;
      }
      if (waiting_.size() >= limit && i.second.qos == 0) {
        ++dropped;
        continue;
      }
      waiting_.push_back(std::move(i));
    }
    size_.store(waiting_.size(), std::memory_order_relaxed);
    if (scheduled_ || (was_empty && waiting_.empty())) return false;
    scheduled_ = true;
    return true;
  }

  // A session changes worker: under both boxes' locks every item for `s`
  // waiting in `from` moves, in order, to the end of `to`, then `change()`
  // sets the new owner (last: whoever sees the new owner sees the moved
  // items in `to`'s size). Deliveries put before the change then reach the
  // new owner ahead of those put after it, which keeps each publisher's
  // messages in order across the move. True: `to` needs a drain task.
  template <typename Change>
  static bool move_items_of(const session* s, delivery_mailbox& from, delivery_mailbox& to, Change change) {
    if (&from == &to) {
      std::lock_guard lock(from.mutex_);
      change();
      return false;
    }
    std::scoped_lock lock(from.mutex_, to.mutex_);
    std::vector<item> kept;
    bool moved = false;
    for (auto& i : from.waiting_) {
      if (i.first.get() == s) {
        to.waiting_.push_back(std::move(i));
        moved = true;
      } else {
        kept.push_back(std::move(i));
      }
    }
    from.waiting_.swap(kept);
    from.size_.store(from.waiting_.size(), std::memory_order_relaxed);
    to.size_.store(to.waiting_.size(), std::memory_order_relaxed);
    change();
    if (!moved || to.scheduled_) return false;
    to.scheduled_ = true;
    return true;
  }

  // On the owner, in the drain task: everything waiting, into `out`. Its
  // old (cleared) buffer becomes the box's, so a steady flow reuses two.
  void take(std::vector<item>& out) {
    out.clear();
    if (out.capacity() > 4096) std::vector<item>().swap(out);  // a burst's buffer is not kept
    std::lock_guard lock(mutex_);
    out.swap(waiting_);
    scheduled_ = false;
    size_.store(0, std::memory_order_relaxed);
  }

  std::size_t size() const { return size_.load(std::memory_order_relaxed); }

 private:
  std::mutex mutex_;
  std::vector<item> waiting_;
  bool scheduled_ = false;
  std::atomic<std::size_t> size_{0};
};

}  // namespace flock::core
