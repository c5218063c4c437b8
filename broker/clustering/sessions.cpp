// Sessions in a cluster: a connect that resumes a session this node does not
// have asks every reachable peer for it, and the answer lands here
// (docs/clustering.md); a session claimed here ends its copies elsewhere.
#include "broker/clustering/member.hpp"

namespace flock::clustering {

void member::fetch_session(const std::shared_ptr<core::session>& fresh, core::stamp claim) {
  const ports::worker_id here = fresh->owner();
  cluster_->claim(fresh->client_id(), claim, true, [this, fresh, here](ports::claim_result r) {
    b_.executor.post(here, [this, fresh, r = std::move(r)]() mutable { finish_claim(fresh, std::move(r)); });
  });
}

void member::claimed_here(const std::string& client_id, core::stamp claim) {
  if (cluster_->has_peers()) cluster_->announce(client_id, claim);
}

void member::finish_claim(const std::shared_ptr<core::session>& s, ports::claim_result r) {
  auto parked = s->transfer_done();
  auto refuse_parked = [&] {
    if (parked)
      if (auto q = parked->requester.lock()) q->on_session_refused();
  };
  if (s->ended() || r.refused) {
    // Superseded here meanwhile, or a newer connection elsewhere won: the
    // old node keeps what it sent us.
    if (r.found) cluster_->session_declined(r.from, s->client_id());
    refuse_parked();
    b_.end_session(s);
    return;
  }
  bool present = false;
  if (r.found) {
    present = true;
    auto subscriptions = std::move(r.session.subscriptions);
    std::vector<ports::store_op> ops;
    s->absorb(std::move(r.session), ops, [this] { return b_.new_id(); });
    core::journal::ticket last = b_.persistence.append(ops);
    for (const auto& [filter, opts] : subscriptions) last = std::max(last, b_.subscribe(s, filter, opts).ticket);
    // The old node deletes its copy once ours is on disk, not before.
    core::stamp claim;
    {
      std::lock_guard lock(b_.directory_mutex);
      claim = s->claimed();
    }
    auto installed = [this, from = r.from, id = s->client_id(), claim] {
      cluster_->session_installed(from, id, claim);
    };
    b_.persistence.when_durable(last, b_.current(), std::move(installed));
  }
  if (!parked) {
    b_.on_session_detached(s, std::nullopt, 0);  // the connection left while we asked
    return;
  }
  b_.hand_over(s, parked->worker, parked->requester, present);
}

void member::drop_moved(const std::shared_ptr<core::session>& s) {
  s->will().reset();  // resumed on the other node: no will
  s->stop_moving();
  b_.end_session(s);
}

}  // namespace flock::clustering
