// What peers ask of this node (ports::cluster_host). Called from
// the cluster's threads, so everything that touches a session is posted to
// the session's owner worker (never run_on_owner from here: this thread is
// not a worker).
#include "broker/clustering/member.hpp"

namespace flock::clustering {

using core::message;
using core::message_ptr;
using core::session;
using core::stamp;

namespace {

class host_impl final : public ports::cluster_host {
 public:
  explicit host_impl(member& m) : m_(m), b_(m.core()) {}

  void set_peer_route(ports::peer_id peer, std::string_view filter, std::uint32_t holders) override {
    m_.remote.set(peer, filter, holders);
  }
  void clear_peer_routes(ports::peer_id peer) override { m_.remote.clear(peer); }
  std::uint64_t local_publishes() override { return m_.remote.publishes(); }
  void settle_routing() override {
    // A publish holds the peers' routes (shared) from reading them until
    // its copies are queued (core::peer_plan::routes_held).
    std::unique_lock wait_for_them(m_.remote.mutex());
  }

  void deliver_forwarded(ports::peer_id from, std::vector<ports::forwarded_publish> batch,
                         std::function<void()> durable) override {
    // One worker per origin keeps each publisher's order.
    const ports::worker_id w = from % b_.executor.worker_count();
    b_.executor.post(w, [this, batch = std::move(batch), durable = std::move(durable)]() mutable {
      core::journal::ticket last = 0;
      std::vector<ports::store_op> ops;
      for (auto& f : batch) {
        ops.clear();
        // Persistent sessions here store their QoS 1/2 copy under our own id.
        if (f.msg->qos > 0 && b_.persistence.enabled()) f.msg->id = b_.new_id();
        auto r = b_.route(f.msg, ops, &f.picks);
        last = std::max(last, r.ticket);
      }
      b_.persistence.when_durable(last, b_.current(), std::move(durable));
    });
  }

  void deliver_to_session(const std::string& client_id, ports::moved_delivery md) override {
    // Passed on by the node the session came from. It may have moved on
    // already (a resume elsewhere right after a drain): then it goes on too.
    auto s = find(client_id);
    if (!s) s = find_moving(client_id);
    if (!s) s = find_lingering(client_id);
    if (!s) return;
    post_to_owner(s, [this, md = std::move(md)](const std::shared_ptr<session>& s) mutable {
      std::vector<ports::store_op> ops;
      core::delivery d = s->adopt(md, true, ops, [this] { return b_.new_id(); });
      b_.persistence.append(ops);
      s->deliver(std::move(d), b_.now(), b_.my_stats());
    });
  }

  void merge_retained(message_ptr msg) override {
    m_.hlc.observe(msg->written);
    if (msg->expires_at && *msg->expires_at <= b_.now()) return;
    std::vector<ports::store_op> ops;
    {
      std::unique_lock lock(b_.retained_mutex);
      m_.apply_retained(msg, ops);
    }
    b_.persistence.append(ops);
  }

  void retained_snapshot(const std::function<void(const message_ptr&)>& fn) override {
    std::vector<message_ptr> all;
    {
      std::shared_lock lock(b_.retained_mutex);
      all.reserve(b_.retained.size() + m_.clears.size());
      b_.retained.for_each([&](const message_ptr& m) {
        if (!m->topic.starts_with("$SYS/")) all.push_back(m);
      });
      m_.clears.for_each([&](const std::string& topic, const stamp& s) {
        auto m = std::make_shared<message>();
        m->topic = topic;
        m->retain = true;
        m->written = s;
        all.push_back(std::move(m));
      });
    }
    for (const auto& m : all) fn(m);
  }

  std::uint64_t retained_digest() override {
    std::shared_lock lock(b_.retained_mutex);
    return m_.retained_digest;
  }

  void on_claim(ports::peer_id from, const std::string& client_id, stamp claim, bool want_session,
                std::function<void(ports::claim_answer)> reply) override {
    m_.hlc.observe(claim);
    auto s = find(client_id);
    if (!s) {
      // On its way to another node: the claimant cannot have it yet. Its
      // connection is refused and the client's next attempt finds the
      // session where it arrived.
      if (auto m = find_moving(client_id)) {
        ports::claim_answer a;
        a.what = ports::claim_answer::kind::refused;
        a.holder = claimed(m);
        return reply(std::move(a));
      }
      return reply({});
    }
    post_to_owner(s, [this, from, claim, want_session, reply = std::move(reply)](const std::shared_ptr<session>& s) {
      if (s->ended()) return reply({});
      if (stamp holder = claimed(s); claim < holder) {
        ports::claim_answer a;
        a.what = ports::claim_answer::kind::refused;
        a.holder = holder;
        return reply(std::move(a));
      }
      if (s->awaiting_transfer()) {
        // A connect here is asking the cluster too, with an older claim: it loses.
        lose(s);
        return reply({});
      }
      if (s->sink()) s->sink()->take_over();  // 0x8E to the old connection; its will as the spec says
      if (s->ended()) return reply({});        // it ended with its connection (session expiry 0)
      if (!want_session) {
        b_.end_session(s);
        return reply({});
      }
      start_move(s, from);
      ports::claim_answer a;
      a.what = ports::claim_answer::kind::session;
      a.session = s->start_moving(from, &m_.cluster());
      reply(std::move(a));
    });
  }

  void on_move_finished(ports::peer_id to, const std::string& client_id, bool installed) override {
    std::shared_ptr<session> s, replaced;
    {
      std::lock_guard lock(m_.moving_mutex);
      auto it = m_.moving.find(client_id);
      if (it == m_.moving.end()) return;
      s = it->second;
      m_.moving.erase(it);
      if (installed) {
        // Still in its moving state: what reaches it goes on to `to`. An
        // earlier copy of the id still lingering (it moved away, came back
        // and moved again) ends now.
        auto& slot = m_.lingering[client_id];
        replaced = std::exchange(slot, s);
      }
    }
    if (replaced) drop_after_routing(std::move(replaced));
    if (installed) return;
    post_to_owner(s, [this](const std::shared_ptr<session>& s) {
      if (!s->ended()) keep(s);
    });
  }

  void handover_done(const std::string& client_id) override {
    std::shared_ptr<session> s;
    {
      std::lock_guard lock(m_.moving_mutex);
      auto it = m_.lingering.find(client_id);
      if (it == m_.lingering.end()) return;
      s = it->second;
      m_.lingering.erase(it);
    }
    drop_after_routing(std::move(s));
  }

  void end_if_older(const std::string& client_id, stamp other) override {
    m_.hlc.observe(other);
    auto s = find(client_id);
    if (!s || !(claimed(s) < other)) return;
    post_to_owner(s, [this, other](const std::shared_ptr<session>& s) {
      if (s->ended() || !(claimed(s) < other)) return;
      lose(s);
    });
  }

  void local_sessions(const std::function<void(const std::string&, stamp)>& fn) override {
    std::vector<std::pair<std::string, stamp>> all;
    {
      std::lock_guard lock(b_.directory_mutex);
      all.reserve(b_.directory.size());
      for (const auto& [id, s] : b_.directory) all.emplace_back(id, s->claimed());
    }
    for (const auto& [id, st] : all) fn(id, st);
  }

  void peer_down(ports::peer_id peer) override {
    m_.remote.clear(peer);
    // Sessions on their way there stay here; the owner checks where each was going.
    std::vector<std::shared_ptr<session>> all;
    {
      std::lock_guard lock(m_.moving_mutex);
      for (const auto& [id, s] : m_.moving) all.push_back(s);
    }
    for (auto& s : all) {
      post_to_owner(s, [this, peer](const std::shared_ptr<session>& s) {
        if (s->ended() || !s->moving() || s->moving_to() != peer) return;
        {
          std::lock_guard lock(m_.moving_mutex);
          auto it = m_.moving.find(s->client_id());
          if (it == m_.moving.end() || it->second != s) return;
          m_.moving.erase(it);
        }
        keep(s);
      });
    }
  }

  core::hybrid_clock& clock() override { return m_.hlc; }

  void hand_off(ports::peer_id to, const std::string& client_id,
                std::function<void(std::optional<ports::moved_session>)> reply) override {
    auto s = find(client_id);
    if (!s) return reply(std::nullopt);
    post_to_owner(s, [this, to, reply = std::move(reply)](const std::shared_ptr<session>& s) {
      // Connections are closed by now; a session that ends with its
      // connection (expiry 0) has nothing to hand over.
      if (s->ended() || s->sink() || s->awaiting_transfer() || s->expiry_interval() == 0) return reply(std::nullopt);
      start_move(s, to);
      reply(s->start_moving(to, &m_.cluster()));
    });
  }

  void adopt_session(ports::peer_id, const std::string& client_id, ports::moved_session m,
                     std::function<void(bool)> done) override {
    m_.hlc.observe(m.claimed);
    // Just newer than the copy it came from (so that copy loses if it ever
    // comes back), older than any later connect.
    const stamp claim{m.claimed.time, m.claimed.node + 1};
    const ports::worker_id w = static_cast<ports::worker_id>(core::node_hash(client_id) % b_.executor.worker_count());
    auto s = std::make_shared<session>(client_id, b_.new_session_id(client_id), w, b_.config, b_.persistence);
    s->set_claimed(claim);
    std::shared_ptr<session> older;
    {
      std::lock_guard lock(b_.directory_mutex);
      auto it = b_.directory.find(client_id);
      if (it != b_.directory.end()) {
        if (!(it->second->claimed() < claim)) return done(false);  // a newer connect here has the id
        older = it->second;
      }
      // In the directory at once: deliveries that follow the session find it
      // (and, posted to the same worker, run after the absorb below).
      b_.directory[client_id] = s;
    }
    if (older) post_to_owner(older, [this](const std::shared_ptr<session>& o) { lose(o); });
    b_.executor.post(w, [this, s, m = std::move(m), claim, done = std::move(done)]() mutable {
      auto subscriptions = std::move(m.subscriptions);
      std::vector<ports::store_op> ops;
      s->absorb(std::move(m), ops, [this] { return b_.new_id(); });
      if (s->expiry_interval() != 0xFFFFFFFF) s->set_expires_at(b_.now() + std::chrono::seconds(s->expiry_interval()));
      core::journal::ticket last = b_.persistence.append(ops);
      for (const auto& [filter, opts] : subscriptions) last = std::max(last, b_.subscribe(s, filter, opts).ticket);
      last = std::max(last, s->save(false));
      b_.watch(s);
      // Older copies elsewhere end; a newer one elsewhere ends this one.
      m_.cluster().announce(s->client_id(), claim);
      b_.persistence.when_durable(last, b_.current(), [done = std::move(done)] { done(true); });
    });
  }

 private:
  // The session leaves the directory (a connect here now asks the cluster)
  // and waits in `moving` until the other node says it has it.
  void start_move(const std::shared_ptr<session>& s, ports::peer_id) {
    {
      std::lock_guard lock(b_.directory_mutex);
      auto it = b_.directory.find(s->client_id());
      if (it != b_.directory.end() && it->second == s) b_.directory.erase(it);
    }
    std::lock_guard lock(m_.moving_mutex);
    m_.moving[s->client_id()] = s;
  }
  // Ends a moved session once every publish routed so far has reached its
  // worker: each is routed inside one worker task, so after one more task on
  // every worker its delivery sits in the session's mailbox, ahead of the
  // drop, and is passed on rather than lost.
  void drop_after_routing(std::shared_ptr<session> s) {
    const auto workers = b_.executor.worker_count();
    auto left = std::make_shared<std::atomic<std::uint32_t>>(workers);
    for (ports::worker_id w = 0; w < workers; ++w) {
      b_.executor.post(w, [this, s, left] {
        if (left->fetch_sub(1) != 1) return;
        post_to_owner(s, [this](const std::shared_ptr<session>& moved) { m_.drop_moved(moved); });
      });
    }
  }
  std::shared_ptr<session> find_moving(const std::string& client_id) {
    std::lock_guard lock(m_.moving_mutex);
    auto it = m_.moving.find(client_id);
    return it == m_.moving.end() ? nullptr : it->second;
  }
  std::shared_ptr<session> find_lingering(const std::string& client_id) {
    std::lock_guard lock(m_.moving_mutex);
    auto it = m_.lingering.find(client_id);
    return it == m_.lingering.end() ? nullptr : it->second;
  }
  std::shared_ptr<session> find(const std::string& client_id) {
    std::lock_guard lock(b_.directory_mutex);
    auto it = b_.directory.find(client_id);
    return it == b_.directory.end() ? nullptr : it->second;
  }
  stamp claimed(const std::shared_ptr<session>& s) {
    std::lock_guard lock(b_.directory_mutex);
    return s->claimed();
  }
  void post_to_owner(std::shared_ptr<session> s, std::function<void(const std::shared_ptr<session>&)> fn) {
    auto owner = s->owner();
    b_.executor.post(owner, [this, s = std::move(s), fn = std::move(fn)]() mutable { b_.run_on_owner(std::move(s), std::move(fn)); });
  }
  // A newer connection elsewhere holds the client id: ours goes (MQTT 5
  // 0x8E to a connected client), and so does a connect still waiting here.
  void lose(const std::shared_ptr<session>& s) {
    if (auto parked = s->transfer_done())
      if (auto r = parked->requester.lock()) r->on_session_refused();
    if (s->sink()) s->sink()->take_over();
    b_.end_session(s);
  }
  // A move that did not happen: the session stays here, offline, unless a
  // connect here took the client id meanwhile.
  void keep(const std::shared_ptr<session>& s) {
    s->stop_moving();
    bool taken;
    {
      std::lock_guard lock(b_.directory_mutex);
      auto [it, added] = b_.directory.try_emplace(s->client_id(), s);
      taken = !added && it->second != s;
    }
    if (taken) return b_.end_session(s);
    if (s->expires_at() || s->will()) b_.watch(s);
  }

  member& m_;
  core::broker::impl& b_;
};

}  // namespace

std::unique_ptr<ports::cluster_host> make_host(member& m) { return std::make_unique<host_impl>(m); }

}  // namespace flock::clustering
