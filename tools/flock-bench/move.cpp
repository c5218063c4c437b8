// move: how long a persistent session with K queued messages takes to come
// back on another node (a cluster's session hand-over).
//
// One publisher on --host, one session client, one event loop. Each of
// --repeat attempts uses a fresh client id <prefix>-move-<run>-<n>:
//   1. the session connects to --host (a new persistent session: 3.1.1 clean
//      session 0, MQTT 5 Clean Start with --session-expiry), subscribes at
//      QoS 1 to <prefix>/move/<run>/<n>, and disconnects;
//   2. the publisher publishes K (--queued) QoS 1 messages there and waits
//      for every PUBACK: the broker on --host now holds them for the session;
//   3. the session resumes (clean session 0) on --sub-host: measured from the
//      TCP connect to the CONNACK (session present required) and to the K-th
//      distinct message; duplicates and missing messages are counted;
//   4. it leaves, and a clean-start connect on --sub-host ends the session so
//      the brokers do not accumulate them.
// Without --sub-host the session resumes where it was: the single-node
// baseline for the same steps.
#include <cstdio>

#include "tools/flock-bench/histogram.hpp"
#include "tools/flock-bench/payload.hpp"
#include "tools/flock-bench/scenarios.hpp"
#include "tools/flock-bench/sequence.hpp"

namespace flock::bench {

namespace {

std::string hex_id(std::uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}

std::uint64_t ns_between(steady::time_point a, steady::time_point b) {
  return b > a ? static_cast<std::uint64_t>(to_ns(b) - to_ns(a)) : 0;
}

struct move_run final : client_handler {
  enum class phase { creating, leaving_home, queueing, resuming, receiving, leaving, cleaning, idle };

  move_run(asio::io_context& io, const options& o, error_log& errors, tcp::endpoint home, tcp::endpoint away)
      : o(o),
        errors(errors),
        home(home),
        away(away),
        run_id(new_run_id()),
        payload(make_payload(o.payload)),
        pub(io, *this, base_client_options(o, o.client_prefix + "-move-pub-" + hex_id(run_id))),
        sess(io, *this, base_client_options(o, "")),
        housekeeping(io, std::chrono::milliseconds(10), [this](steady::time_point now) { on_tick(now); }) {}

  void start() {
    housekeeping.start();
    pub.connect(home);
  }

  bool v5() const { return o.mqtt_version == 5; }
  std::string topic() const { return o.client_prefix + "/move/" + hex_id(run_id) + "/" + std::to_string(index); }

  void next_attempt() {
    if (index >= o.repeat || stopping) return finish();
    seen = sequence_tracker{};
    duplicates_now = 0;
    acked = refused = sent = 0;
    sess.options().client_id = o.client_prefix + "-move-" + hex_id(run_id) + "-" + std::to_string(index);
    // A fresh id: a new session either way. 3.1.1 keeps it with clean
    // session 0; MQTT 5 with a session expiry.
    sess.options().clean_start = v5();
    sess.options().session_expiry = v5() ? o.session_expiry : 0;
    deadline = steady::now() + seconds(o.attempt_timeout);
    at = phase::creating;
    sess.connect(home);
  }

  void on_connected(client& c) override {
    if (&c == &pub) return next_attempt();
    switch (at) {
      case phase::creating: {
        codec::subscription_request r;
        r.filter = topic();
        r.qos = 1;
        return sess.subscribe({r});
      }
      case phase::resuming:
        connack_at = steady::now();
        connack.record(ns_between(resume_at, connack_at));
        if (!sess.session_present()) {
          ++not_present;
          return fail("resumed on " + o.subscriber_host() + ":" + std::to_string(o.subscriber_port()) +
                      " without its session (session present 0)");
        }
        at = phase::receiving;
        return check_complete();
      case phase::cleaning:
        return sess.disconnect();
      default:
        return;
    }
  }

  void on_suback(client&, const codec::suback&) override {
    if (at != phase::creating) return;
    at = phase::leaving_home;
    sess.disconnect();
  }

  void queue_messages() {
    at = phase::queueing;
    queue_begin = steady::now();
    pump();
  }

  void pump() {
    if (at != phase::queueing) return;
    while (sent < o.queued && pub.can_publish(1)) {
      write_payload_header(payload, payload_header{run_id, 0, static_cast<std::uint32_t>(index), sent,
                                                   to_ns(steady::now())});
      pub.publish(topic(), payload, 1, false, token_of(index, sent));
      ++sent;
    }
  }

  // Acks of an attempt that timed out may still come in during the next one.
  static std::uint64_t token_of(int attempt, std::uint64_t seq) {
    return (static_cast<std::uint64_t>(attempt) << 32) | (seq & 0xFFFFFFFFu);
  }

  void on_acked(client&, std::uint64_t token, steady::time_point, std::uint8_t reason) override {
    if (token >> 32 != static_cast<std::uint64_t>(index)) return;
    if (reason >= 0x80) {
      ++refused;
      errors.add(pub.id() + ": the broker refused a PUBLISH: " + reason_text(reason));
    } else {
      ++acked;
    }
    if (at != phase::queueing) return;
    if (acked + refused < o.queued) return pump();
    queueing.record(ns_between(queue_begin, steady::now()));
    if (refused) return fail("the broker refused " + std::to_string(refused) + " of the queued messages");
    at = phase::resuming;
    sess.options().clean_start = false;
    resume_at = steady::now();
    sess.connect(away);
  }

  void on_message(client& c, const codec::publish& p) override {
    if (&c != &sess) return;
    auto h = read_payload_header(p.payload);
    if (!h || h->run_id != run_id || static_cast<int>(h->topic) != index) return void(++foreign);
    if (seen.add(h->sequence) == sequence_tracker::outcome::duplicate) ++duplicates_now;
    if (at == phase::receiving) check_complete();
  }

  void check_complete() {
    if (seen.unique() < o.queued) return;
    all.record(ns_between(resume_at, steady::now()));
    ++moved;
    leave(phase::leaving);
  }

  void leave(phase next) {
    at = next;
    sess.disconnect();
  }

  void fail(const std::string& why) {
    ++failed;
    errors.add(sess.id() + ": " + why);
    if (sess.current() == client::state::connected) return leave(phase::leaving);
    at = phase::leaving;
    if (sess.current() != client::state::closed && sess.current() != client::state::idle) return sess.abort();
    clean_up();
  }

  void on_tick(steady::time_point now) {
    pub.tick(now);
    sess.tick(now);
    if (at == phase::idle || at == phase::leaving || at == phase::cleaning || finished) return;
    if (now >= deadline)
      fail("attempt not done within --attempt-timeout " + std::to_string(o.attempt_timeout) + " s (got " +
           std::to_string(seen.unique()) + " of " + std::to_string(o.queued) + ")");
  }

  // Ends the session where it now lives, then the next attempt.
  void clean_up() {
    account();
    at = phase::cleaning;
    sess.options().clean_start = true;
    sess.options().session_expiry = 0;
    sess.connect(away);
  }

  void account() {
    duplicates += duplicates_now;
    missing += o.queued > seen.unique() ? o.queued - seen.unique() : 0;
    duplicates_now = 0;
  }

  void on_closed(client& c, const std::string& error) override {
    if (finished) return;
    if (&c == &pub) {
      errors.add(pub.id() + ": " + (error.empty() ? std::string("closed") : error));
      return finish();
    }
    if (!error.empty() && at != phase::cleaning && at != phase::leaving) {
      ++failed;
      errors.add(sess.id() + ": " + error);
      at = phase::leaving;
    }
    switch (at) {
      case phase::leaving_home:
        return queue_messages();
      case phase::leaving:
        return clean_up();
      case phase::cleaning:
        if (!error.empty()) errors.add(sess.id() + ": clean-up: " + error);
        at = phase::idle;
        ++index;
        return next_attempt();
      default:
        return;
    }
  }

  void stop() {
    stopping = true;
    if (at == phase::idle) finish();  // else after the current attempt (bounded by its timeout)
  }

  void finish() {
    if (finished) return;
    finished = true;
    at = phase::idle;
    housekeeping.stop();
    pub.disconnect();
    sess.disconnect();
    done.store(true);
  }

  const options& o;
  error_log& errors;
  tcp::endpoint home, away;
  std::uint32_t run_id;
  std::string payload;
  client pub, sess;
  ticker housekeeping;
  phase at = phase::idle;
  int index = 0;
  bool stopping = false, finished = false;
  std::atomic<bool> done{false};
  steady::time_point deadline{}, queue_begin{}, resume_at{}, connack_at{};
  sequence_tracker seen;
  std::uint64_t sent = 0, acked = 0, refused = 0, duplicates_now = 0;
  std::uint64_t moved = 0, failed = 0, not_present = 0, duplicates = 0, missing = 0, foreign = 0;
  histogram connack, all, queueing;
};

}  // namespace

void run_move(const options& o, report& out, error_log& errors) {
  auto home = resolve(o.host, o.port);
  auto away = resolve(o.subscriber_host(), o.subscriber_port());
  worker_pool pool(1);
  auto run = std::make_unique<move_run>(pool.at(0).io, o, errors, home, away);
  progress(o, "move: " + std::to_string(o.repeat) + " sessions with " + std::to_string(o.queued) +
                  " queued messages, from " + o.host + ":" + std::to_string(o.port) + " to " + o.subscriber_host() +
                  ":" + std::to_string(o.subscriber_port()));
  auto begin = steady::now();
  pool.call(0, [&] { run->start(); });
  bool in_time = wait_for([&] { return run->done.load(); }, begin + seconds(o.duration));
  if (!in_time) {
    pool.call(0, [&] { run->stop(); });
    wait_for([&] { return run->done.load(); }, steady::now() + seconds(o.attempt_timeout + 3));
    errors.add("move did not finish " + std::to_string(o.repeat) + " attempts within --duration " +
               std::to_string(o.duration) + " s");
  }
  auto elapsed = seconds_between(begin, steady::now());
  auto both_closed = [&] {
    return pool.call(0, [&] {
      return run->pub.current() == client::state::closed && run->sess.current() == client::state::closed;
    });
  };
  wait_for(both_closed, steady::now() + std::chrono::seconds(3));
  pool.stop();
  // Nothing measured because set-up failed: one line, no report (as pubsub does).
  if (run->moved + run->failed == 0 && errors.count() > 0) throw bench_error("set-up failed: " + errors.first());

  out.text_value("scenario", "move");
  add_brokers(out, o);
  auto& cfg = out.section("config");
  cfg.text_value("mqtt_version", o.mqtt_version == 5 ? "5.0" : "3.1.1");
  cfg.count("repeat", static_cast<std::uint64_t>(o.repeat));
  cfg.count("queued", o.queued, "QoS 1 messages per session");
  cfg.count("payload", o.payload, "bytes");
  cfg.real("attempt_timeout", o.attempt_timeout, "s");
  auto& res = out.section("attempts");
  res.count("moved", run->moved, "(CONNACK with session present, then all K messages)");
  res.count("failed", run->failed);
  res.count("session_not_present", run->not_present);
  res.count("missing", run->missing, "(messages, over all attempts)");
  res.count("duplicates", run->duplicates);
  if (run->foreign) res.count("foreign", run->foreign);
  res.real("time", elapsed, "s", 2);
  add_latency(out, "connack", run->connack);       // resume: TCP connect -> CONNACK
  add_latency(out, "all_messages", run->all);      // resume: TCP connect -> K-th distinct message
  add_latency(out, "queueing", run->queueing);     // K publishes -> K PUBACKs on --host (set-up)
}

}  // namespace flock::bench
