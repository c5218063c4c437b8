#include "tools/flock-bench/runtime.hpp"

#include <sys/resource.h>

#include <atomic>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>

namespace flock::bench {

void error_log::add(const std::string& what) {
  count_.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lock(mutex_);
  if (first_.size() < 5) first_.push_back(what);
}

std::string error_log::first() const {
  std::lock_guard lock(mutex_);
  return first_.empty() ? std::string() : first_.front();
}

worker_pool::worker_pool(int threads) {
  for (int i = 0; i < threads; ++i) {
    auto w = std::make_unique<worker>();
    auto* raw = w.get();
    w->thread = std::thread([raw] { raw->io.run(); });
    workers_.push_back(std::move(w));
  }
}

worker_pool::~worker_pool() { stop(); }

void worker_pool::stop() {
  for (auto& w : workers_) {
    w->guard.reset();
    w->io.stop();
  }
  for (auto& w : workers_)
    if (w->thread.joinable()) w->thread.join();
}

connect_pacer::connect_pacer(asio::io_context& io, int concurrency, double rate)
    : timer_(io), concurrency_(concurrency < 1 ? 1 : concurrency), rate_(rate) {}

void connect_pacer::begin() {
  begin_ = steady::now();
  pump();
}

void connect_pacer::done() {
  if (pending_ > 0) --pending_;
  pump();
}

void connect_pacer::stop() {
  stopped_ = true;
  queue_.clear();
  timer_.cancel();
}

void connect_pacer::pump() {
  if (stopped_ || begin_ == steady::time_point{}) return;
  while (!queue_.empty() && pending_ < concurrency_) {
    if (rate_ > 0) {
      auto allowed = static_cast<std::uint64_t>(seconds_between(begin_, steady::now()) * rate_) + 1;
      if (started_ >= allowed) return arm();
    }
    auto start = std::move(queue_.front());
    queue_.pop_front();
    ++pending_;
    ++started_;
    start();  // may call done() synchronously only through a posted handler
  }
}

void connect_pacer::arm() {
  if (armed_) return;
  armed_ = true;
  timer_.expires_after(std::chrono::milliseconds(1));
  timer_.async_wait([this](const boost::system::error_code& ec) {
    armed_ = false;
    if (!ec) pump();
  });
}

ticker::ticker(asio::io_context& io, steady::duration period, std::function<void(steady::time_point)> fn)
    : timer_(io), period_(period), fn_(std::move(fn)) {}

void ticker::start() {
  stopped_ = false;
  next_ = steady::now();
  arm();
}

void ticker::arm() {
  next_ += period_;
  auto now = steady::now();
  if (next_ < now) next_ = now;  // we fell behind: do not fire a burst of ticks
  timer_.expires_at(next_);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopped_) return;
    fn_(steady::now());
    if (!stopped_) arm();
  });
}

tcp::endpoint resolve(const std::string& host, std::uint16_t port) {
  boost::system::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (!ec) return {address, port};
  asio::io_context io;
  tcp::resolver resolver(io);
  auto results = resolver.resolve(host, std::to_string(port), ec);
  if (ec || results.empty()) throw bench_error("cannot resolve " + host + ": " + ec.message());
  return *results.begin();
}

std::uint64_t raise_fd_limit() {
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) != 0) return 1024;
  if (r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
    getrlimit(RLIMIT_NOFILE, &r);
  }
  return r.rlim_cur;
}

std::optional<std::uint64_t> process_memory(int pid, const char* field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line, key = std::string(field) + ":";
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) != 0) continue;
    std::istringstream fields(line.substr(key.size()));
    std::uint64_t kib = 0;
    if (fields >> kib) return kib * 1024;
  }
  return std::nullopt;
}

std::uint32_t new_run_id() {
  std::random_device rd;
  std::uint32_t id = rd();
  return id == 0 ? 1 : id;
}

client_options base_client_options(const options& o, std::string client_id) {
  client_options c;
  c.client_id = std::move(client_id);
  c.version = o.mqtt_version == 5 ? codec::protocol_version::v5 : codec::protocol_version::v311;
  c.keep_alive = static_cast<std::uint16_t>(o.keepalive);
  c.inflight = static_cast<std::uint16_t>(o.inflight);
  c.username = o.username;
  c.password = o.password;
  c.connect_timeout = std::chrono::milliseconds(static_cast<std::int64_t>(o.connect_timeout * 1000));
  if (!o.source_addresses.empty()) {
    static std::atomic<std::size_t> next{0};  // round robin over every client of the run
    c.source = asio::ip::make_address(o.source_addresses[next++ % o.source_addresses.size()]);
  }
  return c;
}

void progress(const options& o, const std::string& line) {
  if (!o.quiet) std::cerr << "flock-bench: " << line << std::endl;
}

bool wait_for(const std::function<bool()>& pred, steady::time_point deadline, std::chrono::milliseconds step) {
  for (;;) {
    if (pred()) return true;
    if (steady::now() >= deadline) return false;
    std::this_thread::sleep_for(step);
  }
}

}  // namespace flock::bench
