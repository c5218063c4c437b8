#pragma once
// Peers that still have to confirm a forwarded QoS 1/2 publish. The
// publisher's PUBACK/PUBREC waits for it (as it waits for the local store):
// a peer confirms once its copy is durable there. The cluster confirms for a
// peer it cannot reach, so a dead or cut-off peer delays an ack by at most
// the link's failure detection, never for ever.
// Thread-safe: expected on the publisher's worker, confirmed from the
// cluster's threads; the callback is posted to the publisher's worker.
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>

#include "broker/ports/executor.hpp"

namespace flock::core {

class remote_ack {
 public:
  void expect() { pending_.fetch_add(1, std::memory_order_relaxed); }
  void confirm() {
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    std::function<void()> fn;
    ports::executor* ex = nullptr;
    ports::worker_id w = 0;
    {
      std::lock_guard lock(mutex_);
      fn = std::move(fn_);
      fn_ = nullptr;
      ex = executor_;
      w = worker_;
    }
    if (fn) ex->post(w, std::move(fn));
  }
  // Like confirm(), but hands the callback (if this was the last peer) to
  // the caller, who posts many at once: one post per worker for a whole
  // acknowledgement frame instead of one per message.
  struct due {
    std::function<void()> fn;
    ports::executor* executor = nullptr;
    ports::worker_id worker = 0;
  };
  due confirm_later() {
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) != 1) return {};
    std::lock_guard lock(mutex_);
    due d{std::move(fn_), executor_, worker_};
    fn_ = nullptr;
    return d;
  }
  bool done() const { return pending_.load(std::memory_order_acquire) == 0; }
  // Runs fn on worker w once every expected peer confirmed (posted at once if
  // they all did already). At most one callback.
  void when_done(ports::executor& ex, ports::worker_id w, std::function<void()> fn) {
    {
      std::lock_guard lock(mutex_);
      if (!done()) {
        fn_ = std::move(fn);
        executor_ = &ex;
        worker_ = w;
        return;
      }
    }
    ex.post(w, std::move(fn));
  }

 private:
  std::atomic<int> pending_{0};
  std::mutex mutex_;
  std::function<void()> fn_;
  ports::executor* executor_ = nullptr;
  ports::worker_id worker_ = 0;
};

using remote_ack_ptr = std::shared_ptr<remote_ack>;

}  // namespace flock::core
