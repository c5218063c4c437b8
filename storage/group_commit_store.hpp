#pragma once
// ports::store over a kv_backend, with group commit: everything appended
// while one group is being written becomes the next group, written as ONE
// atomic batch. Durability then costs each publisher the latency of about
// one write (fsync in sync mode), while throughput is set by how much a
// batch carries rather than by how many writes the disk does per second.
//
// Threads: append(), when_durable(), is_durable(), healthy() and flush()
// from any thread (workers). One writer thread, owned by the store, does
// every backend write and posts the callbacks to the workers. Lives from
// start-up to shutdown; the destructor flushes (briefly) and joins.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "broker/ports/store.hpp"
#include "storage/controller_log_kv.hpp"
#include "storage/kv_backend.hpp"

namespace flock::storage {

struct group_commit_options {
  bool sync = false;      // fsync every group (durability::sync)
  bool coalesce = true;   // see coalesce.hpp; off only to measure it and test it
  std::function<void(const std::string&)> log;  // errors and repairs; stderr when empty
  // How long the destructor waits for the last groups (a failing disk must
  // not hang shutdown: what is not written by then was never acknowledged).
  ports::duration shutdown_flush_timeout = std::chrono::seconds(2);
};

struct group_commit_stats {
  std::uint64_t groups = 0;       // batches written
  std::uint64_t ops = 0;          // ops appended
  std::uint64_t coalesced = 0;    // ops dropped by coalescing
  std::uint64_t failed_writes = 0;
};

class group_commit_store final : public ports::store {
 public:
  group_commit_store(std::unique_ptr<kv_backend> backend, group_commit_options options, ports::executor& executor,
                     const ports::clock& clock);
  ~group_commit_store() override;

  ports::restored_state load() override;
  ticket append(std::span<ports::store_op> ops) override;
  bool is_durable(ticket t) const override;
  void when_durable(ticket t, ports::worker_id w, std::function<void()> fn) override;
  bool healthy() const override;
  bool flush(ports::duration timeout) override;
  write_metrics metrics() const override;
  ports::controller_log* controller() override { return &controller_log_; }

  group_commit_stats stats() const;
  kv_backend& backend() { return *backend_; }

 private:
  struct waiter {
    ticket t;
    std::function<void()> fn;
  };

  void run();
  // Writes the group, retrying until it succeeds or the store stops. False
  // when stopped first.
  bool commit(std::vector<ports::store_op>& ops);
  void note_failure(const std::string& error);
  void mark_durable(ticket t);
  void log(const std::string& line) const;

  std::unique_ptr<kv_backend> backend_;
  controller_log_kv controller_log_{*backend_};
  group_commit_options options_;
  ports::executor& executor_;
  const ports::clock& clock_;

  // Order: post_mu_ before mu_. post_mu_ is held while callbacks are posted,
  // so a callback for an already durable ticket cannot overtake earlier ones
  // of the same worker that the writer is still posting.
  std::mutex post_mu_;
  mutable std::mutex mu_;
  std::condition_variable work_cv_;     // writer: a group is open, or stop
  std::condition_variable durable_cv_;  // flush(): durable_ moved
  std::vector<ports::store_op> open_;   // the open group
  ticket open_ticket_ = 1;              // the open group's ticket
  ticket durable_ = 0;                  // every group <= this is durable (under mu_)
  std::atomic<ticket> durable_atomic_{0};
  std::vector<std::deque<waiter>> waiters_;  // per worker, in call order (so in ticket order)
  bool stop_ = false;
  group_commit_stats stats_;

  std::atomic<bool> healthy_{true};
  // Written by the writer thread only, read by scrapes.
  core::latency_histogram write_us_{core::latency_bounds_us};
  core::size_histogram batch_ops_{core::size_bounds};
  // Writer thread only: rate limit of the failure log.
  std::optional<std::chrono::steady_clock::time_point> last_failure_log_;
  std::uint64_t unreported_failures_ = 0;
  bool failure_logged_ = false;  // a failure line awaits its "works again" line
  std::thread writer_;
};

}  // namespace flock::storage
