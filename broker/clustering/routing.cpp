// Routing in a cluster: which peers get a copy of a publish (one each, for
// their plain routes and the shared groups whose turn fell on their members),
// and this node's route changes as the peers hear them.
#include <algorithm>

#include "broker/clustering/member.hpp"
#include "broker/codec/topic.hpp"

namespace flock::clustering {

namespace {

// A peer route group matching the topic, and whether a local group of the
// same name and filter already weighed it in.
struct remote_group {
  const remote_routes::group* g = nullptr;
  bool weighed = false;
};

// Per thread, reused for every publish so planning does not allocate.
thread_local std::vector<remote_group> t_remote_groups;

core::peer_copy& copy_for(core::peer_plan& plan, ports::peer_id peer) {
  for (auto& c : plan.copies)
    if (c.peer == peer) return c;
  plan.copies.push_back({peer, {}});
  return plan.copies.back();
}

std::uint32_t remote_weight(const remote_routes::group& g) {
  std::uint32_t n = 0;
  for (const auto& m : g.members()) n += m.options.holders;
  return n;
}

// The peer whose members hold position k (0 <= k < remote_weight(g)).
ports::peer_id remote_member(const remote_routes::group& g, std::uint32_t k) {
  for (const auto& m : g.members()) {
    if (k < m.options.holders) return m.target->id;
    k -= m.options.holders;
  }
  return g.members().back().target->id;
}

bool picked(const std::vector<ports::shared_pick>& picks, const core::subscription_index::group& g) {
  return std::any_of(picks.begin(), picks.end(),
                     [&](const ports::shared_pick& p) { return p.group == g.name() && p.filter == g.filter(); });
}

}  // namespace

void member::plan_peers(const core::message& msg, const std::vector<ports::shared_pick>* forwarded,
                        std::vector<core::group_turn>& groups, core::peer_plan& plan) {
  auto& remote_groups = t_remote_groups;
  remote_groups.clear();
  // A message from a peer is delivered here only; $SYS is per node.
  if (!forwarded && !msg.topic.starts_with("$SYS/")) {
    plan.routes_held = std::shared_lock(remote.mutex());
    msg.local_seq = remote.next_publish();
    if (!remote.empty())
      remote.index().match(
        msg.topic, [&](const std::shared_ptr<remote_peer>& p, const route_weight&) { copy_for(plan, p->id); },
        [&](const remote_routes::group& g) { remote_groups.push_back({&g, false}); });
  }
  for (auto& turn : groups) {
    const auto& g = *turn.group;
    const auto local = static_cast<std::uint32_t>(g.members().size());
    if (forwarded) {
      // The publishing node chose which groups are ours to serve.
      if (picked(*forwarded, g)) turn.member = g.next_index() % local;
      continue;
    }
    // One member per message, cluster-wide: round robin over the local
    // members and the peers' (weighted by their member counts).
    std::uint32_t total = local;
    const remote_routes::group* rg = nullptr;
    for (auto& r : remote_groups) {
      if (!r.weighed && r.g->name() == g.name() && r.g->filter() == g.filter()) {
        r.weighed = true;
        rg = r.g;
        total += remote_weight(*rg);
        break;
      }
    }
    const std::uint32_t k = g.next_index() % total;
    if (k < local) {
      turn.member = k;
    } else {
      copy_for(plan, remote_member(*rg, k - local)).picks.push_back({g.name(), g.filter()});
    }
  }
  // Groups with members on peers only.
  for (auto& r : remote_groups) {
    if (r.weighed || r.g->members().empty()) continue;
    const std::uint32_t total = remote_weight(*r.g);
    if (total == 0) continue;
    copy_for(plan, remote_member(*r.g, r.g->next_index() % total)).picks.push_back({r.g->name(), r.g->filter()});
  }
}

core::remote_ack_ptr member::send_to_peers(const core::message_ptr& msg, core::peer_plan& plan) {
  core::remote_ack_ptr ack;
  if (!plan.copies.empty()) {
    if (msg->qos > 0) ack = std::make_shared<core::remote_ack>();
    for (auto& c : plan.copies) cluster_->forward(c.peer, msg, std::move(c.picks), ack);
  }
  // Only now: a peer route that changes meanwhile waits until these copies
  // are queued (core::peer_plan::routes_held).
  if (plan.routes_held) plan.routes_held.unlock();
  return ack;
}

void member::local_route_changed(std::string_view filter, std::size_t before, std::size_t after) {
  auto shared = codec::parse_shared_filter(filter);
  std::string_view inner = shared ? shared->filter : filter;
  if (inner.starts_with("$SYS")) return;  // $SYS is per node: never forwarded
  // Groups are announced on every change (their size weighs the choice of a
  // member cluster-wide), plain filters only when they come and go.
  if (shared) {
    if (after != before) cluster_->route_changed(filter, static_cast<std::uint32_t>(after));
  } else if ((before == 0) != (after == 0)) {
    cluster_->route_changed(filter, after == 0 ? 0 : 1);
  }
}

}  // namespace flock::clustering
