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
    std::lock_guard lock(mutex_);
    for (auto& i : items) {
      if (waiting_.size() >= limit && i.second.qos == 0) {
        ++dropped;
        continue;
      }
      waiting_.push_back(std::move(i));
    }
    size_.store(waiting_.size(), std::memory_order_relaxed);
    if (scheduled_) return false;
    scheduled_ = true;
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
