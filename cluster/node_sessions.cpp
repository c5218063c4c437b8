// Session claims and moves between nodes (docs/clustering.md, "Sessions").
#include <future>

#include "broker/server/log.hpp"
#include "cluster/node.hpp"
#include "cluster/wire_codec.hpp"

namespace flock::cluster {

namespace log = server::log;

namespace {
ports::time_point now() { return std::chrono::steady_clock::now(); }

wire::Frame claim_frame(std::uint64_t id, const std::string& client_id, core::stamp s, bool want) {
  wire::Frame f;
  auto* c = f.mutable_claim();
  c->set_id(id);
  c->set_client_id(client_id);
  c->set_stamp_time(s.time);
  c->set_stamp_node(s.node);
  c->set_want_session(want);
  return f;
}
}  // namespace

void node::send_move_finished(peer& to, const std::string& client_id, bool installed) {
  wire::Frame f;
  auto* m = f.mutable_move_finished();
  m->set_client_id(client_id);
  m->set_installed(installed);
  if (installed) {
    // The session's subscriptions are announced by now (the core subscribes
    // before it says installed, long before its store says durable): peers
    // holding our routes up to here route its topics to us, and what we
    // routed to `to` before is numbered up to here, once every publish that
    // matched here before the session was subscribed has queued its copies
    // (it may have passed the session by and still be on its way to `to`).
    host_.settle_routing();
    std::lock_guard lock(routes_mutex_);
    m->set_route_seq(route_seq_);
    m->set_forward_seq(to.last_forward_seq());
  }
  to.send(std::move(f));
}

// --- ports::cluster (workers): post to the node's thread ---

void node::claim(const std::string& client_id, core::stamp s, bool want_session,
                 std::function<void(ports::claim_result)> done) {
  pending_claim c;
  c.client_id = client_id;
  c.stamp = s;
  c.want = want_session;
  c.done = std::move(done);
  asio::post(io_, [this, c = std::move(c)]() mutable { start_claim(std::move(c)); });
}

void node::announce(const std::string& client_id, core::stamp s) {
  pending_claim c;
  c.client_id = client_id;
  c.stamp = s;
  asio::post(io_, [this, c = std::move(c)]() mutable { start_claim(std::move(c)); });
}

void node::session_installed(ports::peer_id from, const std::string& client_id, core::stamp) {
  if (peer* p = slot(from)) send_move_finished(*p, client_id, true);
}

void node::session_declined(ports::peer_id from, const std::string& client_id) {
  if (peer* p = slot(from)) send_move_finished(*p, client_id, false);
}

void node::deliver_to_moved(ports::peer_id to, const std::string& client_id, core::delivery d) {
  peer* p = slot(to);
  if (!p || !d.msg) return;
  {
    // After the move: only what came by a route `to` cannot have had yet.
    std::lock_guard lock(relay_mutex_);
    const bool passed_on = d.msg->from_peer && d.msg->peer_seq == 0;  // nobody else has it
    if (auto it = relaying_.find(client_id); it != relaying_.end() && !passed_on) {
      const ports::peer_id origin = d.msg->from_peer ? d.msg->peer_slot : self_origin;
      const std::uint64_t seq = d.msg->from_peer ? d.msg->peer_seq : d.msg->local_seq;
      auto o = it->second.find(origin);
      if (o == it->second.end() || seq > o->second) return;
    }
  }
  wire::Frame f;
  auto* sd = f.mutable_session_delivery();
  sd->set_client_id(client_id);
  encode_delivery(d, now(), p->protocol(), *sd->mutable_delivery());
  p->send(std::move(f));
}

// --- the claimant (node thread) ---

void node::start_claim(pending_claim c) {
  const std::uint64_t id = next_claim_id_++;
  stop_relaying(c.client_id);  // its session may come back here
  for_each_peer([&](peer& p) {
    if (p.up && p.ready()) c.waiting.insert(p.id);
  });
  if (c.waiting.empty()) {
    if (c.done) c.done({});
    return;
  }
  c.deadline = now() + opts_.claim_timeout;
  for (auto pid : c.waiting)
    if (peer* p = slot(pid)) p->send(claim_frame(id, c.client_id, c.stamp, c.want));
  claims_.emplace(id, std::move(c));
}

void node::on_claim_answer(peer& p, wire::ClaimAnswer& a) {
  auto it = claims_.find(a.id());
  if (it == claims_.end()) {
    // Too late: the claim finished without this peer. A session it handed
    // over stays there.
    if (a.kind() == wire::ClaimAnswer::SESSION) send_move_finished(p, a.client_id(), false);
    return;
  }
  auto& c = it->second;
  if (!c.waiting.erase(p.id)) return;
  switch (a.kind()) {
    case wire::ClaimAnswer::REFUSED: {
      core::stamp holder{a.holder_time(), a.holder_node()};
      c.refused = true;
      // An announce that lost: the session we hold here goes.
      if (!c.done) host_.end_if_older(c.client_id, holder);
      break;
    }
    case wire::ClaimAnswer::SESSION: {
      auto s = decode_session(a.session(), now());
      if (s) {
        c.sessions.emplace_back(p.id, std::move(*s));
      } else {
        log::warn("cluster: ", p.name, " sent a malformed session for ", c.client_id);
        send_move_finished(p, c.client_id, false);
      }
      break;
    }
    default: break;
  }
  if (c.waiting.empty()) finish_claim(a.id());
}

void node::finish_claim(std::uint64_t id) {
  auto it = claims_.find(id);
  if (it == claims_.end()) return;
  pending_claim c = std::move(it->second);
  claims_.erase(it);
  ports::claim_result r;
  r.refused = c.refused;
  // Several answers with a session: copies left by a netsplit. The one with
  // the newest claim moves here; the others are dropped where they are.
  std::size_t best = c.sessions.size();
  for (std::size_t i = 0; i < c.sessions.size(); ++i)
    if (best == c.sessions.size() || c.sessions[best].second.claimed < c.sessions[i].second.claimed) best = i;
  for (std::size_t i = 0; i < c.sessions.size(); ++i) {
    auto pid = c.sessions[i].first;
    if (i == best && !r.refused) continue;
    if (peer* p = slot(pid)) send_move_finished(*p, c.client_id, !r.refused);
  }
  if (best < c.sessions.size() && !r.refused) {
    r.found = true;
    r.from = c.sessions[best].first;
    r.session = std::move(c.sessions[best].second);
  }
  if (c.done) c.done(std::move(r));
}

void node::forget_peer_in_claims(ports::peer_id pid) {
  std::vector<std::uint64_t> done;
  for (auto& [id, c] : claims_)
    if (c.waiting.erase(pid) && c.waiting.empty()) done.push_back(id);
  for (auto id : done) finish_claim(id);
}

void node::expire_claims(ports::time_point t) {
  std::vector<std::uint64_t> done;
  for (auto& [id, c] : claims_)
    if (t >= c.deadline) done.push_back(id);
  for (auto id : done) {
    log::warn("cluster: claim for ", claims_[id].client_id, " timed out waiting for ", claims_[id].waiting.size(),
              " peers");
    finish_claim(id);
  }
}

// --- a peer claims a client id (node thread) ---

void node::on_claim(peer& p, const wire::Claim& c) {
  const std::uint64_t id = c.id();
  const std::string client_id = c.client_id();
  const ports::peer_id from = p.id;
  host_.on_claim(from, client_id, core::stamp{c.stamp_time(), c.stamp_node()}, c.want_session(),
                 [this, id, client_id, from](ports::claim_answer a) {
                   // On a worker: encode there, then send.
                   wire::Frame f;
                   auto* w = f.mutable_claim_answer();
                   w->set_id(id);
                   w->set_client_id(client_id);
                   switch (a.what) {
                     case ports::claim_answer::kind::none: w->set_kind(wire::ClaimAnswer::NONE); break;
                     case ports::claim_answer::kind::refused:
                       w->set_kind(wire::ClaimAnswer::REFUSED);
                       w->set_holder_time(a.holder.time);
                       w->set_holder_node(a.holder.node);
                       break;
                     case ports::claim_answer::kind::session:
                       w->set_kind(wire::ClaimAnswer::SESSION);
                       encode_session(a.session, now(), protocol_of(from), *w->mutable_session());
                       on_node_thread([this, client_id, from] {
                         new_move(client_id);
                         moves_[client_id] = {from, now() + opts_.move_timeout};
                       });
                       break;
                   }
                   if (peer* p = slot(from)) p->send(std::move(f));
                 });
}

}  // namespace flock::cluster

namespace flock::cluster {

// --- shutdown: hand every session to the other nodes ---

void node::finish_move(peer& p, std::uint64_t incarnation, const wire::MoveFinished& m) {
  const std::string& client_id = m.client_id();
  auto it = moves_.find(client_id);
  if (it == moves_.end() || it->second.first != p.id) {
    log::debug("cluster: ", p.name, " says a move of ", client_id, " we do not wait for finished");
    return;
  }
  moves_.erase(it);
  host_.on_move_finished(p.id, client_id, m.installed());
  // A drain waits for the hand-over too: our routes must not go (with us)
  // before every peer routes to the new node.
  if (m.installed()) return start_handover(p, incarnation, m);
  std::lock_guard lock(drain_mutex_);
  if (drain_waiting_.erase(client_id)) drained_cv_.notify_all();
}

void node::drain() {
  const auto timeout = opts_.drain_timeout;
  if (!started_ || stopped_ || timeout.count() == 0) return;
  const auto deadline = now() + timeout;
  std::size_t sessions = 0;
  std::promise<void> asked;
  asio::post(io_, [&] {
    std::vector<peer*> targets;
    for_each_peer([&](peer& p) {
      if (p.up && p.ready()) targets.push_back(&p);
    });
    if (!targets.empty()) {
      std::vector<std::string> ids;
      host_.local_sessions([&](const std::string& id, core::stamp) { ids.push_back(id); });
      sessions = ids.size();
      {
        std::lock_guard lock(drain_mutex_);
        drain_replies_ = ids.size();
      }
      for (auto& id : ids) {
        // The same node for a client id whoever drains: spreads sessions evenly.
        peer* target = targets[core::node_hash(id) % targets.size()];
        host_.hand_off(target->id, id, [this, id, to = target->id, timeout](std::optional<ports::moved_session> m) {
          // On the session's worker, which from now on passes on to `to`
          // what reaches the session: the session is sent from here too, so
          // those deliveries cannot overtake it (the new node would not know
          // the session yet and drop them). Registered first, on our thread,
          // so that `to`'s answer finds the move.
          on_node_thread([this, id, to, timeout, moving = m.has_value()] {
            if (moving) new_move(id);  // before the lock: it may finish a hand-over, which takes it
            std::lock_guard lock(drain_mutex_);
            --drain_replies_;
            if (moving) {
              moves_[id] = {to, now() + timeout};
              drain_waiting_[id] = to;
            }
            drained_cv_.notify_all();
          });
          if (!m) return;
          wire::Frame frame;
          auto* h = frame.mutable_handoff();
          h->set_client_id(id);
          encode_session(*m, now(), protocol_of(to), *h->mutable_session());
          if (peer* p = slot(to)) p->send(std::move(frame));
        });
      }
    }
    asked.set_value();
  });
  asked.get_future().wait();
  if (sessions == 0) return;
  std::unique_lock lock(drain_mutex_);
  drained_cv_.wait_until(lock, std::chrono::steady_clock::time_point(deadline),
                         [&] { return drain_replies_ == 0 && drain_waiting_.empty(); });
  const std::size_t left = drain_waiting_.size() + drain_replies_;
  lock.unlock();
  if (left == 0) log::info("cluster: handed ", sessions, " sessions to the other nodes");
  else log::warn("cluster: ", left, " of ", sessions, " sessions not confirmed by the other nodes; they stay here");
  // What was not confirmed stays here (on disk), found again after a restart.
  std::promise<void> reverted;
  asio::post(io_, [&] {
    std::vector<std::pair<std::string, ports::peer_id>> open;
    {
      std::lock_guard l(drain_mutex_);
      for (const auto& [id, to] : drain_waiting_)
        if (auto it = moves_.find(id); it != moves_.end()) open.emplace_back(id, it->second.first);
      drain_waiting_.clear();
    }
    for (auto& [id, p] : open) {
      moves_.erase(id);
      host_.on_move_finished(p, id, false);
    }
    reverted.set_value();
  });
  reverted.get_future().wait();
}

void node::on_handoff(peer& p, wire::Handoff& h) {
  auto s = decode_session(h.session(), now());
  const std::string client_id = h.client_id();
  if (!s) {
    log::warn("cluster: ", p.name, " handed over a malformed session for ", client_id);
    send_move_finished(p, client_id, false);
    return;
  }
  const ports::peer_id from = p.id;
  stop_relaying(client_id);  // its session comes back here
  host_.adopt_session(from, client_id, std::move(*s), [this, from, client_id](bool installed) {
    if (peer* p = slot(from)) send_move_finished(*p, client_id, installed);
  });
}

}  // namespace flock::cluster
