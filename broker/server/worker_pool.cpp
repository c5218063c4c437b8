#include "broker/server/worker_pool.hpp"

#include <algorithm>
#include <cassert>
#include <condition_variable>
#include <mutex>

#include "broker/server/log.hpp"

namespace flock::server {
namespace {

// Which worker this thread runs (kNone on the control thread and in tests).
constexpr ports::worker_id kNone = ~ports::worker_id{0};
thread_local ports::worker_id this_worker = kNone;

}  // namespace

worker::worker(ports::worker_id worker_id)
    : id(worker_id), read_buffer(worker_pool::read_buffer_size), tick_timer(io), guard(io.get_executor()) {}

worker_pool::worker_pool(std::uint32_t count) {
  if (count == 0) count = std::max(1u, std::thread::hardware_concurrency());
  workers_.reserve(count);
  for (std::uint32_t i = 0; i < count; ++i) workers_.push_back(std::make_unique<worker>(i));
}

worker_pool::~worker_pool() {
  stop();
  join();
}

void worker_pool::start() {
  if (started_) return;
  started_ = true;
  for (auto& w : workers_) {
    worker* wp = w.get();
    arm_tick(*wp);
    wp->thread = std::thread([wp] {
      this_worker = wp->id;
      // Handlers do not throw by design; if one does, the process is broken
      // beyond what one worker can recover, so log and terminate loudly.
      try {
        wp->io.run();
      } catch (const std::exception& e) {
        log::error("worker ", wp->id, ": unhandled exception: ", e.what());
        std::terminate();
      }
    });
  }
}

void worker_pool::arm_tick(worker& w) {
  w.tick_timer.expires_after(std::chrono::seconds(1));
  w.tick_timer.async_wait([this, &w](const boost::system::error_code& ec) {
    if (ec || !w.ticking) return;
    if (tick_handler_) tick_handler_(w);
    arm_tick(w);
  });
}

void worker_pool::stop() {
  if (!started_ || stopped_) return;
  stopped_ = true;
  for (auto& w : workers_) {
    worker* wp = w.get();
    asio::post(wp->io, [wp] {
      wp->ticking = false;
      wp->tick_timer.cancel();
    });
    wp->guard.reset();
  }
}

void worker_pool::join() {
  for (auto& w : workers_)
    if (w->thread.joinable()) w->thread.join();
}

void worker_pool::post(ports::worker_id w, std::function<void()> task) {
  assert(w < workers_.size());
  asio::post(workers_[w]->io, std::move(task));
}

ports::worker_id worker_pool::current_worker() const {
  return this_worker == kNone ? 0 : this_worker;
}

void worker_pool::run_on_all_and_wait(const std::function<void(worker&)>& task) {
  std::mutex m;
  std::condition_variable cv;
  std::size_t left = workers_.size();
  for (auto& w : workers_) {
    worker* wp = w.get();
    asio::post(wp->io, [&, wp] {
      task(*wp);
      std::lock_guard lock(m);
      if (--left == 0) cv.notify_one();
    });
  }
  std::unique_lock lock(m);
  cv.wait(lock, [&] { return left == 0; });
}

}  // namespace flock::server
