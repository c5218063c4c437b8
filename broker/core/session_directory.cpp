// Session directory: one session per client id, resumed, taken over, expired,
// and, in a cluster, claimed from or handed to another node.
#include "broker/core/broker_impl.hpp"

namespace flock::core {

void broker::impl::run_on_owner(std::shared_ptr<session> s,
                                std::function<void(const std::shared_ptr<session>&)> fn) {
  ports::worker_id owner = s->owner();
  if (owner == current()) {
    fn(s);
    return;
  }
  // The session may move again before the task runs: re-check there.
  executor.post(owner, [this, s = std::move(s), fn = std::move(fn)]() mutable { run_on_owner(std::move(s), std::move(fn)); });
}

void broker::impl::open_session(const std::string& client_id, bool clean_start,
                                std::weak_ptr<session_requester> requester) {
  const ports::worker_id here = current();
  const bool elsewhere = cluster->may_hold_elsewhere();
  const stamp claim = cluster->new_claim();
  std::shared_ptr<session> existing;
  std::shared_ptr<session> fresh;
  bool ask_cluster = false;
  {
    std::lock_guard lock(directory_mutex);
    auto it = directory.find(client_id);
    if (it != directory.end()) existing = it->second;
    if (!existing || clean_start) {
      fresh = std::make_shared<session>(client_id, new_session_id(client_id), here, config, persistence);
      fresh->set_claimed(claim);
      // Resuming a session this node does not have: it may live on another
      // node. The connection waits until the cluster has answered.
      ask_cluster = !existing && !clean_start && elsewhere;
      if (ask_cluster) fresh->await_transfer();
      directory[client_id] = fresh;
    } else {
      existing->new_claim();
      existing->set_claimed(claim);
    }
  }

  if (ask_cluster) {
    fresh->park({requester, here});
    cluster->fetch_session(fresh, claim);
    return;
  }
  // Older copies elsewhere end (a new connection anywhere kicks the old one).
  cluster->claimed_here(client_id, claim);

  if (fresh) {
    if (existing) {
      // Clean start: the old session ends; its connection (if any) is kicked.
      run_on_owner(existing, [this](const std::shared_ptr<session>& old) {
        if (old->ended()) return;
        if (auto parked = old->transfer_done())
          if (auto r = parked->requester.lock()) r->on_session_refused();
        if (old->sink()) old->sink()->take_over();
        end_session(old);
      });
    }
    if (auto r = requester.lock()) r->on_session_ready(fresh, false);
    return;
  }

  const std::uint64_t claim_number = existing->claim();
  run_on_owner(existing, [this, here, claim_number, client_id, requester](const std::shared_ptr<session>& s) {
    if (s->awaiting_transfer()) {
      // Still waiting for the cluster: this connection waits instead of the
      // older one, which loses.
      if (s->claim() != claim_number) return;
      if (auto old = s->park({requester, here}))
        if (auto r = old->requester.lock()) r->on_session_refused();
      return;
    }
    if (!s->ended() && s->sink()) s->sink()->take_over();  // detaches the old connection, handles its will
    // Past its expiry but not yet swept (the tick runs once a second, and a
    // restart restores sessions that expired while the broker was down).
    if (!s->ended() && !s->sink() && s->expires_at() && *s->expires_at() <= now()) end_session(s);
    if (s->ended()) {
      // Expired on the way, or ended with the connection we just kicked
      // (session expiry 0): start over with a new session.
      executor.post(here, [this, client_id, requester] { open_session(client_id, false, requester); });
      return;
    }
    if (s->claim() != claim_number) return;  // a newer connection claimed it meanwhile and will win
    hand_over(s, here, requester);
  });
}

void broker::impl::hand_over(const std::shared_ptr<session>& s, ports::worker_id w,
                             std::weak_ptr<session_requester> requester, bool session_present) {
  // Deliveries waiting for the session in this worker's box go with it, ahead
  // of any put in the new owner's box after the change (delivery_mailbox.hpp).
  if (delivery_mailbox::move_items_of(s.get(), *mailboxes[s->owner()], *mailboxes[w], [&] { s->set_owner(w); }))
    executor.post(w, [this, w] { drain_mailbox(w); });
  executor.post(w, [this, s, requester, session_present] {
    if (s->owner() != current() || s->ended() || s->moving()) {
      // Between the hand-over and now a newer connect took the session (here
      // on another worker, or on another node, which ended it or is moving
      // it there): this connection lost. Without this it waited for a
      // session forever, or attached to one on its way out, and two clients
      // with one id stayed connected.
      if (auto r = requester.lock()) r->on_session_refused();
      return;
    }
    if (auto r = requester.lock()) {
      r->on_session_ready(s, session_present);
    } else {
      // The new connection went away before it got its session: it is
      // simply offline now, on this worker.
      on_session_detached(s, std::nullopt, 0);
    }
  });
}

void broker::impl::on_session_detached(const std::shared_ptr<session>& s, std::optional<message_ptr> will,
                                       std::uint32_t will_delay) {
  s->detach();
  const auto now = this->now();
  if (will) {
    if (will_delay == 0 || s->expiry_interval() == 0) {
      publish_will(*will);
    } else {
      s->will() = session::pending_will{*will, now + std::chrono::seconds(will_delay)};
    }
  }
  if (s->expiry_interval() == 0) {
    end_session(s);
    return;
  }
  if (s->expiry_interval() != 0xFFFFFFFF) s->set_expires_at(now + std::chrono::seconds(s->expiry_interval()));
  s->save(false);
  watch(s);
}

void broker::impl::end_session(const std::shared_ptr<session>& s) {
  if (s->ended()) return;
  s->mark_ended();
  {
    std::lock_guard lock(directory_mutex);
    auto it = directory.find(s->client_id());
    if (it != directory.end() && it->second == s) directory.erase(it);
  }
  {
    std::unique_lock lock(index_mutex);
    for (const auto& [filter, opts] : s->subscriptions()) {
      const std::size_t before = index.holders(filter);
      index.remove(filter, s.get());
      note_route(filter, before);
    }
  }
  s->subscriptions().clear();
  s->forget_stored();
  if (auto& w = s->will()) {
    // The session ends before the will delay: the will goes now (MQTT 5 3.1.3.2.2).
    message_ptr msg = w->msg;
    w.reset();
    publish_will(msg);
  }
  timed[current()].erase(s.get());
}

std::size_t broker::impl::session_count() {
  std::lock_guard lock(directory_mutex);
  return directory.size();
}

void broker::impl::watch(const std::shared_ptr<session>& s) { timed[current()].emplace(s.get(), s); }

}  // namespace flock::core
