// converge: how long after a SUBACK on one node another node routes the
// topic there (route replication in a cluster).
//
// One subscriber on --sub-host, one publisher on --host, one event loop.
// Each of --repeat attempts takes a fresh topic <prefix>/conv/<run>/<n>: the
// subscriber sends SUBSCRIBE (QoS 0) and from that moment the publisher
// publishes a QoS 0 probe to the topic every --probe-interval-ms, until the
// first probe arrives and the SUBACK is in; then the next attempt starts. The
// payload names the attempt and the probe, so late probes of an earlier
// attempt are told apart. What an attempt proves is in probes.hpp: the route
// started working after probe k-1 was sent and before probe k arrived.
//
// Against one node (no --sub-host) it measures the same path without a
// cluster: the local subscription is in place when the SUBACK is sent, so the
// figure is about one probe interval plus one delivery.
#include <cstdio>

#include "tools/flock-bench/histogram.hpp"
#include "tools/flock-bench/payload.hpp"
#include "tools/flock-bench/probes.hpp"
#include "tools/flock-bench/scenarios.hpp"

namespace flock::bench {

namespace {

// Paced QoS 0 probes are skipped while this much is unsent (never, normally).
constexpr std::size_t probe_max_backlog = 64 * 1024;

std::string hex_id(std::uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}

std::uint64_t clamp_ns(std::int64_t v) { return v < 0 ? 0 : static_cast<std::uint64_t>(v); }

// Everything below runs on the one worker thread; the main thread only
// reads `done` until the pool has stopped.
struct converge_run final : client_handler {
  converge_run(asio::io_context& io, const options& o, error_log& errors)
      : o(o),
        errors(errors),
        run_id(new_run_id()),
        payload(make_payload(o.payload)),
        pub(io, *this, base_client_options(o, o.client_prefix + "-probe-pub")),
        sub(io, *this, base_client_options(o, o.client_prefix + "-probe-sub")),
        probing(io, seconds(o.probe_interval_ms / 1000.0), [this](steady::time_point now) { on_tick(now); }),
        housekeeping(io, std::chrono::milliseconds(100), [this](steady::time_point now) {
          pub.tick(now);
          sub.tick(now);
        }) {}

  void start(const tcp::endpoint& pub_at, const tcp::endpoint& sub_at) {
    housekeeping.start();
    probing.start();
    pub.connect(pub_at);
    sub.connect(sub_at);
  }

  void on_connected(client&) override {
    if (pub.connected() && sub.connected() && !attempt) next_attempt();
  }

  std::string topic_of(int n) const { return o.client_prefix + "/conv/" + hex_id(run_id) + "/" + std::to_string(n); }

  void next_attempt() {
    if (index >= o.repeat || stopping) return finish();
    topic = topic_of(index);
    auto now = steady::now();
    attempt.emplace(to_ns(now));
    deadline = now + seconds(o.attempt_timeout);
    codec::subscription_request r;
    r.filter = topic;
    r.qos = 0;
    sub.subscribe({r});
    send_probe(now);
  }

  void send_probe(steady::time_point now) {
    if (!pub.connected() || pub.pending_bytes() >= probe_max_backlog) return;
    auto k = attempt->sent(to_ns(now));
    write_payload_header(payload, payload_header{run_id, 0, static_cast<std::uint32_t>(index), k, to_ns(now)});
    pub.publish(topic, payload, 0, false, k);
  }

  void on_tick(steady::time_point now) {
    if (!attempt || finished) return;
    if (now >= deadline) {
      ++failed;
      errors.add("attempt " + std::to_string(index) + ": no probe arrived within --attempt-timeout " +
                 std::to_string(o.attempt_timeout) + " s (" + std::to_string(attempt->probes()) + " sent, SUBACK " +
                 (attempt->has_suback() ? "in" : "missing") + ")");
      return end_attempt();
    }
    send_probe(now);
  }

  void on_suback(client&, const codec::suback&) override {
    if (!attempt) return;
    attempt->suback(to_ns(steady::now()));
    if (attempt->complete()) measured();
  }

  void on_message(client&, const codec::publish& p) override {
    auto now = steady::now();
    auto h = read_payload_header(p.payload);
    if (!h || h->run_id != run_id) return void(++foreign);
    if (!attempt || static_cast<int>(h->topic) != index || p.topic != topic) return void(++late);
    if (attempt->arrived(h->sequence, to_ns(now)) && attempt->complete()) measured();
  }

  void measured() {
    auto b = *attempt->result();
    if (b.upper_ns < 0) ++before_suback;
    upper.record(clamp_ns(b.upper_ns));
    lower.record(clamp_ns(b.lower_ns));
    delivery.record(clamp_ns(b.delivery_ns));
    probes_to_first.record(b.probes_sent);
    ++converged;
    end_attempt();
  }

  void end_attempt() {
    probes_total += attempt->probes();
    attempt.reset();
    ++index;
    next_attempt();
  }

  void on_closed(client& c, const std::string& error) override {
    if (finished) return;
    errors.add(c.id() + ": " + (error.empty() ? std::string("closed") : error));
    finish();
  }

  void stop() {
    stopping = true;
    if (!attempt) finish();  // else the current attempt ends first (bounded by its timeout)
  }

  void finish() {
    if (finished) return;
    finished = true;
    attempt.reset();
    probing.stop();
    housekeeping.stop();
    pub.disconnect();
    sub.disconnect();
    done.store(true);
  }

  const options& o;
  error_log& errors;
  std::uint32_t run_id;
  std::string payload;
  client pub, sub;
  ticker probing, housekeeping;
  std::optional<probe_attempt> attempt;
  std::string topic;
  steady::time_point deadline{};
  int index = 0;
  bool stopping = false, finished = false;
  std::atomic<bool> done{false};
  histogram upper, lower, delivery, probes_to_first;
  std::uint64_t converged = 0, failed = 0, before_suback = 0, probes_total = 0, late = 0, foreign = 0;
};

}  // namespace

void run_converge(const options& o, report& out, error_log& errors) {
  auto pub_at = resolve(o.host, o.port);
  auto sub_at = resolve(o.subscriber_host(), o.subscriber_port());
  worker_pool pool(1);
  auto run = std::make_unique<converge_run>(pool.at(0).io, o, errors);
  progress(o, "converge: " + std::to_string(o.repeat) + " fresh topics, subscriber on " + o.subscriber_host() + ":" +
                  std::to_string(o.subscriber_port()) + ", probes from " + o.host + ":" + std::to_string(o.port));
  auto begin = steady::now();
  pool.call(0, [&] { run->start(pub_at, sub_at); });
  bool in_time = wait_for([&] { return run->done.load(); }, begin + seconds(o.duration));
  if (!in_time) {
    pool.call(0, [&] { run->stop(); });
    wait_for([&] { return run->done.load(); }, steady::now() + seconds(o.attempt_timeout + 1));
    errors.add("converge did not finish " + std::to_string(o.repeat) + " attempts within --duration " +
               std::to_string(o.duration) + " s");
  }
  auto elapsed = seconds_between(begin, steady::now());
  // Let the DISCONNECTs go out before the loop stops (bounded by the client's 2 s).
  auto both_closed = [&] {
    return pool.call(0, [&] {
      return run->pub.current() == client::state::closed && run->sub.current() == client::state::closed;
    });
  };
  wait_for(both_closed, steady::now() + std::chrono::seconds(3));
  pool.stop();
  // Nothing measured because set-up failed: one line, no report (as pubsub does).
  if (run->converged + run->failed == 0 && errors.count() > 0) throw bench_error("set-up failed: " + errors.first());

  out.text_value("scenario", "converge");
  add_brokers(out, o);
  auto& cfg = out.section("config");
  cfg.text_value("mqtt_version", o.mqtt_version == 5 ? "5.0" : "3.1.1");
  cfg.count("repeat", static_cast<std::uint64_t>(o.repeat));
  cfg.real("probe_interval", o.probe_interval_ms, "ms", 2);
  cfg.real("attempt_timeout", o.attempt_timeout, "s");
  auto& res = out.section("attempts");
  res.count("converged", run->converged);
  res.count("failed", run->failed, "(no probe within --attempt-timeout)");
  res.count("route_before_suback", run->before_suback, "(a probe arrived before the SUBACK: counted as 0)");
  res.count("probes_sent", run->probes_total);
  res.real("probes_to_first_arrival_mean", run->probes_to_first.mean(), "", 1);
  res.count("late_probes", run->late, "(earlier attempts' probes still arriving)");
  if (run->foreign) res.count("foreign", run->foreign);
  res.real("time", elapsed, "s", 2);
  // Convergence C lies in (lower, upper] of each attempt (probes.hpp).
  add_latency(out, "suback_to_first_probe", run->upper);
  add_latency(out, "lower_bound", run->lower);
  add_latency(out, "probe_delivery", run->delivery);
}

}  // namespace flock::bench
