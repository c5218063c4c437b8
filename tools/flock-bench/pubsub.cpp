// pubsub: P publishers -> S subscribers on T topics.
//
// Publisher p sends to <prefix>/t/<p % T>; subscriber s subscribes to
// <prefix>/t/<s % T> at the same QoS. Every payload carries (run id,
// publisher, topic, sequence, send time), so each subscriber knows exactly,
// per publisher, what it got: unique, duplicate, out of order, misrouted,
// stale (an earlier run's message still queued in a persistent session).
//
// Timeline: subscribers connect and subscribe (all SUBACKs in), publishers
// connect, then publishing runs for warmup + duration. Rates and latency
// count only the measurement window [warmup, warmup + duration]; loss and
// duplicates count the whole run. After the publishers stop, the run waits
// (at most --drain s) for outstanding acks and for the subscribers to get
// everything expected, then everyone disconnects.
//
// Expected for subscriber s from publisher p = every message p sent,
// minus (QoS 1/2) those the broker never acknowledged or refused.
// lost = expected - received (exact, per pair).
//
// `sub` (receive_only) has no publishers here: the subscribers receive for
// warmup + duration whatever flock-bench payloads arrive (from `pub` runs in
// other processes: steady_clock is CLOCK_MONOTONIC, so latency holds across
// processes on one machine). Nobody tells it what was sent, so instead of
// loss it reports gaps: per (run id, publisher), sequence numbers missing
// between the first and the highest it got.
#include <algorithm>
#include <cmath>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include "tools/flock-bench/histogram.hpp"
#include "tools/flock-bench/payload.hpp"
#include "tools/flock-bench/scenarios.hpp"
#include "tools/flock-bench/sequence.hpp"

namespace flock::bench {

namespace {

constexpr std::size_t qos0_batch_bytes = 64 * 1024;      // as-fast-as-possible QoS 0: refill below this
constexpr std::size_t qos0_max_backlog = 4 * 1024 * 1024;  // paced QoS 0: skip while this much is unsent

struct run_plan {
  const options* o = nullptr;
  tcp::endpoint broker;      // publishers
  tcp::endpoint sub_broker;  // subscribers (--sub-host/--sub-port; default the same)
  std::uint32_t run_id = 0;
  std::uint8_t qos = 0;
  std::vector<int> subscribers_on_topic;
  steady::time_point start{}, window_begin{}, window_end{};
  bool in_window(steady::time_point t) const { return t >= window_begin && t < window_end; }
  std::string topic_name(int t) const { return o->client_prefix + "/t/" + std::to_string(t); }
};

// Read by the main thread while the run goes on.
struct alignas(64) live_counters {
  std::atomic<std::uint64_t> pubs_ready{0}, subs_ready{0}, setup_failed{0};
  std::atomic<std::uint64_t> unique{0}, inflight{0}, rejected_copies{0};
};

inline void bump(std::atomic<std::uint64_t>& a, std::uint64_t n = 1) { a.fetch_add(n, std::memory_order_relaxed); }

struct pubsub_worker;

// What one subscriber got from one publisher (pubsub) or stream (sub).
struct stream_seen {
  sequence_tracker sequences;
  std::uint64_t duplicates = 0;
};

// Publishers (or streams) listed one by one in the report: those with
// anything lost, missing or duplicated; a clean run lists none.
constexpr std::size_t max_listed = 100;

struct publisher final : client_handler {
  publisher(pubsub_worker& w, int index);
  void start();
  void pump();  // as fast as possible
  void pace(steady::time_point now);
  void send_one();
  void on_connected(client&) override;
  void on_acked(client&, std::uint64_t token, steady::time_point sent, std::uint8_t reason) override;
  void on_drained(client&) override;
  void on_closed(client&, const std::string& error) override;

  pubsub_worker& w;
  int index;
  int topic;
  std::string topic_name;
  std::string payload;
  double rate = 0;  // msg/s for this publisher; 0 = as fast as possible
  client c;
  std::uint64_t next_seq = 0, acked = 0;
  std::vector<std::uint64_t> rejected_seqs;
  bool ready = false, failed = false;
};

struct subscriber final : client_handler {
  enum class phase { resetting, subscribing, ready, lost, ending };
  subscriber(pubsub_worker& w, int index, int publishers);
  void start();
  void mark_ready();
  void on_connected(client&) override;
  void on_suback(client&, const codec::suback&) override;
  void on_message(client&, const codec::publish& p) override;
  void on_closed(client&, const std::string& error) override;

  pubsub_worker& w;
  int index;
  int topic;
  std::string topic_name;
  client c;
  asio::steady_timer reconnect_timer;
  std::vector<stream_seen> from;  // per publisher
  // receive_only: per (run id << 32 | publisher), whoever publishes.
  std::unordered_map<std::uint64_t, stream_seen> streams;
  phase at = phase::subscribing;
  bool was_ready = false, kill_requested = false;
  std::uint64_t deliveries = 0, unique = 0, duplicates = 0, out_of_order = 0, misrouted = 0, stale = 0, foreign = 0;
  std::uint64_t disconnects = 0, reconnects = 0, sessions_lost = 0;
};

struct pubsub_worker {
  pubsub_worker(worker& wk, run_plan& p, error_log& e)
      : io(wk.io),
        plan(p),
        errors(e),
        pacer(wk.io, std::max(1, p.o->connect_concurrency), p.o->connect_rate),
        housekeeping(wk.io, std::chrono::milliseconds(100),
                     [this](steady::time_point now) {
                       for (auto& s : subs) s->c.tick(now);
                       for (auto& pb : pubs) pb->c.tick(now);
                     }),
        pacing(wk.io, std::chrono::milliseconds(1), [this](steady::time_point now) {
          if (publishing)
            for (auto& pb : pubs) pb->pace(now);
        }) {}

  void start_publishing() {
    publishing = true;
    if (plan.o->rate > 0) {
      pacing.start();
    } else {
      for (auto& pb : pubs) pb->pump();
    }
  }
  void stop_publishing() {
    publishing = false;
    pacing.stop();
  }
  void end() {
    ending = true;
    pacer.stop();
    for (auto& s : subs) {
      s->at = subscriber::phase::ending;
      s->reconnect_timer.cancel();
      s->c.disconnect();
    }
    for (auto& pb : pubs) pb->c.disconnect();
  }
  bool all_closed() const {
    auto closed = [](const client& c) { return c.current() == client::state::closed || c.current() == client::state::idle; };
    for (auto& s : subs)
      if (!closed(s->c)) return false;
    for (auto& pb : pubs)
      if (!closed(pb->c)) return false;
    return true;
  }

  asio::io_context& io;
  run_plan& plan;
  error_log& errors;
  connect_pacer pacer;
  ticker housekeeping, pacing;
  std::vector<std::unique_ptr<publisher>> pubs;
  std::vector<std::unique_ptr<subscriber>> subs;
  histogram latency, ack_latency;
  std::uint64_t published_in_window = 0, acked_in_window = 0, received_in_window = 0;
  bool publishing = false, ending = false;
  live_counters live;
};

publisher::publisher(pubsub_worker& wk, int i)
    : w(wk),
      index(i),
      topic(i % wk.plan.o->topics),
      topic_name(wk.plan.topic_name(topic)),
      payload(make_payload(wk.plan.o->payload)),
      rate(wk.plan.o->rate / wk.plan.o->publishers),
      c(wk.io, *this, base_client_options(*wk.plan.o, wk.plan.o->client_prefix + "-pub-" + std::to_string(i))) {}

void publisher::start() {
  w.pacer.add([this] { c.connect(w.plan.broker); });
}

void publisher::on_connected(client&) {
  ready = true;
  if (payload.size() + topic_name.size() + 16 > c.server_max_packet()) {
    failed = true;
    w.errors.add(c.id() + ": --payload is larger than the broker's Maximum Packet Size (" +
                 std::to_string(c.server_max_packet()) + ")");
  }
  bump(w.live.pubs_ready);
  w.pacer.done();
}

void publisher::send_one() {
  auto now = steady::now();
  write_payload_header(payload, payload_header{w.plan.run_id, static_cast<std::uint32_t>(index),
                                               static_cast<std::uint32_t>(topic), next_seq, to_ns(now)});
  c.publish(topic_name, payload, w.plan.qos, false, next_seq);
  ++next_seq;
  if (w.plan.qos > 0) bump(w.live.inflight);
  if (w.plan.in_window(now)) ++w.published_in_window;
}

void publisher::pump() {
  if (!w.publishing || rate > 0 || failed) return;
  if (w.plan.qos == 0) {
    while (c.connected() && c.pending_bytes() < qos0_batch_bytes) send_one();
  } else {
    while (c.can_publish(w.plan.qos)) send_one();
  }
}

void publisher::pace(steady::time_point now) {
  if (failed) return;
  auto due = static_cast<std::uint64_t>(seconds_between(w.plan.start, now) * rate) + 1;
  while (next_seq < due) {
    if (w.plan.qos == 0 ? (!c.connected() || c.pending_bytes() >= qos0_max_backlog) : !c.can_publish(w.plan.qos)) break;
    send_one();
  }
}

void publisher::on_acked(client&, std::uint64_t token, steady::time_point sent, std::uint8_t reason) {
  auto now = steady::now();
  w.live.inflight.fetch_sub(1, std::memory_order_relaxed);
  if (reason >= 0x80) {
    rejected_seqs.push_back(token);
    bump(w.live.rejected_copies, static_cast<std::uint64_t>(w.plan.subscribers_on_topic[topic]));
    w.errors.add(c.id() + ": the broker refused a PUBLISH: " + reason_text(reason));
  } else {
    ++acked;
  }
  if (w.plan.in_window(now)) {
    ++w.acked_in_window;
    w.ack_latency.record(static_cast<std::uint64_t>(std::max<std::int64_t>(0, to_ns(now) - to_ns(sent))));
  }
  pump();
}

void publisher::on_drained(client&) {
  if (w.plan.qos == 0) pump();
}

void publisher::on_closed(client&, const std::string& error) {
  if (!ready) {
    bump(w.live.setup_failed);
    w.pacer.done();
  }
  if (!error.empty()) {
    failed = true;
    w.errors.add(c.id() + ": " + error);
  }
}

subscriber::subscriber(pubsub_worker& wk, int i, int publishers)
    : w(wk),
      index(i),
      topic(i % wk.plan.o->topics),
      topic_name(wk.plan.topic_name(topic)),
      c(wk.io, *this, base_client_options(*wk.plan.o, wk.plan.o->client_prefix + "-sub-" + std::to_string(i))),
      reconnect_timer(wk.io),
      from(static_cast<std::size_t>(publishers)) {
  const options& o = *wk.plan.o;
  if (o.persistent && o.mqtt_version == 5) c.options().session_expiry = o.session_expiry;
}

void subscriber::start() {
  const options& o = *w.plan.o;
  // Persistent sessions start empty: 3.1.1 needs a clean-session connection
  // first (it ends the old session), MQTT 5 does it with Clean Start + expiry.
  at = (o.persistent && o.mqtt_version == 4) ? phase::resetting : phase::subscribing;
  c.options().clean_start = true;
  w.pacer.add([this] { c.connect(w.plan.sub_broker); });
}

void subscriber::mark_ready() {
  at = phase::ready;
  if (was_ready) return;
  was_ready = true;
  bump(w.live.subs_ready);
  w.pacer.done();
}

void subscriber::on_connected(client&) {
  if (at == phase::resetting) return c.disconnect();
  if (w.plan.o->persistent && c.session_present()) return mark_ready();  // resumed: still subscribed
  if (w.plan.o->persistent && was_ready) {
    ++sessions_lost;
    w.errors.add(c.id() + ": the broker did not keep the persistent session across the reconnect");
  }
  codec::subscription_request r;
  r.filter = w.plan.o->filter ? *w.plan.o->filter : topic_name;
  r.qos = w.plan.qos;
  c.subscribe({r});
  at = phase::subscribing;
}

void subscriber::on_suback(client&, const codec::suback& s) {
  if (!s.reason_codes.empty() && s.reason_codes[0] < w.plan.qos)
    w.errors.add(c.id() + ": the broker granted QoS " + std::to_string(s.reason_codes[0]) + " instead of " +
                 std::to_string(w.plan.qos));
  mark_ready();
}

void subscriber::on_message(client&, const codec::publish& p) {
  auto now = steady::now();
  ++deliveries;
  const options& o = *w.plan.o;
  auto h = read_payload_header(p.payload);
  if (!h || (!o.receive_only && h->publisher >= from.size())) {
    ++foreign;
    return;
  }
  if (o.receive_only ? (o.run_id && h->run_id != *o.run_id) : h->run_id != w.plan.run_id) {
    ++stale;
    return;
  }
  // The topic it was sent to must be ours (with --filter the broker decides).
  if (!o.filter && (p.topic != topic_name || (!o.receive_only && static_cast<int>(h->topic) != topic))) ++misrouted;
  auto& seen = o.receive_only ? streams[std::uint64_t{h->run_id} << 32 | h->publisher] : from[h->publisher];
  switch (seen.sequences.add(h->sequence)) {
    case sequence_tracker::outcome::duplicate:
      ++duplicates;
      ++seen.duplicates;
      return;
    case sequence_tracker::outcome::out_of_order:
      ++out_of_order;
      break;
    case sequence_tracker::outcome::in_order:
      break;
  }
  ++unique;
  bump(w.live.unique);
  if (w.plan.in_window(now)) {
    ++w.received_in_window;
    w.latency.record(static_cast<std::uint64_t>(std::max<std::int64_t>(0, to_ns(now) - h->sent_ns)));
  }
}

void subscriber::on_closed(client&, const std::string& error) {
  const options& o = *w.plan.o;
  if (at == phase::ending) return;
  if (at == phase::resetting && error.empty()) {  // old session gone; now the persistent one
    c.options().clean_start = false;
    at = phase::subscribing;
    return c.connect(w.plan.sub_broker);
  }
  if (!was_ready) {
    at = phase::lost;
    bump(w.live.setup_failed);
    w.errors.add(c.id() + ": " + (error.empty() ? std::string("closed during set-up") : error));
    return w.pacer.done();
  }
  ++disconnects;
  if (!error.empty() && !kill_requested) w.errors.add(c.id() + ": " + error);
  kill_requested = false;
  at = phase::lost;
  if (w.ending) return;
  reconnect_timer.expires_after(seconds(o.reconnect_delay));
  reconnect_timer.async_wait([this](const boost::system::error_code& ec) {
    if (ec || w.ending) return;
    ++reconnects;
    c.options().clean_start = !w.plan.o->persistent;  // persistent: resume the session
    at = phase::subscribing;
    c.connect(w.plan.sub_broker);
  });
}

std::uint64_t sum(std::vector<std::unique_ptr<pubsub_worker>>& ws, std::atomic<std::uint64_t> live_counters::*field) {
  std::uint64_t n = 0;
  for (auto& w : ws) n += (w->live.*field).load(std::memory_order_relaxed);
  return n;
}

std::string count_text(std::uint64_t n) { return std::to_string(n); }

}  // namespace

void add_latency(report& r, const std::string& key, const histogram& h) {
  auto& s = r.section(key);
  auto us = [](std::uint64_t ns) { return static_cast<double>(ns) / 1000.0; };
  s.count("count", h.count());
  s.real("p50", us(h.percentile(0.50)), "us");
  s.real("p90", us(h.percentile(0.90)), "us");
  s.real("p99", us(h.percentile(0.99)), "us");
  s.real("p99.9", us(h.percentile(0.999)), "us");
  s.real("max", us(h.max()), "us");
  s.real("mean", h.mean() / 1000.0, "us");
}

void add_brokers(report& r, const options& o) {
  r.text_value("broker", o.host + ":" + std::to_string(o.port));
  if (o.subscribers_elsewhere())
    r.text_value("subscriber_broker", o.subscriber_host() + ":" + std::to_string(o.subscriber_port()));
}

void run_pubsub(const options& o, report& out, error_log& errors) {
  auto fds = raise_fd_limit();
  auto needed = static_cast<std::uint64_t>(o.publishers) + static_cast<std::uint64_t>(o.subscribers) + 32;
  if (needed > fds)
    throw bench_error(std::to_string(o.publishers + o.subscribers) + " connections need " + std::to_string(needed) +
                      " file descriptors, the limit is " + std::to_string(fds) + "; run several flock-bench processes");

  run_plan plan;
  plan.o = &o;
  plan.broker = resolve(o.host, o.port);
  plan.sub_broker = resolve(o.subscriber_host(), o.subscriber_port());
  plan.run_id = o.run_id ? *o.run_id : new_run_id();
  plan.qos = static_cast<std::uint8_t>(o.qos);
  plan.subscribers_on_topic.assign(static_cast<std::size_t>(o.topics), 0);
  for (int s = 0; s < o.subscribers; ++s) ++plan.subscribers_on_topic[static_cast<std::size_t>(s % o.topics)];

  worker_pool pool(o.threads);
  std::vector<std::unique_ptr<pubsub_worker>> ws;
  for (std::size_t i = 0; i < pool.size(); ++i) ws.push_back(std::make_unique<pubsub_worker>(pool.at(i), plan, errors));
  std::vector<std::pair<std::size_t, subscriber*>> all_subs;
  std::vector<std::pair<std::size_t, publisher*>> all_pubs;

  // Everything below that touches a worker's objects runs on its thread (pool.call).
  for (std::size_t i = 0; i < ws.size(); ++i) {
    pool.call(i, [&, i] {
      auto& w = *ws[i];
      for (int s = static_cast<int>(i); s < o.subscribers; s += static_cast<int>(ws.size())) {
        w.subs.push_back(std::make_unique<subscriber>(w, s, o.publishers));
        all_subs.emplace_back(i, w.subs.back().get());
      }
      for (int p = static_cast<int>(i); p < o.publishers; p += static_cast<int>(ws.size())) {
        w.pubs.push_back(std::make_unique<publisher>(w, p));
        all_pubs.emplace_back(i, w.pubs.back().get());
      }
      w.housekeeping.start();
      for (auto& s : w.subs) s->start();
      w.pacer.begin();
    });
  }
  auto teardown = [&] {
    for (std::size_t i = 0; i < ws.size(); ++i) pool.call(i, [&, i] { ws[i]->end(); });
    wait_for(
        [&] {
          for (std::size_t i = 0; i < ws.size(); ++i)
            if (!pool.call(i, [&, i] { return ws[i]->all_closed(); })) return false;
          return true;
        },
        steady::now() + std::chrono::seconds(3));
    for (std::size_t i = 0; i < ws.size(); ++i)
      pool.call(i, [&, i] {
        ws[i]->housekeeping.stop();
        ws[i]->pacing.stop();
      });
    pool.stop();
  };
  auto setup_deadline = [&](int n) {
    double attempts = std::ceil(static_cast<double>(n) / o.connect_concurrency);
    double paced = o.connect_rate > 0 ? n / o.connect_rate : 0;
    return steady::now() + seconds(o.connect_timeout * (attempts + 1) + paced + 5);
  };

  // 1. Subscribers, all subscribed.
  progress(o, "connecting " + count_text(static_cast<std::uint64_t>(o.subscribers)) + " subscribers");
  auto subs_settled = [&] {
    return sum(ws, &live_counters::subs_ready) + sum(ws, &live_counters::setup_failed) >=
           static_cast<std::uint64_t>(o.subscribers);
  };
  if (!wait_for(subs_settled, setup_deadline(o.subscribers)) || sum(ws, &live_counters::setup_failed) > 0) {
    teardown();
    throw bench_error(std::to_string(o.subscribers - static_cast<int>(sum(ws, &live_counters::subs_ready))) + " of " +
                      std::to_string(o.subscribers) + " subscribers could not connect and subscribe" +
                      (errors.count() ? " (first: " + errors.first() + ")" : ""));
  }
  // 2. Publishers (none for `sub`).
  if (o.publishers > 0) progress(o, "connecting " + count_text(static_cast<std::uint64_t>(o.publishers)) + " publishers");
  for (std::size_t i = 0; i < ws.size(); ++i)
    pool.call(i, [&, i] {
      for (auto& p : ws[i]->pubs) p->start();
      ws[i]->pacer.begin();
    });
  auto pubs_settled = [&] {
    return sum(ws, &live_counters::pubs_ready) + sum(ws, &live_counters::setup_failed) >=
           static_cast<std::uint64_t>(o.publishers);
  };
  if (!wait_for(pubs_settled, setup_deadline(o.publishers)) || sum(ws, &live_counters::setup_failed) > 0 ||
      errors.count() > 0) {
    teardown();
    throw bench_error(std::to_string(o.publishers - static_cast<int>(sum(ws, &live_counters::pubs_ready))) + " of " +
                      std::to_string(o.publishers) + " publishers could not connect" +
                      (errors.count() ? " (first: " + errors.first() + ")" : ""));
  }

  // 3. Publish for warmup + duration.
  plan.start = steady::now() + std::chrono::milliseconds(20);
  plan.window_begin = plan.start + seconds(o.warmup);
  plan.window_end = plan.window_begin + seconds(o.duration);
  progress(o, std::string(o.receive_only ? "receiving" : "publishing") + " for " +
                  std::to_string(static_cast<int>(o.warmup)) + " s warm-up + " +
                  std::to_string(static_cast<int>(std::lround(o.duration))) + " s");
  for (std::size_t i = 0; i < ws.size(); ++i) {
    auto* w = ws[i].get();
    auto timer = std::make_shared<asio::steady_timer>(pool.at(i).io);
    pool.call(i, [&, w, timer] {
      timer->expires_at(plan.start);
      timer->async_wait([w, timer](const boost::system::error_code& ec) {
        if (!ec) w->start_publishing();
      });
    });
  }
  bool killed = false;
  auto kill_at = plan.start + seconds(o.kill_subscriber_after);
  auto next_report = plan.start + std::chrono::seconds(1);
  while (steady::now() < plan.window_end) {
    auto now = steady::now();
    if (!killed && o.kill_subscriber_after >= 0 && now >= kill_at) {
      killed = true;
      auto [wi, s] = all_subs.front();
      progress(o, "dropping " + s->c.id() + "'s connection (no DISCONNECT)");
      pool.call(wi, [s = s] {
        s->kill_requested = true;
        s->c.abort();
      });
    }
    if (now >= next_report) {
      next_report += std::chrono::seconds(1);
      progress(o, "  " + std::to_string(static_cast<int>(std::lround(seconds_between(plan.start, now)))) +
                      " s: received " + std::to_string(sum(ws, &live_counters::unique)) +
                      (o.qos > 0 && o.publishers > 0 ? ", in flight " + std::to_string(sum(ws, &live_counters::inflight))
                                                     : ""));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (std::size_t i = 0; i < ws.size(); ++i) pool.call(i, [&, i] { ws[i]->stop_publishing(); });
  auto stopped_at = steady::now();

  // 4. Drain: outstanding acks and everything the subscribers should still get.
  std::uint64_t expected_copies = 0;
  for (auto& [wi, p] : all_pubs) {
    auto sent = pool.call(wi, [p = p] { return p->next_seq; });
    expected_copies += sent * static_cast<std::uint64_t>(plan.subscribers_on_topic[static_cast<std::size_t>(p->topic)]);
  }
  std::uint64_t last_unique = ~0ull, last_inflight = ~0ull;
  auto last_change = steady::now();
  auto idle_limit = o.qos == 0 ? std::chrono::milliseconds(1000) : std::chrono::milliseconds(3000);
  bool complete = wait_for(
      [&] {
        auto unique = sum(ws, &live_counters::unique), inflight = sum(ws, &live_counters::inflight);
        auto rejected = sum(ws, &live_counters::rejected_copies);
        if (inflight == 0 && unique + rejected >= expected_copies) return true;
        if (unique != last_unique || inflight != last_inflight) {
          last_unique = unique;
          last_inflight = inflight;
          last_change = steady::now();
        }
        return steady::now() - last_change >= idle_limit;
      },
      stopped_at + seconds(o.drain));
  (void)complete;
  double drain_s = seconds_between(stopped_at, steady::now());
  progress(o, "disconnecting");
  teardown();

  // 5. Results (the worker threads are gone: everything is ours to read).
  histogram latency, ack_latency;
  std::uint64_t pub_window = 0, ack_window = 0, recv_window = 0;
  for (auto& w : ws) {
    latency.merge(w->latency);
    ack_latency.merge(w->ack_latency);
    pub_window += w->published_in_window;
    ack_window += w->acked_in_window;
    recv_window += w->received_in_window;
  }
  std::vector<publisher*> pubs(static_cast<std::size_t>(o.publishers));
  for (auto& [wi, p] : all_pubs) pubs[static_cast<std::size_t>(p->index)] = p;
  std::uint64_t published = 0, acked = 0, rejected = 0, unacked = 0;
  std::vector<std::unordered_set<std::uint64_t>> excluded(pubs.size());  // not expected: unacked or refused
  for (auto* p : pubs) {
    published += p->next_seq;
    acked += p->acked;
    rejected += p->rejected_seqs.size();
    if (o.qos > 0) {
      auto tokens = p->c.unacked_tokens();
      unacked += tokens.size();
      excluded[static_cast<std::size_t>(p->index)].insert(tokens.begin(), tokens.end());
      excluded[static_cast<std::size_t>(p->index)].insert(p->rejected_seqs.begin(), p->rejected_seqs.end());
    }
  }
  std::uint64_t expected = 0, got = 0, lost = 0, unexpected = 0, dups = 0, ooo = 0, misrouted = 0, stale = 0,
                foreign = 0, deliveries = 0, disconnects = 0, reconnects = 0, qos2_resends = 0;
  struct tally {
    std::uint64_t expected = 0, received = 0, lost = 0, duplicates = 0;  // lost: gaps for sub
  };
  std::vector<tally> per_publisher(pubs.size());
  std::map<std::uint64_t, tally> per_stream;  // receive_only, ordered for the report
  for (auto& [wi, s] : all_subs) {
    for (const auto& [key, seen] : s->streams) {  // receive_only
      auto& t = per_stream[key];
      t.received += seen.sequences.unique();
      t.lost += seen.sequences.missing_between_first_and_highest();
      t.duplicates += seen.duplicates;
      got += seen.sequences.unique();
    }
    dups += s->duplicates;
    ooo += s->out_of_order;
    misrouted += s->misrouted;
    stale += s->stale;
    foreign += s->foreign;
    deliveries += s->deliveries;
    disconnects += s->disconnects;
    reconnects += s->reconnects;
    qos2_resends += s->c.qos2_resends();
    for (auto* p : pubs) {
      if (p->topic != s->topic) continue;
      const auto& ex = excluded[static_cast<std::size_t>(p->index)];
      const auto& stream = s->from[static_cast<std::size_t>(p->index)];
      const auto& seen = stream.sequences;
      std::uint64_t seen_excluded = 0;
      for (auto seq : ex) seen_excluded += seen.contains(seq) ? 1 : 0;
      std::uint64_t exp = p->next_seq - ex.size();
      std::uint64_t have = seen.unique() - seen_excluded;
      expected += exp;
      got += have;
      unexpected += seen_excluded;
      lost += exp > have ? exp - have : 0;
      auto& t = per_publisher[static_cast<std::size_t>(p->index)];
      t.expected += exp;
      t.received += have;
      t.lost += exp > have ? exp - have : 0;
      t.duplicates += stream.duplicates;
    }
  }

  out.text_value("scenario", o.receive_only ? "sub" : "pubsub");
  add_brokers(out, o);
  auto& cfg = out.section("config");
  cfg.text_value("mqtt_version", o.mqtt_version == 5 ? "5.0" : "3.1.1");
  cfg.count("qos", static_cast<std::uint64_t>(o.qos));
  cfg.count("publishers", static_cast<std::uint64_t>(o.publishers));
  cfg.count("subscribers", static_cast<std::uint64_t>(o.subscribers));
  cfg.count("topics", static_cast<std::uint64_t>(o.topics));
  cfg.count("payload", o.payload, "bytes");
  cfg.real("rate", o.rate, o.rate > 0 ? "msg/s" : "msg/s (as fast as possible)", 0);
  if (o.qos > 0) cfg.count("inflight", static_cast<std::uint64_t>(o.inflight));
  cfg.real("duration", o.duration, "s");
  cfg.real("warmup", o.warmup, "s");
  cfg.flag("persistent", o.persistent);
  if (o.receive_only) {
    if (o.run_id) cfg.count("run_id", *o.run_id);
  } else {
    cfg.count("run_id", plan.run_id, "(pass to `sub --run-id` to count only this run)");
  }
  if (o.filter) cfg.text_value("filter", *o.filter);
  cfg.count("threads", static_cast<std::uint64_t>(o.threads));

  auto& rates = out.section("rates");
  if (!o.receive_only) {
    rates.real("published", static_cast<double>(pub_window) / o.duration, "msg/s", 0);
    if (o.qos > 0) rates.real("acknowledged", static_cast<double>(ack_window) / o.duration, "msg/s", 0);
  }
  rates.real("received", static_cast<double>(recv_window) / o.duration, "msg/s", 0);
  rates.real("received_bytes", static_cast<double>(recv_window) * static_cast<double>(o.payload) / o.duration / 1e6,
             "MB/s payload", 2);
  add_latency(out, "latency", latency);
  if (o.qos > 0 && !o.receive_only) add_latency(out, "ack_latency", ack_latency);

  auto& totals = out.section("totals");
  if (o.receive_only) {
    totals.count("received", got, "(unique, whole run)");
    std::uint64_t gaps = 0;
    for (const auto& [key, t] : per_stream) gaps += t.lost;
    totals.count("streams", per_stream.size(), "(distinct run id and publisher pairs)");
    totals.count("gaps", gaps, "(sequence numbers missing between a stream's first and highest)");
  } else {
    totals.count("published", published);
    if (o.qos > 0) {
      totals.count("acknowledged", acked);
      totals.count("refused", rejected);
      totals.count("unacknowledged", unacked);
    }
    totals.count("expected", expected,
                 o.qos > 0 ? "(acknowledged x subscribers of the topic)" : "(published x subscribers)");
    totals.count("received", got, "(unique)");
    totals.count(o.qos > 0 ? "lost" : "not_delivered", lost, o.qos > 0 ? "" : "(QoS 0 may drop)");
  }
  totals.count("duplicates", dups);
  totals.count("out_of_order", ooo);
  totals.count("misrouted", misrouted);
  if (unexpected) totals.count("received_unacknowledged", unexpected);
  if (stale) totals.count("stale", stale, "(from an earlier run)");
  if (foreign) totals.count("foreign", foreign, "(not flock-bench payloads)");
  if (qos2_resends) totals.count("qos2_resends_filtered", qos2_resends);
  if (!o.receive_only) totals.real("drain", drain_s, "s", 2);

  // Loss and duplicates per publisher (per stream for sub), listing only the
  // publishers that had any: the counts say how many, the list names them.
  auto list = [&](const std::string& name, const std::string& key, const tally& t, bool sub, std::size_t& listed) {
    if (t.lost == 0 && t.duplicates == 0) return;
    if (listed++ >= max_listed) return;
    auto& e = out.section(name).section(key);
    if (!sub) e.count("expected", t.expected);
    e.count("received", t.received);
    e.count(sub ? "gaps" : "lost", t.lost);
    e.count("duplicates", t.duplicates);
  };
  std::size_t listed = 0, with_loss = 0, with_dups = 0;
  if (o.receive_only) {
    for (const auto& [key, t] : per_stream) {
      with_loss += t.lost > 0;
      with_dups += t.duplicates > 0;
      list("per_stream", "run " + std::to_string(key >> 32) + " publisher " + std::to_string(key & 0xffffffffu), t,
           true, listed);
    }
    totals.count("streams_with_gaps", with_loss);
    totals.count("streams_with_duplicates", with_dups);
  } else {
    for (std::size_t i = 0; i < per_publisher.size(); ++i) {
      with_loss += per_publisher[i].lost > 0;
      with_dups += per_publisher[i].duplicates > 0;
      list("per_publisher", pubs[i]->c.id(), per_publisher[i], false, listed);
    }
    if (o.subscribers > 0) {
      totals.count("publishers_with_loss", with_loss);
      totals.count("publishers_with_duplicates", with_dups);
    }
  }
  if (listed > max_listed)
    totals.count("not_listed", listed - max_listed,
                 "(" + std::string(o.receive_only ? "streams" : "publishers") + " past the first " +
                     std::to_string(max_listed) + ")");

  auto& conn = out.section("connections");
  conn.count("errors", errors.count());
  conn.count("subscriber_disconnects", disconnects);
  conn.count("subscriber_reconnects", reconnects);
  if (errors.count()) conn.text_value("first_error", errors.first());

  if (o.qos > 0 && lost > 0)
    progress(o, "warning: " + std::to_string(lost) + " acknowledged messages were never received");
}

}  // namespace flock::bench
