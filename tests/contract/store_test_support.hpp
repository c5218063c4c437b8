#pragma once
// What the store tests drive the store with: an executor whose posted tasks
// wait in a queue per worker until the test runs them, a clock the test
// sets, a temporary directory, polling with a deadline (no sleeps), and
// shorthands for building ops.
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "broker/ports/clock.hpp"
#include "broker/ports/executor.hpp"
#include "broker/ports/store.hpp"

namespace flock::testing {

// Tasks posted to worker w wait until run(w); posts are counted so a test
// can check how many the store made.
class queued_executor final : public ports::executor {
 public:
  explicit queued_executor(std::uint32_t workers) : queues_(workers), posts_(workers, 0) {}

  std::uint32_t worker_count() const override { return static_cast<std::uint32_t>(queues_.size()); }
  void post(ports::worker_id w, std::function<void()> task) override {
    std::lock_guard lk(mu_);
    queues_.at(w).push_back(std::move(task));
    ++posts_.at(w);
    cv_.notify_all();
  }
  ports::worker_id current_worker() const override { return current_; }

  // Runs what is queued for w (as if on w's thread); returns how many tasks.
  std::size_t run(ports::worker_id w) {
    std::deque<std::function<void()>> tasks;
    {
      std::lock_guard lk(mu_);
      tasks.swap(queues_.at(w));
    }
    for (auto& t : tasks) {
      current_ = w;
      t();
      current_ = 0;
    }
    return tasks.size();
  }
  std::size_t posts(ports::worker_id w) const {
    std::lock_guard lk(mu_);
    return posts_.at(w);
  }
  // Waits until worker w has had at least n posts in all.
  bool wait_posts(ports::worker_id w, std::size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, timeout, [&] { return posts_.at(w) >= n; });
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::deque<std::function<void()>>> queues_;
  std::vector<std::size_t> posts_;
  static inline thread_local ports::worker_id current_ = 0;
};

class manual_clock final : public ports::clock {
 public:
  ports::time_point now() const override { return now_; }
  void advance(ports::duration d) { now_ += d; }

 private:
  // Far from the real steady clock on purpose: the store must convert with
  // the clock it was given, never mix in steady_clock::now().
  ports::time_point now_ = ports::time_point{} + std::chrono::hours(1000);
};

// Polls pred until it holds or the deadline passes.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// A fresh directory under /tmp, removed with everything in it.
class temp_dir {
 public:
  temp_dir() {
    std::string pattern = "/tmp/flock-store-test-XXXXXX";
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// --- building ops ---

// The tests' small session ids are all of partition 0 (the top 16 bits of a
// session id, replication/partition.hpp), so their messages are stored there.
inline replication::partition_set partitions(std::initializer_list<replication::partition_id> ps = {0}) {
  replication::partition_set s;
  for (auto p : ps) s.add(p);
  return s;
}

inline std::shared_ptr<core::message> make_message(std::uint64_t id, std::string topic, std::string payload = "p") {
  auto m = std::make_shared<core::message>();
  m->id = id;
  m->partitions = partitions();
  m->topic = std::move(topic);
  m->payload = std::move(payload);
  m->qos = 1;
  m->publisher = "pub";
  return m;
}

inline ports::session_put make_session(std::uint64_t sid, std::string client, std::uint32_t expiry = 3600) {
  ports::session_put p;
  p.session_id = sid;
  p.client_id = std::move(client);
  p.expiry_interval = expiry;
  return p;
}

}  // namespace flock::testing
