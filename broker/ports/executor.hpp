#pragma once
// The core's view of the worker threads. The server implements it with one
// io_context per worker; unit tests implement it with a manual queue.
#include <cstdint>
#include <functional>

namespace flock::ports {

using worker_id = std::uint32_t;

class executor {
 public:
  virtual ~executor() = default;
  virtual std::uint32_t worker_count() const = 0;
  // Runs `task` later on worker `w`'s thread, in FIFO order per (caller, w).
  virtual void post(worker_id w, std::function<void()> task) = 0;
  // The worker whose thread is calling (0 when called from a non-worker thread).
  virtual worker_id current_worker() const = 0;
};

}  // namespace flock::ports
