// A connect that resumes a session this node does not have: the cluster
// asked every reachable peer for it; here the answer lands (docs/clustering.md).
#include "broker/core/broker_impl.hpp"

namespace flock::core {

void broker::impl::finish_claim(const std::shared_ptr<session>& s, ports::claim_result r) {
  auto parked = s->transfer_done();
  auto refuse_parked = [&] {
    if (parked)
      if (auto q = parked->requester.lock()) q->on_session_refused();
  };
  if (s->ended() || r.refused) {
    // Superseded here meanwhile, or a newer connection elsewhere won: the
    // old node keeps what it sent us.
    if (r.found) cluster->session_declined(r.from, s->client_id());
    refuse_parked();
    end_session(s);
    return;
  }
  bool present = false;
  if (r.found) {
    present = true;
    auto subscriptions = std::move(r.session.subscriptions);
    std::vector<ports::store_op> ops;
    s->absorb(std::move(r.session), ops, [this] { return new_id(); });
    journal::ticket last = persistence.append(ops);
    for (const auto& [filter, opts] : subscriptions) last = std::max(last, subscribe(s, filter, opts).ticket);
    // The old node deletes its copy once ours is on disk, not before.
    stamp claim;
    {
      std::lock_guard lock(directory_mutex);
      claim = s->claimed();
    }
    auto installed = [this, from = r.from, id = s->client_id(), claim] {
      cluster->session_installed(from, id, claim);
    };
    persistence.when_durable(last, current(), std::move(installed));
  }
  if (!parked) {
    on_session_detached(s, std::nullopt, 0);  // the connection left while we asked
    return;
  }
  hand_over(s, parked->worker, parked->requester, present);
}

}  // namespace flock::core
