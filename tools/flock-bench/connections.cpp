// connections: open N idle MQTT connections (paced by --connect-rate and
// --connect-concurrency), hold them for --duration with keep alive running,
// then disconnect. With --broker-pid, the broker's RSS is read from
// /proc/PID/status before connecting, after the hold, and after the
// disconnects: (held - before) / connected = bytes per connection.
#include <cmath>

#include "tools/flock-bench/histogram.hpp"
#include "tools/flock-bench/scenarios.hpp"

namespace flock::bench {

namespace {

struct alignas(64) conn_counters {
  std::atomic<std::uint64_t> connected{0}, failed{0}, subscribed{0}, dropped{0};
  std::atomic<std::int64_t> last_connack_ns{0};
};

struct conn_worker;

struct idle_connection final : client_handler {
  idle_connection(conn_worker& w, int index);
  void on_connected(client&) override;
  void on_suback(client&, const codec::suback&) override;
  void on_closed(client&, const std::string& error) override;
  conn_worker& w;
  int index;
  client c;
  steady::time_point started{};
  bool ready = false;
};

struct conn_worker {
  conn_worker(worker& wk, const options& opt, tcp::endpoint ep, error_log& e, int concurrency, double rate)
      : io(wk.io),
        o(opt),
        broker(ep),
        errors(e),
        pacer(wk.io, concurrency, rate),
        housekeeping(wk.io, std::chrono::milliseconds(100), [this](steady::time_point now) {
          for (auto& c : conns) c->c.tick(now);
        }) {}
  bool all_closed() const {
    for (auto& c : conns)
      if (c->c.current() != client::state::closed && c->c.current() != client::state::idle) return false;
    return true;
  }
  asio::io_context& io;
  const options& o;
  tcp::endpoint broker;
  error_log& errors;
  connect_pacer pacer;
  ticker housekeeping;
  std::vector<std::unique_ptr<idle_connection>> conns;
  histogram connect_latency;
  bool ending = false;
  conn_counters live;
};

idle_connection::idle_connection(conn_worker& wk, int i)
    : w(wk), index(i), c(wk.io, *this, base_client_options(wk.o, wk.o.client_prefix + "-conn-" + std::to_string(i))) {}

void idle_connection::on_connected(client&) {
  auto now = steady::now();
  ready = true;
  w.connect_latency.record(static_cast<std::uint64_t>(to_ns(now) - to_ns(started)));
  w.live.connected.fetch_add(1, std::memory_order_relaxed);
  w.live.last_connack_ns.store(to_ns(now), std::memory_order_relaxed);
  if (w.o.subscribe) {
    codec::subscription_request r;
    r.filter = w.o.client_prefix + "/c/" + std::to_string(index);
    r.qos = static_cast<std::uint8_t>(w.o.qos);
    c.subscribe({r});
  }
  w.pacer.done();
}

void idle_connection::on_suback(client&, const codec::suback&) {
  w.live.subscribed.fetch_add(1, std::memory_order_relaxed);
}

void idle_connection::on_closed(client&, const std::string& error) {
  if (!ready) {
    w.live.failed.fetch_add(1, std::memory_order_relaxed);
    w.errors.add(c.id() + ": " + error);
    w.pacer.done();
    return;
  }
  if (w.ending) return;
  w.live.dropped.fetch_add(1, std::memory_order_relaxed);
  w.errors.add(c.id() + ": " + (error.empty() ? std::string("closed") : error));
}

template <typename T>
std::uint64_t total(std::vector<std::unique_ptr<conn_worker>>& ws, std::atomic<T> conn_counters::*field) {
  std::uint64_t n = 0;
  for (auto& w : ws) n += static_cast<std::uint64_t>((w->live.*field).load(std::memory_order_relaxed));
  return n;
}

}  // namespace

void run_connections(const options& o, report& out, error_log& errors) {
  auto fds = raise_fd_limit();
  auto needed = static_cast<std::uint64_t>(o.connections) + 32;
  if (needed > fds)
    throw bench_error("--connections " + std::to_string(o.connections) + " needs " + std::to_string(needed) +
                      " file descriptors but this process may open " + std::to_string(fds) +
                      "; run several flock-bench processes with distinct --client-prefix (the broker needs its "
                      "own limit raised too)");
  auto broker = resolve(o.host, o.port);
  auto memory = [&](const char* field = "VmRSS") -> std::optional<std::uint64_t> {
    if (o.broker_pid <= 0) return std::nullopt;
    return process_memory(o.broker_pid, field);
  };
  std::optional<std::uint64_t> rss_before = memory();
  if (o.broker_pid > 0 && !rss_before)
    throw bench_error("cannot read /proc/" + std::to_string(o.broker_pid) + "/status (--broker-pid)");

  worker_pool pool(o.threads);
  std::vector<std::unique_ptr<conn_worker>> ws;
  int per_worker_concurrency = std::max(1, o.connect_concurrency / o.threads);
  for (std::size_t i = 0; i < pool.size(); ++i)
    ws.push_back(std::make_unique<conn_worker>(pool.at(i), o, broker, errors, per_worker_concurrency,
                                               o.connect_rate / o.threads));

  progress(o, "opening " + std::to_string(o.connections) + " connections");
  auto begin = steady::now();
  for (std::size_t i = 0; i < ws.size(); ++i)
    pool.call(i, [&, i] {
      auto& w = *ws[i];
      for (int n = static_cast<int>(i); n < o.connections; n += static_cast<int>(ws.size())) {
        w.conns.push_back(std::make_unique<idle_connection>(w, n));
        auto* c = w.conns.back().get();
        w.pacer.add([c, &w] {
          c->started = steady::now();
          c->c.connect(w.broker);
        });
      }
      w.housekeeping.start();
      w.pacer.begin();
    });

  auto n = static_cast<std::uint64_t>(o.connections);
  double attempts = std::ceil(static_cast<double>(n) / o.connect_concurrency);
  auto deadline = begin + seconds((o.connect_rate > 0 ? static_cast<double>(n) / o.connect_rate : 0) +
                                  o.connect_timeout * (attempts + 1) + 10);
  auto next_report = begin + std::chrono::seconds(1);
  wait_for(
      [&] {
        auto done = total(ws, &conn_counters::connected) + total(ws, &conn_counters::failed);
        if (steady::now() >= next_report) {
          next_report += std::chrono::seconds(1);
          progress(o, "  " + std::to_string(total(ws, &conn_counters::connected)) + " connected");
        }
        return done >= n;
      },
      deadline);
  auto connected = total(ws, &conn_counters::connected);
  auto failed = total(ws, &conn_counters::failed);
  std::int64_t last_ns = 0;
  for (auto& w : ws) last_ns = std::max(last_ns, w->live.last_connack_ns.load());
  double connect_s = connected ? static_cast<double>(last_ns - to_ns(begin)) / 1e9 : seconds_between(begin, steady::now());
  if (o.subscribe)
    wait_for([&] { return total(ws, &conn_counters::subscribed) >= connected; },
             steady::now() + seconds(o.connect_timeout));

  // Hold.
  progress(o, "holding " + std::to_string(connected) + " connections for " +
                  std::to_string(static_cast<int>(std::lround(o.duration))) + " s");
  auto hold_end = steady::now() + seconds(o.duration);
  while (steady::now() < hold_end) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto rss_held = memory();
  auto hwm = memory("VmHWM");
  auto dropped = total(ws, &conn_counters::dropped);

  // Disconnect.
  progress(o, "disconnecting");
  for (std::size_t i = 0; i < ws.size(); ++i)
    pool.call(i, [&, i] {
      ws[i]->ending = true;
      ws[i]->pacer.stop();
      for (auto& c : ws[i]->conns) c->c.disconnect();
    });
  wait_for(
      [&] {
        for (std::size_t i = 0; i < ws.size(); ++i)
          if (!pool.call(i, [&, i] { return ws[i]->all_closed(); })) return false;
        return true;
      },
      steady::now() + std::chrono::seconds(10));
  for (std::size_t i = 0; i < ws.size(); ++i) pool.call(i, [&, i] { ws[i]->housekeeping.stop(); });
  pool.stop();
  std::optional<std::uint64_t> rss_after;
  if (o.broker_pid > 0) {
    std::this_thread::sleep_for(std::chrono::seconds(1));  // let the broker finish its clean-up
    rss_after = memory();
  }

  histogram latency;
  for (auto& w : ws) latency.merge(w->connect_latency);

  out.text_value("scenario", "connections");
  out.text_value("broker", o.host + ":" + std::to_string(o.port));
  auto& cfg = out.section("config");
  cfg.text_value("mqtt_version", o.mqtt_version == 5 ? "5.0" : "3.1.1");
  cfg.count("connections", n);
  cfg.real("connect_rate", o.connect_rate, o.connect_rate > 0 ? "conn/s" : "conn/s (as fast as possible)", 0);
  cfg.count("connect_concurrency", static_cast<std::uint64_t>(o.connect_concurrency));
  cfg.count("keepalive", static_cast<std::uint64_t>(o.keepalive), "s");
  cfg.real("hold", o.duration, "s");
  cfg.flag("subscribe", o.subscribe);
  cfg.count("threads", static_cast<std::uint64_t>(o.threads));
  auto& res = out.section("connections");
  res.count("connected", connected);
  res.count("failed", failed);
  res.count("dropped_while_held", dropped);
  if (o.subscribe) res.count("subscribed", total(ws, &conn_counters::subscribed));
  res.real("connect_time", connect_s, "s", 2);
  res.real("connect_rate", connect_s > 0 ? static_cast<double>(connected) / connect_s : 0, "conn/s", 0);
  if (errors.count()) res.text_value("first_error", errors.first());
  add_latency(out, "connect_latency", latency);
  if (rss_before) {
    auto& mem = out.section("broker_memory");
    mem.count("pid", static_cast<std::uint64_t>(o.broker_pid));
    mem.real("rss_before", static_cast<double>(*rss_before) / 1048576.0, "MiB");
    if (rss_held) mem.real("rss_held", static_cast<double>(*rss_held) / 1048576.0, "MiB");
    if (rss_after) mem.real("rss_after_disconnect", static_cast<double>(*rss_after) / 1048576.0, "MiB");
    if (hwm) mem.real("peak_rss", static_cast<double>(*hwm) / 1048576.0, "MiB (VmHWM, whole life)");
    if (rss_held && connected)
      mem.real("bytes_per_connection",
               (static_cast<double>(*rss_held) - static_cast<double>(*rss_before)) / static_cast<double>(connected),
               "bytes", 0);
  }
}

}  // namespace flock::bench
