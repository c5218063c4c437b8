#pragma once
// The worker threads: N io_contexts, each run by exactly one thread, plus what
// each worker owns alone (the shared read buffer, the list of its connections,
// the 1-second tick timer). Implements ports::executor for the core.
// Owned by the server; lives from start-up to shutdown. start()/stop()/join()
// are called from the control (main) thread; everything inside a worker is
// touched only by that worker's thread.
#include "broker/server/asio.hpp"

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "broker/ports/executor.hpp"

namespace flock::server {

class connection_base;

// One worker's private state. Only its own thread reads or writes it
// (live_connections is atomic so the control thread can wait for zero).
struct worker {
  explicit worker(ports::worker_id worker_id);

  ports::worker_id id;
  asio::io_context io{1};  // concurrency hint 1: one thread, no internal locking needed
  // Every connection on this worker reads into this buffer, so an idle
  // connection holds no read buffer of its own.
  std::vector<std::uint8_t> read_buffer;
  // Intrusive list of live connections (see connection::link).
  connection_base* connections = nullptr;
  std::atomic<std::size_t> live_connections{0};
  // A connection whose unsent output grows past this stops being read until
  // its output drains: a client that publishes without reading its acks is
  // slowed by TCP instead of growing our memory. Set by the server.
  std::size_t pause_reading_above = 8 * 1024 * 1024;
  asio::steady_timer tick_timer;
  bool ticking = true;  // cleared on the worker by worker_pool::stop()
  asio::executor_work_guard<asio::io_context::executor_type> guard;
  std::thread thread;
};

class worker_pool final : public ports::executor {
 public:
  static constexpr std::size_t read_buffer_size = 64 * 1024;

  // count == 0 means one worker per hardware thread.
  explicit worker_pool(std::uint32_t count);
  ~worker_pool() override;
  worker_pool(const worker_pool&) = delete;
  worker_pool& operator=(const worker_pool&) = delete;

  // Called on each worker's thread once a second (the server ticks the broker
  // and the connections). Set before start().
  void set_tick_handler(std::function<void(worker&)> handler) { tick_handler_ = std::move(handler); }

  void start();
  // Cancels the tick timers and lets each io_context return once its work is
  // done; join() waits for the threads.
  void stop();
  void join();

  worker& at(ports::worker_id w) { return *workers_[w]; }

  // ports::executor
  std::uint32_t worker_count() const override { return static_cast<std::uint32_t>(workers_.size()); }
  void post(ports::worker_id w, std::function<void()> task) override;
  ports::worker_id current_worker() const override;

  // Runs `task` on every worker and waits until all have run it. Must not be
  // called from a worker thread.
  void run_on_all_and_wait(const std::function<void(worker&)>& task);

 private:
  void arm_tick(worker& w);

  std::vector<std::unique_ptr<worker>> workers_;
  std::function<void(worker&)> tick_handler_;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace flock::server
