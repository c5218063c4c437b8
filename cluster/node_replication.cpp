// Replication streams (docs/replication.md, 3.2): our store's parts to the
// peers that follow its partitions, on each peer's replication lane; parts
// from owners applied to our store and acknowledged once durable; their
// acknowledgements handed to our store, which releases what waited.
#include "broker/server/log.hpp"
#include "broker/controller/command_codec.hpp"
#include "cluster/controller_host.hpp"
#include "cluster/isr_requests.hpp"
#include "cluster/node.hpp"
#include "cluster/replication_roles.hpp"

namespace flock::cluster {

namespace log = server::log;

void node::attach_replica(ports::replica_store* replica) {
  replica_ = replica;
  if (replica_) replica_->set_stream(&replication_out_);
}

peer* node::peer_by_store(const ports::store_identity& store) {
  peer* found = nullptr;
  for_each_peer([&](peer& p) {
    if (!found && p.store == store) found = &p;
  });
  return found;
}

// The store's writer thread: onto the node's thread, which owns the peer
// table (posts keep each follower's groups in order).
void node::replication_out::send(const replication::store_id& follower, std::uint64_t group,
                                 std::vector<ports::replicated_part_ptr> parts) {
  asio::post(n.io_, [&n = n, follower, group, parts = std::move(parts)]() mutable {
    peer* p = n.peer_by_store({follower.hi, follower.lo});
    if (!p) {
      log::warn("cluster: replication: no peer has store ", follower.hex(), "; its parts of group ", group,
                " are not sent");
      return;
    }
    if (!p->replicate(group, std::move(parts)))
      log::warn("cluster: replication: ", p->name, " is too far behind (its lane overflowed); it needs a snapshot");
  });
}

void node::on_replicate(peer& p, const wire::Replicate& r, const std::shared_ptr<inbound_link>& link) {
  // Only a node whose store replicates applies what peers send.
  if (!replica_) return;
  // A part from a store the controller does not name as its partition's
  // owner for that epoch is answered as stale, unapplied.
  const auto* state = controller_ && controller_->engine() ? &controller_->engine()->state() : nullptr;
  std::vector<ports::replicated_part_ptr> parts;
  std::vector<ports::apply_result> refused;
  parts.reserve(static_cast<std::size_t>(r.parts_size()));
  for (const auto& in : r.parts()) {
    // Out of range: clamped, and the store (or may_send) refuses it.
    const auto partition = static_cast<replication::partition_id>(std::min<std::uint32_t>(in.partition(), 0xFFFF));
    if (state && state->bootstrapped() && !may_send(*state, partition, in.epoch(), {p.store.hi, p.store.lo})) {
      refused.push_back({partition, ports::apply_status::stale_epoch, {}});
      continue;
    }
    auto part = std::make_shared<ports::replicated_part>();
    part->partition = partition;
    part->epoch = in.epoch();
    part->lsn = in.lsn();
    part->writes = in.writes();
    parts.push_back(std::move(part));
  }
  const std::string from = p.name;
  replica_->apply(std::move(parts), 0, [link, group = r.group(), from, counter = replication_refused_,
                                        refused = std::move(refused)](std::vector<ports::apply_result> results) {
    results.insert(results.end(), refused.begin(), refused.end());
    wire::Batch out;
    auto* ack = out.add_frames()->mutable_replicate_ack();
    ack->set_group(group);
    for (const auto& res : results) {
      auto* x = ack->add_results();
      x->set_partition(res.partition);
      x->set_status(static_cast<std::uint32_t>(res.status));
      x->set_epoch(res.position.epoch);
      x->set_lsn(res.position.lsn);
      if (res.status == ports::apply_status::applied) continue;
      counter->fetch_add(1, std::memory_order_relaxed);
      log::warn("cluster: replication: refused part of partition ", res.partition, " from ", from, " (",
                  res.status == ports::apply_status::stale_epoch ? "stale epoch"
                  : res.status == ports::apply_status::gap       ? "not the next LSN"
                                                                 : "malformed",
                  "; this copy is at epoch ", res.position.epoch, ", LSN ", res.position.lsn, ")");
    }
    link->respond(std::move(out));
  });
}

void node::on_replicate_ack(peer& p, const wire::ReplicateAck& a) {
  p.on_replicate_ack(a.group());
  const bool applied = std::all_of(a.results().begin(), a.results().end(), [](const wire::PartResult& r) {
    return r.status() == static_cast<std::uint32_t>(ports::apply_status::applied);
  });
  if (!applied) p.replication_refused = true;
  if (!p.store.empty()) {
    auto& reported = follower_positions_[{p.store.hi, p.store.lo}];
    for (const auto& r : a.results())
      if (r.partition() < replication::default_partitions)
        reported[static_cast<replication::partition_id>(r.partition())] = {r.epoch(), r.lsn()};
  }
  // Acknowledged only when all of it is there: a follower that refused a
  // part stays waited for until the controller drops it from the ISR.
  if (applied && replica_ && !p.store.empty()) replica_->acknowledged({p.store.hi, p.store.lo}, a.group());
}

void node::request_isr_changes(ports::time_point now) {
  const auto* e = controller_ && controller_->started() ? controller_->engine() : nullptr;
  if (!replica_ || !e || !e->state().bootstrapped() || now < next_isr_requests_) return;
  next_isr_requests_ = now + std::chrono::milliseconds(300);  // one round applied before the next
  std::vector<follower_view> followers;
  for_each_peer([&](peer& p) {
    if (p.store.empty()) return;
    follower_view f{{p.store.hi, p.store.lo}, false, {}};
    f.lagging = p.replication_lagging(now, opts_.replication_lag_timeout) || std::exchange(p.replication_refused, false);
    if (auto it = follower_positions_.find(f.id); it != follower_positions_.end()) f.reported = it->second;
    followers.push_back(std::move(f));
  });
  std::map<replication::partition_id, ports::partition_position> mine;
  for (const auto& [p, pos] : replica_->positions()) mine[p] = pos;
  const auto requests = isr_requests(e->state(), {store_identity_.hi, store_identity_.lo}, followers, mine);
  if (requests.empty()) return;
  if (e->leads()) {
    for (const auto& c : requests) controller_->propose(c);
    return;
  }
  peer* leader = find_peer(controller_->leader_name());
  if (!leader || !leader->ready()) return;  // asked again next round
  std::vector<wire::Frame> frames;
  for (const auto& c : requests) {
    wire::Frame f;
    f.mutable_controller_request()->set_command(controller::encode_command(c));
    frames.push_back(std::move(f));
  }
  leader->send(std::move(frames));
}

void node::on_controller_request(peer& p, const wire::ControllerRequest& r) {
  const auto* e = controller_ && controller_->started() ? controller_->engine() : nullptr;
  if (!e || !e->leads() || p.store.empty()) return;
  auto c = controller::decode_command(r.command());
  if (!c || !may_request(e->state(), {p.store.hi, p.store.lo}, *c)) {
    log::warn("cluster: replication: ", p.name, " asked for a controller change it may not ask for; ignored");
    return;
  }
  controller_->propose(*c);
}

}  // namespace flock::cluster
