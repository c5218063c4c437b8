// fill: prepare a broker for start-up benchmarks, then exit.
//   --retained N             N retained messages on <prefix>/retained/<i> (QoS --qos, default 1)
//   --sessions M --queued K  M persistent sessions <prefix>-sess-<m>, each subscribed at QoS 1
//                            to <prefix>/q/<m> and disconnected; then K QoS 1 messages per
//                            topic, round robin, so the broker queues M x K messages
// drain: resume those M sessions and count what each receives (expects K,
// sequence 0..K-1, exact duplicates/missing), e.g. after a broker restart.
#include <cmath>

#include "tools/flock-bench/histogram.hpp"
#include "tools/flock-bench/payload.hpp"
#include "tools/flock-bench/scenarios.hpp"
#include "tools/flock-bench/sequence.hpp"

namespace flock::bench {

namespace {

constexpr std::size_t qos0_batch_bytes = 64 * 1024;
constexpr auto drain_idle = std::chrono::seconds(2);

struct alignas(64) fill_counters {
  std::atomic<std::uint64_t> done{0}, failed{0}, messages{0}, present{0};
};

struct fill_worker {
  fill_worker(worker& wk, const options& opt, tcp::endpoint ep, tcp::endpoint sub_ep, error_log& e, int concurrency)
      : io(wk.io), o(opt), broker(ep), sub_broker(sub_ep), errors(e), pacer(wk.io, concurrency, o.connect_rate),
        housekeeping(wk.io, std::chrono::milliseconds(100), [this](steady::time_point now) {
          for (auto& t : tickers) t(now);
        }) {}
  asio::io_context& io;
  const options& o;
  tcp::endpoint broker;      // publishers
  tcp::endpoint sub_broker;  // sessions (--sub-host/--sub-port)
  error_log& errors;
  connect_pacer pacer;
  ticker housekeeping;
  std::vector<std::function<void(steady::time_point)>> tickers;
  bool ending = false;
  fill_counters live;
};

// A persistent session <prefix>-sess-<m>. mode create: start it empty,
// subscribe, leave. mode drain: resume it and read until K messages or 2 s
// of silence, then leave.
struct session_client final : client_handler {
  enum class mode { create, drain };
  enum class phase { resetting, working, leaving, finished };
  session_client(fill_worker& w, int m, mode md) : w(w), m(m), md(md), c(w.io, *this, make_options(w.o, m)) {}

  static client_options make_options(const options& o, int m) {
    auto co = base_client_options(o, o.client_prefix + "-sess-" + std::to_string(m));
    if (o.mqtt_version == 5) co.session_expiry = o.session_expiry;
    return co;
  }
  void start() {
    // create: 3.1.1 ends any old session with a clean-session connection first;
    // MQTT 5 uses Clean Start with a session expiry. drain: resume.
    bool v4 = w.o.mqtt_version == 4;
    at = (md == mode::create && v4) ? phase::resetting : phase::working;
    c.options().clean_start = md == mode::create;
    c.connect(w.sub_broker);
  }
  void on_connected(client&) override {
    if (at == phase::resetting) return c.disconnect();
    if (md == mode::create) {
      codec::subscription_request r;
      r.filter = w.o.client_prefix + "/q/" + std::to_string(m);
      r.qos = 1;
      return c.subscribe({r});
    }
    if (c.session_present()) w.live.present.fetch_add(1, std::memory_order_relaxed);
    last_activity = steady::now();
    check_done();
  }
  void on_suback(client&, const codec::suback&) override { leave(); }
  void on_message(client&, const codec::publish& p) override {
    last_activity = steady::now();
    auto h = read_payload_header(p.payload);
    if (!h || h->topic != static_cast<std::uint32_t>(m)) {
      ++foreign;
      return;
    }
    auto r = seen.add(h->sequence);
    if (r == sequence_tracker::outcome::duplicate) ++duplicates;
    else {
      if (r == sequence_tracker::outcome::out_of_order) ++out_of_order;
      w.live.messages.fetch_add(1, std::memory_order_relaxed);
      check_done();
    }
  }
  void tick(steady::time_point now) {
    c.tick(now);
    if (md == mode::drain && at == phase::working && c.connected() && now - last_activity >= drain_idle) leave();
  }
  void check_done() {
    if (md == mode::drain && seen.unique() >= w.o.queued) leave();
  }
  void leave() {
    if (at != phase::working) return;
    at = phase::leaving;
    c.disconnect();
  }
  void on_closed(client&, const std::string& error) override {
    if (at == phase::resetting && error.empty()) {
      at = phase::working;
      c.options().clean_start = false;
      return c.connect(w.sub_broker);
    }
    if (at == phase::finished) return;
    bool ok = error.empty() && at == phase::leaving;
    at = phase::finished;
    if (ok) {
      w.live.done.fetch_add(1, std::memory_order_relaxed);
    } else {
      w.live.failed.fetch_add(1, std::memory_order_relaxed);
      if (!w.ending) w.errors.add(c.id() + ": " + (error.empty() ? std::string("closed") : error));
    }
    w.pacer.done();
  }

  fill_worker& w;
  int m;
  mode md;
  client c;
  phase at = phase::working;
  sequence_tracker seen;
  steady::time_point last_activity{};
  std::uint64_t duplicates = 0, out_of_order = 0, foreign = 0;
};

// Publishes messages [first, first + stride, ...) of `count`; message j goes
// to topic_of(j) with sequence seq_of(j).
struct fill_publisher final : client_handler {
  fill_publisher(fill_worker& w, int index, std::uint8_t qos, bool retain, std::uint64_t count, std::uint64_t stride,
                 std::function<std::string(std::uint64_t)> topic_of,
                 std::function<std::pair<std::uint32_t, std::uint64_t>(std::uint64_t)> header_of)
      : w(w), qos(qos), retain(retain), count(count), stride(stride), next(static_cast<std::uint64_t>(index)),
        topic_of(std::move(topic_of)), header_of(std::move(header_of)), payload(make_payload(w.o.payload)),
        c(w.io, *this, base_client_options(w.o, w.o.client_prefix + "-fill-" + std::to_string(index))) {}

  void on_connected(client&) override { pump(); }
  void pump() {
    while (next < count && (qos == 0 ? c.pending_bytes() < qos0_batch_bytes : c.can_publish(qos))) {
      auto [topic, seq] = header_of(next);
      write_payload_header(payload, payload_header{0, 0, topic, seq, to_ns(steady::now())});
      c.publish(topic_of(next), payload, qos, retain, next);
      next += stride;
      ++sent;
    }
    if (next >= count && (qos == 0 ? c.pending_bytes() == 0 : c.inflight() == 0) && !leaving) {
      leaving = true;
      c.disconnect();
    }
  }
  void on_acked(client&, std::uint64_t, steady::time_point, std::uint8_t reason) override {
    if (reason >= 0x80) {
      ++refused;
      w.errors.add(c.id() + ": the broker refused a PUBLISH: " + reason_text(reason));
    } else {
      ++acked;
    }
    pump();
  }
  void on_drained(client&) override {
    if (qos == 0) pump();
  }
  void on_closed(client&, const std::string& error) override {
    bool ok = error.empty() && leaving;
    (ok ? w.live.done : w.live.failed).fetch_add(1, std::memory_order_relaxed);
    if (!ok) w.errors.add(c.id() + ": " + (error.empty() ? std::string("closed") : error));
  }

  fill_worker& w;
  std::uint8_t qos;
  bool retain;
  std::uint64_t count, stride, next;
  std::function<std::string(std::uint64_t)> topic_of;
  std::function<std::pair<std::uint32_t, std::uint64_t>(std::uint64_t)> header_of;
  std::string payload;
  client c;
  std::uint64_t sent = 0, acked = 0, refused = 0;
  bool leaving = false;
};

struct fill_run {
  explicit fill_run(const options& o, error_log& errors) : o(o), pool(o.threads) {
    auto fds = raise_fd_limit();
    if (static_cast<std::uint64_t>(o.connect_concurrency) + 32 > fds)
      throw bench_error("--connect-concurrency is above the file descriptor limit (" + std::to_string(fds) + ")");
    auto broker = resolve(o.host, o.port);
    auto sub_broker = resolve(o.subscriber_host(), o.subscriber_port());
    for (std::size_t i = 0; i < pool.size(); ++i)
      ws.push_back(std::make_unique<fill_worker>(pool.at(i), o, broker, sub_broker, errors,
                                                 std::max(1, o.connect_concurrency / o.threads)));
  }
  ~fill_run() { pool.stop(); }
  std::uint64_t sum(std::atomic<std::uint64_t> fill_counters::*f) {
    std::uint64_t n = 0;
    for (auto& w : ws) n += (w->live.*f).load(std::memory_order_relaxed);
    return n;
  }
  void reset_counters() {
    for (auto& w : ws) {
      w->live.done = 0;
      w->live.failed = 0;
    }
  }
  // Waits until done + failed reaches n or the deadline; prints progress.
  bool wait(std::uint64_t n, steady::time_point deadline, const std::string& what) {
    auto next = steady::now() + std::chrono::seconds(1);
    return wait_for(
        [&] {
          if (steady::now() >= next) {
            next += std::chrono::seconds(1);
            progress(o, "  " + std::to_string(sum(&fill_counters::done)) + " " + what);
          }
          return sum(&fill_counters::done) + sum(&fill_counters::failed) >= n;
        },
        deadline);
  }
  void end() {
    for (std::size_t i = 0; i < ws.size(); ++i)
      pool.call(i, [this, i] {
        ws[i]->ending = true;
        ws[i]->pacer.stop();
        ws[i]->housekeeping.stop();
      });
    pool.stop();
  }
  steady::time_point deadline(std::uint64_t connections) const {
    double attempts = std::ceil(static_cast<double>(connections) / o.connect_concurrency);
    return steady::now() + seconds(o.connect_timeout * (attempts + 1) + 10);
  }

  const options& o;
  worker_pool pool;
  std::vector<std::unique_ptr<fill_worker>> ws;
};

// Runs P fill publishers over `count` messages; returns (sent, acked) and seconds.
struct publish_result {
  std::uint64_t sent = 0, acked = 0, refused = 0;
  double seconds = 0;
};

publish_result publish_all(fill_run& run, std::uint8_t qos, bool retain, std::uint64_t count,
                           std::function<std::string(std::uint64_t)> topic_of,
                           std::function<std::pair<std::uint32_t, std::uint64_t>(std::uint64_t)> header_of,
                           double time_limit) {
  const options& o = run.o;
  int publishers = std::max(1, o.publishers);
  std::vector<std::pair<std::size_t, fill_publisher*>> pubs;
  run.reset_counters();
  auto begin = steady::now();
  for (int p = 0; p < publishers; ++p) {
    std::size_t wi = static_cast<std::size_t>(p) % run.ws.size();
    run.pool.call(wi, [&, wi, p] {
      auto& w = *run.ws[wi];
      auto fp = std::make_shared<fill_publisher>(w, p, qos, retain, count, static_cast<std::uint64_t>(publishers),
                                                 topic_of, header_of);
      pubs.emplace_back(wi, fp.get());
      w.tickers.push_back([fp](steady::time_point now) { fp->c.tick(now); });  // keeps fp alive
      fp->c.connect(w.broker);
    });
  }
  run.wait(static_cast<std::uint64_t>(publishers), begin + seconds(time_limit), "publishers done");
  publish_result r;
  r.seconds = seconds_between(begin, steady::now());
  for (auto& [wi, p] : pubs) {
    auto [sent, acked, refused] = run.pool.call(wi, [p = p] { return std::tuple{p->sent, p->acked, p->refused}; });
    r.sent += sent;
    r.acked += acked;
    r.refused += refused;
  }
  return r;
}

}  // namespace

// Creates m session clients spread over the run's workers and starts them,
// paced; `drain` sessions also run their workers' housekeeping timer.
std::vector<std::unique_ptr<session_client>> start_sessions(fill_run& run, std::uint64_t m, session_client::mode mode) {
  std::vector<std::unique_ptr<session_client>> sessions(m);
  for (std::size_t i = 0; i < run.ws.size(); ++i)
    run.pool.call(i, [&, i] {
      auto& w = *run.ws[i];
      for (std::uint64_t s = i; s < m; s += run.ws.size()) {
        sessions[s] = std::make_unique<session_client>(w, static_cast<int>(s), mode);
        auto* sc = sessions[s].get();
        w.tickers.push_back([sc](steady::time_point now) { sc->tick(now); });
        w.pacer.add([sc] { sc->start(); });
      }
      if (mode == session_client::mode::drain) w.housekeeping.start();
      w.pacer.begin();
    });
  return sessions;
}

void run_fill(const options& o, report& out, error_log& errors) {
  fill_run run(o, errors);
  for (std::size_t i = 0; i < run.ws.size(); ++i) run.pool.call(i, [&run, i] { run.ws[i]->housekeeping.start(); });
  out.text_value("scenario", "fill");
  add_brokers(out, o);
  auto& cfg = out.section("config");
  cfg.text_value("mqtt_version", o.mqtt_version == 5 ? "5.0" : "3.1.1");
  cfg.count("payload", o.payload, "bytes");
  cfg.count("publishers", static_cast<std::uint64_t>(std::max(1, o.publishers)));

  // Publishing is bounded by 2 minutes plus 10 us per message.
  if (o.retained > 0) {
    auto qos = static_cast<std::uint8_t>(o.fill_qos.value_or(1));
    cfg.count("retained", o.retained);
    cfg.count("qos", qos);
    progress(o, "publishing " + std::to_string(o.retained) + " retained messages");
    std::string prefix = o.client_prefix + "/retained/";
    auto r = publish_all(
        run, qos, true, o.retained, [prefix](std::uint64_t i) { return prefix + std::to_string(i); },
        [](std::uint64_t i) { return std::pair{static_cast<std::uint32_t>(i), i}; },
        120 + static_cast<double>(o.retained) * 1e-5);
    run.end();
    auto& res = out.section("retained");
    res.count("published", r.sent);
    if (qos > 0) res.count("acknowledged", r.acked);
    if (r.refused) res.count("refused", r.refused);
    res.real("time", r.seconds, "s", 2);
    res.real("rate", r.seconds > 0 ? static_cast<double>(r.sent) / r.seconds : 0, "msg/s", 0);
    if (r.sent < o.retained) errors.add("published only " + std::to_string(r.sent) + " of " + std::to_string(o.retained));
    return;
  }

  auto m = static_cast<std::uint64_t>(o.sessions);
  cfg.count("sessions", m);
  cfg.count("queued_per_session", o.queued);
  if (o.mqtt_version == 5) cfg.count("session_expiry", o.session_expiry, "s");
  progress(o, "creating " + std::to_string(m) + " persistent sessions");
  auto begin = steady::now();
  auto sessions = start_sessions(run, m, session_client::mode::create);
  run.wait(m, run.deadline(m), "sessions created");
  double create_s = seconds_between(begin, steady::now());
  auto created = run.sum(&fill_counters::done);
  auto& res = out.section("sessions");
  res.count("created", created);
  res.real("create_time", create_s, "s", 2);
  res.real("create_rate", create_s > 0 ? static_cast<double>(created) / create_s : 0, "sessions/s", 0);
  if (created < m) {
    run.end();
    throw bench_error(std::to_string(m - created) + " of " + std::to_string(m) + " sessions could not be created" +
                      (errors.count() ? " (first: " + errors.first() + ")" : ""));
  }

  progress(o, "queueing " + std::to_string(o.queued) + " messages for each session");
  std::uint64_t total = m * o.queued;
  std::string prefix = o.client_prefix + "/q/";
  auto r = publish_all(
      run, 1, false, total, [prefix, m](std::uint64_t j) { return prefix + std::to_string(j % m); },
      [m](std::uint64_t j) { return std::pair{static_cast<std::uint32_t>(j % m), j / m}; },
      120 + static_cast<double>(total) * 1e-5);
  run.end();
  auto& q = out.section("queued");
  q.count("published", r.sent);
  q.count("acknowledged", r.acked);
  if (r.refused) q.count("refused", r.refused);
  q.real("time", r.seconds, "s", 2);
  q.real("rate", r.seconds > 0 ? static_cast<double>(r.sent) / r.seconds : 0, "msg/s", 0);
  q.text_value("note", "brokers drop beyond their per-session queue limit (flockd --max-queued-messages, "
                       "Mosquitto max_queued_messages; both 1000 by default); `drain` counts what is left");
  if (r.acked < total)
    errors.add("acknowledged only " + std::to_string(r.acked) + " of " + std::to_string(total) + " messages");
}

void run_drain(const options& o, report& out, error_log& errors) {
  fill_run run(o, errors);
  auto m = static_cast<std::uint64_t>(o.sessions);
  progress(o, "resuming " + std::to_string(m) + " sessions");
  auto begin = steady::now();
  auto sessions = start_sessions(run, m, session_client::mode::drain);
  bool finished = run.wait(m, begin + seconds(o.duration), "sessions drained");
  double drain_s = seconds_between(begin, steady::now());
  run.end();

  std::uint64_t received = 0, dups = 0, ooo = 0, foreign = 0, complete = 0, missing = 0;
  for (auto& s : sessions) {
    received += s->seen.unique();
    dups += s->duplicates;
    ooo += s->out_of_order;
    foreign += s->foreign;
    if (s->seen.unique() >= o.queued) ++complete;
    missing += o.queued > s->seen.unique() ? o.queued - s->seen.unique() : 0;
  }
  out.text_value("scenario", "drain");
  add_brokers(out, o);
  auto& cfg = out.section("config");
  cfg.text_value("mqtt_version", o.mqtt_version == 5 ? "5.0" : "3.1.1");
  cfg.count("sessions", m);
  cfg.count("expected_per_session", o.queued);
  auto& res = out.section("drain");
  res.count("sessions_resumed", run.sum(&fill_counters::present), "(session present)");
  res.count("sessions_complete", complete);
  res.count("expected", m * o.queued);
  res.count("received", received, "(unique)");
  res.count("missing", missing);
  res.count("duplicates", dups);
  res.count("out_of_order", ooo);
  if (foreign) res.count("foreign", foreign);
  res.real("time", drain_s, "s", 2);
  res.real("rate", drain_s > 0 ? static_cast<double>(received) / drain_s : 0, "msg/s", 0);
  res.flag("finished_in_time", finished);
  if (!finished) errors.add("drain did not finish within --duration " + std::to_string(o.duration) + " s");
}

}  // namespace flock::bench
