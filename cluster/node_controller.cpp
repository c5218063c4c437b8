// The replication controller inside a node (docs/replication.md, slice 4):
// Raft frames to and from peers, the node's view of its peers handed to the
// controller host every tick, and what status() reports.
#include "cluster/controller_host.hpp"
#include "cluster/node.hpp"
#include "cluster/replication_roles.hpp"

namespace flock::cluster {

void node::attach_store(ports::controller_log* log, ports::store_identity identity) {
  controller_log_ = log;
  store_identity_ = identity;
}

wire::ControllerState node::controller_state() const {
  return static_cast<wire::ControllerState>(controller_state_.load(std::memory_order_acquire));
}

void node::start_controller() {
  if (opts_.replication_factor == 0) return;
  if (!controller_log_ || store_identity_.empty())
    throw std::runtime_error("replication_factor needs a data directory (durability is memory)");
  controller_host_options o;
  o.name = opts_.node_name;
  o.incarnation = incarnation_;
  o.store = store_identity_;
  o.replication_factor = opts_.replication_factor;
  o.expect = opts_.cluster_expect != 0 ? opts_.cluster_expect : opts_.seeds.size() + 1;
  // Raft's own failure detection: half the cluster's failure timeout,
  // randomised by libraft up to twice that, so a new leader is in place
  // before the old one is declared down.
  o.raft.election_timeout_ms = static_cast<unsigned>(std::max<std::int64_t>(opts_.failure_timeout.count() / 2, 500));
  o.raft.heartbeat_timeout_ms = 100;
  controller_state_ = wire::CONTROLLER_NO_LOG;
  controller_ = std::make_unique<controller_host>(o, *controller_log_, [this](const std::string& to, std::string bytes) {
    peer* p = find_peer(to);
    if (!p || !p->handshaken || !p->ready()) return false;
    wire::Frame f;
    f.mutable_raft()->set_message(std::move(bytes));
    p->send(std::move(f));
    return true;
  });
}

void node::learn_controller(peer& p, const wire::Member& m) {
  p.controller = m.controller();
  if (m.store_hi() != 0 || m.store_lo() != 0) p.store = {m.store_hi(), m.store_lo()};
}

// The store's roles follow the controller's applied state (only when a
// replica store is attached: the server does so once sessions live on
// their partition's owner, docs/replication.md slice 5).
void node::update_roles() {
  const auto* e = controller_->engine();
  if (!replica_ || !e || !controller_->started() || !e->state().bootstrapped()) return;
  if (e->applied_index() == roles_applied_index_) return;
  roles_applied_index_ = e->applied_index();
  replica_->set_roles(roles_of(e->state(), {store_identity_.hi, store_identity_.lo}));
}

void node::on_raft(peer& p, const wire::Raft& r) {
  if (!controller_ || p.store.empty()) return;
  controller_->receive(p.name, p.store, r.message());
}

void node::tick_controller(ports::time_point now) {
  if (!controller_) return;
  std::vector<controller_peer> peers;
  for_each_peer([&](peer& p) {
    if (p.controller == wire::CONTROLLER_NONE || p.store.empty()) return;
    const bool down_long = !p.up && p.ever_up && now - p.last_heard() > opts_.failure_timeout;
    peers.push_back({p.name, p.store, p.incarnation, p.up, down_long, p.controller == wire::CONTROLLER_HAS_LOG});
  });
  controller_->tick(peers);
  update_roles();
  request_isr_changes(now);
  controller_state_.store(controller_->has_log() ? wire::CONTROLLER_HAS_LOG : wire::CONTROLLER_NO_LOG,
                          std::memory_order_release);
  ports::cluster_status::controller_status view;
  if (const auto* e = controller_->engine(); e && controller_->started()) {
    view.running = true;
    view.leads = e->leads();
    // Leading, or following a leader heard from within the election
    // timeout (libraft forgets the leader after it): this node is on the
    // side of the controller's majority.
    view.lease = view.leads || e->leader() != 0;
    view.leader = controller_->leader_name();
    view.term = e->term();
    view.commit_index = e->commit_index();
    for (const auto& s : e->configuration()) view.voters += s.role == RAFT_VOTER;
    view.members = e->state().members().size();
    for (const auto& m : e->state().members()) view.fenced += m.fenced;
    const replication::store_id me{store_identity_.hi, store_identity_.lo};
    for (std::uint32_t p = 0; p < e->state().partition_count(); ++p) {
      const auto& s = e->state().partition(static_cast<replication::partition_id>(p));
      if (s.offline) continue;
      const auto id = static_cast<replication::partition_id>(p);
      if (s.owner == me) view.owned.add(id);
      else if (std::find(s.isr.begin(), s.isr.end(), me) != s.isr.end()) view.following.add(id);
      else if (std::find(s.replicas.begin(), s.replicas.end(), me) != s.replicas.end() ||
               std::find(s.learners.begin(), s.learners.end(), me) != s.learners.end())
        view.catching_up.add(id);
    }
  }
  std::lock_guard lock(controller_view_mutex_);
  controller_view_ = std::move(view);
}

}  // namespace flock::cluster
