#pragma once
// What every scenario needs: worker threads (one io_context each), a paced
// connect queue, an error sink, and small system helpers (endpoint, file
// descriptor limit, a process's RSS).
#include "tools/flock-bench/asio.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tools/flock-bench/client.hpp"
#include "tools/flock-bench/options.hpp"

namespace flock::bench {

// A fatal problem that ends the run with one line (exit status 1).
struct bench_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline std::int64_t to_ns(steady::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
inline steady::duration seconds(double s) {
  return std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(s));
}
inline double seconds_between(steady::time_point a, steady::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Connection failures and protocol errors from any thread: a count and the
// first few messages.
class error_log {
 public:
  void add(const std::string& what);
  std::uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  std::string first() const;

 private:
  mutable std::mutex mutex_;
  std::atomic<std::uint64_t> count_{0};
  std::vector<std::string> first_;
};

struct worker {
  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> guard = asio::make_work_guard(io);
  std::thread thread;
};

class worker_pool {
 public:
  explicit worker_pool(int threads);
  ~worker_pool();
  worker& at(std::size_t i) { return *workers_[i]; }
  std::size_t size() const { return workers_.size(); }
  // Runs f on worker i's thread, and waits for it.
  template <typename F>
  auto call(std::size_t i, F f) -> decltype(f()) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto result = task.get_future();
    asio::post(workers_[i]->io, [&task] { task(); });
    return result.get();
  }
  // Stops every io_context and joins the threads (idempotent).
  void stop();

 private:
  std::vector<std::unique_ptr<worker>> workers_;
};

// Starts queued connection attempts on one worker, at most `concurrency`
// unresolved at a time and at most `rate` starts per second (0 = no limit).
// The owner calls done() once per attempt when it resolves (CONNACK, or
// failure).
class connect_pacer {
 public:
  connect_pacer(asio::io_context& io, int concurrency, double rate);
  void add(std::function<void()> start) { queue_.push_back(std::move(start)); }
  void begin();  // start pumping the queue
  void done();
  std::size_t waiting() const { return queue_.size(); }
  void stop();

 private:
  void pump();
  void arm();
  asio::steady_timer timer_;
  std::deque<std::function<void()>> queue_;
  int concurrency_;
  double rate_;
  int pending_ = 0;
  std::uint64_t started_ = 0;
  steady::time_point begin_{};
  bool armed_ = false;
  bool stopped_ = false;
};

// A repeating timer on one worker; the callback gets the time of this tick.
class ticker {
 public:
  ticker(asio::io_context& io, steady::duration period, std::function<void(steady::time_point)> fn);
  void start();
  void stop() {
    stopped_ = true;
    timer_.cancel();
  }

 private:
  void arm();
  asio::steady_timer timer_;
  steady::duration period_;
  std::function<void(steady::time_point)> fn_;
  steady::time_point next_{};
  bool stopped_ = false;
};

tcp::endpoint resolve(const std::string& host, std::uint16_t port);
// Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit.
std::uint64_t raise_fd_limit();
// VmRSS or VmHWM (field) of a process, in bytes; nullopt if unreadable.
std::optional<std::uint64_t> process_memory(int pid, const char* field = "VmRSS");
std::uint32_t new_run_id();
client_options base_client_options(const options& o, std::string client_id);
// Progress lines on stderr (not with --quiet).
void progress(const options& o, const std::string& line);
// Sleeps on the calling thread until pred() or the deadline; true if pred().
bool wait_for(const std::function<bool()>& pred, steady::time_point deadline,
              std::chrono::milliseconds step = std::chrono::milliseconds(20));

}  // namespace flock::bench
