// After a session moved: hand its routes over without a gap
// (docs/clustering.md, "Sessions").
//
// The new node announces the session's subscriptions, then says installed
// with its route sequence N. Until a third node holds the new node's routes
// up to N it routes the session's topics to us only; withdrawing our routes
// at once lost what it published meanwhile (acknowledged, delivered to
// nobody). So we keep routing, pass on what arrives from the peers that
// still need us (and from our own clients while we lack the new node's
// routes ourselves), and ask every peer that is up for a RouteBarrier: it
// answers once it holds the new node's routes up to N, with the last
// publish it forwarded to us before; when we have routed that one, it needs
// us no more. Once all answered (or handover_timeout passed) the core drops
// the session here and its routes go.
#include <future>
#include <limits>

#include "broker/server/log.hpp"
#include "cluster/node.hpp"

namespace flock::cluster {

namespace log = server::log;

namespace {
ports::time_point now() { return std::chrono::steady_clock::now(); }
// Barriers a node keeps waiting for others; more are not answered (the
// asking node stops waiting at its handover_timeout).
constexpr std::size_t max_barriers = 65536;
}  // namespace

// --- the old node ---

bool node::holds_routes_of(const peer& b, std::uint64_t incarnation, std::uint64_t route_seq) const {
  return b.incarnation == incarnation && b.routes.synced() && b.routes.seq() >= route_seq;
}

void node::new_move(const std::string& client_id) {
  // The session came back and leaves again: the earlier copy's hand-over
  // ends (the core ends that copy when the new move finishes, or now).
  if (auto it = handover_of_.find(client_id); it != handover_of_.end()) finish_handover(it->second);
  stop_relaying(client_id);
}

void node::stop_relaying(const std::string& client_id) {
  relaying_ended_.erase(client_id);
  std::lock_guard lock(relay_mutex_);
  relaying_.erase(client_id);
}

void node::forget_ended_relaying(ports::time_point t) {
  for (auto it = relaying_ended_.begin(); it != relaying_ended_.end();) {
    if (it->second > t) {
      ++it;
      continue;
    }
    {
      std::lock_guard lock(relay_mutex_);
      if (!handover_of_.contains(it->first)) relaying_.erase(it->first);
    }
    it = relaying_ended_.erase(it);
  }
}

void node::start_handover(peer& to, std::uint64_t to_incarnation, const wire::MoveFinished& m) {
  const std::string& client_id = m.client_id();
  // An earlier copy's hand-over still open (new_move was missed): the core
  // ended that copy when it took this one (on_move_finished); not again.
  if (auto it = handover_of_.find(client_id); it != handover_of_.end()) drop_handover(it->second);
  const std::uint64_t id = next_handover_id_++;
  handover h;
  h.client_id = client_id;
  h.to = to.id;
  h.to_incarnation = to_incarnation;
  h.route_seq = m.route_seq();
  h.self_pending = !holds_routes_of(to, to_incarnation, h.route_seq);
  // Our own publishes routed from now on send `to` a copy that arrives after
  // the session's subscriptions there (they came before this frame); one
  // routed earlier may have reached `to` first, or not at all (its route
  // there may be older than the session: another subscriber's), so what it
  // left for the session is passed on.
  if (!h.self_pending) h.self_through = host_.local_publishes();
  h.deadline = now() + opts_.handover_timeout;
  // What the new node routed here before it held the session may still be
  // on its way (forwards and this frame take different paths).
  if (m.forward_seq() != 0) h.waiting.emplace(to.id, handover::reached{to_incarnation, m.forward_seq()});
  for_each_peer([&](peer& p) {
    if (p.id == to.id || !p.up || !p.handshaken) return;
    h.waiting.emplace(p.id, std::nullopt);
    ask_barrier(p, id, h);
  });
  log::debug("cluster: ", client_id, " moved to ", to.name, "; routing for it here until ", h.waiting.size(),
             " peers hold its routes up to ", h.route_seq, h.self_pending ? " (and we)" : "");
  update_relaying(h);
  handover_of_[client_id] = id;
  handovers_.emplace(id, std::move(h));
  check_handover(id, now());
}

void node::ask_barrier(peer& p, std::uint64_t id, const handover& h) {
  const peer* to = slot(h.to);
  if (!to) return;
  wire::Frame f;
  auto* b = f.mutable_route_barrier();
  b->set_id(id);
  b->set_node(to->name);
  b->set_incarnation(h.to_incarnation);
  b->set_route_seq(h.route_seq);
  p.send(std::move(f));
}

void node::update_relaying(const handover& h) {
  constexpr auto all = std::numeric_limits<std::uint64_t>::max();
  std::map<ports::peer_id, std::uint64_t> origins = h.waited;
  // Waited for again (it reconnected or restarted): what it sends now counts.
  for (const auto& [pid, r] : h.waiting) origins[pid] = r ? r->forward_seq : all;
  // Our own publishes routed before we held `to`'s routes may still be on
  // their way to the session (queued for its worker): passed on too.
  origins.emplace(self_origin, h.self_pending ? all : h.self_through);
  std::lock_guard lock(relay_mutex_);
  relaying_[h.client_id] = std::move(origins);
}

void node::check_handover(std::uint64_t id, ports::time_point t) {
  auto it = handovers_.find(id);
  if (it == handovers_.end()) return;
  auto& h = it->second;
  const peer* to = slot(h.to);
  bool changed = false;  // relaying_ needs an update
  if (h.self_pending && to && holds_routes_of(*to, h.to_incarnation, h.route_seq)) {
    h.self_pending = false;
    h.self_through = host_.local_publishes();
    changed = true;
  }
  changed |= std::erase_if(h.waiting, [&](const auto& w) {
    if (!w.second) return false;
    peer* p = slot(w.first);
    if (p && p->routed_seq(w.second->incarnation) < w.second->forward_seq) return false;
    h.waited[w.first] = w.second->forward_seq;
    return true;
  }) > 0;
  // The new node gone, or all done.
  if (!to || (h.waiting.empty() && !h.self_pending)) return finish_handover(id);
  if (t >= h.deadline) {
    log::warn("cluster: session ", h.client_id, " moved; ", h.waiting.size(),
              " peers did not confirm the new node's routes in time; its routes here go");
    return finish_handover(id);
  }
  if (changed) update_relaying(h);
}

std::optional<std::size_t> node::handover_waits(const std::string& client_id) {
  std::promise<std::optional<std::size_t>> answer;
  asio::post(io_, [&] {
    auto it = handover_of_.find(client_id);
    if (it == handover_of_.end()) return answer.set_value(std::nullopt);
    const auto& h = handovers_.at(it->second);
    answer.set_value(h.waiting.size() + (h.self_pending ? 1 : 0));
  });
  return answer.get_future().get();
}

void node::check_handovers(ports::time_point t) {
  forget_ended_relaying(t);
  std::vector<std::uint64_t> ids;
  ids.reserve(handovers_.size());
  for (const auto& [id, h] : handovers_) ids.push_back(id);
  for (auto id : ids) check_handover(id, t);
}

std::optional<std::string> node::drop_handover(std::uint64_t id) {
  auto it = handovers_.find(id);
  if (it == handovers_.end()) return std::nullopt;
  std::string client_id = std::move(it->second.client_id);
  handovers_.erase(it);
  if (auto o = handover_of_.find(client_id); o != handover_of_.end() && o->second == id) handover_of_.erase(o);
  // The filter stays a while: the core drops the session once the
  // deliveries already routed to it have run, and those are passed on as
  // far as the filter says (the rest reached the new node directly).
  relaying_ended_[client_id] = now() + opts_.handover_timeout;
  return client_id;
}

void node::finish_handover(std::uint64_t id) {
  auto client_id = drop_handover(id);
  if (!client_id) return;
  log::debug("cluster: routes of ", *client_id, " handed over");
  host_.handover_done(*client_id);
  std::lock_guard lock(drain_mutex_);
  if (drain_waiting_.erase(*client_id)) drained_cv_.notify_all();
}

void node::forget_peer_in_handovers(ports::peer_id pid) {
  // The new node gone: nothing to pass on to. A peer gone: it drops our
  // routes (or gets our snapshot, and a barrier, when it is back).
  std::vector<std::uint64_t> touched;
  for (auto& [id, h] : handovers_) {
    if (h.to == pid) {
      h.waiting.clear();  // nothing to pass on to
      h.self_pending = false;
      touched.push_back(id);
    } else if (auto w = h.waiting.find(pid); w != h.waiting.end()) {
      // What it sent before it went may still be queued here.
      h.waited[pid] = w->second ? w->second->forward_seq : std::numeric_limits<std::uint64_t>::max();
      h.waiting.erase(w);
      touched.push_back(id);
    }
  }
  const auto t = now();
  for (auto id : touched) {
    check_handover(id, t);
    if (auto it = handovers_.find(id); it != handovers_.end()) update_relaying(it->second);
  }
}

void node::include_in_handovers(peer& p) {
  // A peer that just got our route snapshot routes the moved sessions'
  // topics here too until it has the new node's routes.
  // One that was waiting already is asked again: the question went with
  // its previous stream.
  for (auto& [id, h] : handovers_) {
    if (h.to == p.id) continue;
    auto [w, added] = h.waiting.try_emplace(p.id, std::nullopt);
    if (w->second && w->second->incarnation == p.incarnation) continue;
    const bool restarted = w->second.has_value();  // its numbers start over
    w->second.reset();
    ask_barrier(p, id, h);
    if (added || restarted) update_relaying(h);
  }
}

void node::on_route_barrier_reached(peer& p, std::uint64_t incarnation, const wire::RouteBarrierReached& r) {
  auto it = handovers_.find(r.id());
  if (it == handovers_.end()) return;
  auto w = it->second.waiting.find(p.id);
  if (w == it->second.waiting.end() || w->second) return;
  w->second = handover::reached{incarnation, r.forward_seq()};
  update_relaying(it->second);  // from now on only up to forward_seq
  check_handover(r.id(), now());
}

// --- a third node ---

void node::on_route_barrier(peer& p, const wire::RouteBarrier& b) {
  barrier w{p.id, b.id(), b.node(), b.incarnation(), b.route_seq(), now() + opts_.handover_timeout};
  if (answer_if_reached(w)) return;
  if (barriers_.size() >= max_barriers) {
    log::warn("cluster: ", p.name, " asks for more route barriers than ", max_barriers, "; not answered");
    return;
  }
  barriers_.push_back(std::move(w));
}

bool node::answer_if_reached(const barrier& b) {
  peer* asker = slot(b.from);
  if (!asker) return true;  // gone: nobody waits
  if (b.node != opts_.node_name) {
    const peer* n = find_peer(b.node);
    if (!n || !holds_routes_of(*n, b.incarnation, b.route_seq)) return false;
  }
  // The core applied those routes before we got here, and routes a publish
  // under its peer-route lock until its copies are queued: every copy sent
  // to the asker by the old routes alone is numbered up to this.
  wire::Frame f;
  auto* r = f.mutable_route_barrier_reached();
  r->set_id(b.id);
  r->set_forward_seq(asker->last_forward_seq());
  asker->send(std::move(f));
  return true;
}

void node::check_barriers(ports::time_point t) {
  // t past the deadline: the asker stopped waiting.
  std::erase_if(barriers_, [&](const barrier& b) { return answer_if_reached(b) || t >= b.deadline; });
}

}  // namespace flock::cluster
