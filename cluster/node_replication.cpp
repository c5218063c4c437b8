// Replication streams (docs/replication.md, 3.2): our store's parts to the
// peers that follow its partitions, on each peer's replication lane; parts
// from owners applied to our store and acknowledged once durable; their
// acknowledgements handed to our store, which releases what waited.
#include <algorithm>

#include "broker/server/log.hpp"
#include "broker/controller/command_codec.hpp"
#include "cluster/controller_host.hpp"
#include "cluster/isr_requests.hpp"
#include "cluster/node.hpp"
#include "cluster/replication_roles.hpp"

namespace flock::cluster {

namespace log = server::log;

namespace {
ports::time_point steady_now() { return std::chrono::steady_clock::now(); }
}  // namespace

void node::attach_replica(ports::replica_store* replica) {
  replica_ = replica;
  {
    std::lock_guard lock(replica_gate_->mutex);
    replica_gate_->n = replica_ ? this : nullptr;
  }
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
    part->base_epoch = in.base_epoch();
    part->snapshot = in.snapshot();
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
      // A gap is how a copy asks its owner for a snapshot (expected once
      // per copy that has none or lost track; the owner logs the transfer).
      if (res.status == ports::apply_status::applied || res.status == ports::apply_status::installing ||
          res.status == ports::apply_status::gap)
        continue;
      counter->fetch_add(1, std::memory_order_relaxed);
      log::warn("cluster: replication: refused part of partition ", res.partition, " from ", from, " (",
                res.status == ports::apply_status::stale_epoch ? "stale epoch" : "malformed",
                "; this copy is at epoch ", res.position.epoch, ", LSN ", res.position.lsn, ")");
    }
    link->respond(std::move(out));
  });
}

void node::on_replicate_ack(peer& p, const wire::ReplicateAck& a) {
  p.on_replicate_ack(a.group());
  std::set<replication::partition_id> gaps;
  bool refused = false;
  for (const auto& r : a.results()) {
    const auto status = r.status();
    if (status == static_cast<std::uint32_t>(ports::apply_status::applied)) continue;
    if (status == static_cast<std::uint32_t>(ports::apply_status::gap) && r.partition() < replication::default_partitions)
      gaps.insert(static_cast<replication::partition_id>(r.partition()));
    else
      refused = true;
  }
  // A follower that refused a part stays waited for until the controller
  // drops it from the ISR; one that lost track gets a snapshot.
  if (refused) p.replication_refused = true;
  if (p.store.empty()) return;
  const replication::store_id follower{p.store.hi, p.store.lo};
  auto& reported = follower_positions_[follower];
  for (const auto& r : a.results())
    if (r.partition() < replication::default_partitions)
      reported[static_cast<replication::partition_id>(r.partition())] = {r.epoch(), r.lsn()};
  for (auto partition : gaps) start_snapshot({follower, partition});
  if (!refused && replica_) follower_answered(follower, a.group(), std::move(gaps));
}

void node::follower_answered(const replication::store_id& f, std::uint64_t group,
                             std::set<replication::partition_id> gaps) {
  auto& acks = follower_acks_[f];
  if (group <= acks.last) return;  // answered already (a resend)
  acks.last = group;
  // Neighbours with the same gaps become one, under the later id: it is
  // covered by a snapshot taken after it, so never before the earlier one.
  // Bounded the same way: past the limit gaps merge too (stricter still).
  if (!acks.pending.empty() && (acks.pending.back().gaps == gaps || acks.pending.size() >= 65536)) {
    acks.pending.back().id = group;
    acks.pending.back().gaps.insert(gaps.begin(), gaps.end());
  } else {
    acks.pending.push_back({group, std::move(gaps)});
  }
  pass_acknowledgements(f);
}

void node::pass_acknowledgements(const replication::store_id& f) {
  auto& acks = follower_acks_[f];
  std::uint64_t upto = 0;
  while (!acks.pending.empty() && acks.pending.front().gaps.empty()) {
    upto = acks.pending.front().id;
    acks.pending.pop_front();
  }
  if (upto != 0 && replica_) replica_->acknowledged(f, upto);
}

void node::request_isr_changes(ports::time_point now) {
  const auto* e = controller_ && controller_->started() ? controller_->engine() : nullptr;
  if (!replica_ || !e || !e->state().bootstrapped() || now < next_isr_requests_) return;
  next_isr_requests_ = now + std::chrono::milliseconds(300);  // one round applied before the next
  std::vector<follower_view> followers;
  for_each_peer([&](peer& p) {
    if (p.store.empty()) return;
    follower_view f{{p.store.hi, p.store.lo}, false, {}, {}};
    f.lagging = p.replication_lagging(now, opts_.replication_lag_timeout) || std::exchange(p.replication_refused, false);
    if (auto it = follower_positions_.find(f.id); it != follower_positions_.end()) f.reported = it->second;
    for (const auto& [k, since] : behind_since_)
      if (k.first == f.id && now - since >= std::chrono::seconds(1)) f.behind.insert(k.second);
    for (const auto& k : transfers_to(f.id)) f.behind.insert(k.second);
    followers.push_back(std::move(f));
  });
  const auto requests =
      isr_requests(e->state(), {store_identity_.hi, store_identity_.lo}, followers, own_positions());
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

// --- snapshots (docs/replication.md, 6) ---

void node::start_snapshot(const transfer_key& k) {
  if (!replica_ || transfers_.contains(k)) return;
  // Asked again once it is back (its hello reply says where it stands).
  if (peer* p = peer_by_store({k.first.hi, k.first.lo}); !p || !p->ready()) return;
  if (transfers_to(k.first).size() >= max_transfers_per_follower) return;  // the next gap asks again
  transfers_[k].touched = steady_now();
  snapshot_counters_->sending.store(transfers_.size(), std::memory_order_relaxed);
  replica_->snapshot(k.second, k.first, [gate = replica_gate_, k](std::optional<ports::snapshot_started> s) {
    gate->post([gate, k, s] {
      if (!gate->n) return;
      auto& n = *gate->n;
      auto it = n.transfers_.find(k);
      if (it == n.transfers_.end() || it->second.id != 0) {
        if (s) n.replica_->end_snapshot(s->id);
        return;
      }
      if (!s) {
        n.transfers_.erase(it);  // not ours (any more)
        n.snapshot_counters_->sending.store(n.transfers_.size(), std::memory_order_relaxed);
        return;
      }
      it->second.id = s->id;
      it->second.group = s->group;
      // Chunks go at once: they travel behind the snapshot part, which
      // the replication lane writes before any bulk frame queued after it.
      log::debug("cluster: replication: sending partition ", k.second, " (epoch ", s->position.epoch, ", LSN ",
                 s->position.lsn, ") to store ", k.first.hex());
      n.send_snapshot_chunk(k);
    });
  });
}

// Reads the next chunk once both the snapshot and the follower are ready;
// one chunk at a time, the next when the follower answered this one.
void node::send_snapshot_chunk(const transfer_key& k) {
  auto it = transfers_.find(k);
  if (it == transfers_.end() || it->second.id == 0 || it->second.streaming) return;
  if (!take_snapshot_budget()) {
    if (std::find(snapshot_waiting_.begin(), snapshot_waiting_.end(), k) == snapshot_waiting_.end())
      snapshot_waiting_.push_back(k);
    it->second.touched = steady_now();  // waiting for the budget is not a stall
    return;
  }
  it->second.streaming = true;
  replica_->next_chunk(it->second.id, snapshot_chunk_bytes, [gate = replica_gate_, k, id = it->second.id](
                                                               std::optional<ports::snapshot_chunk> c) {
    gate->post([gate, k, id, c = std::move(c)]() mutable {
      if (!gate->n) return;
      auto& n = *gate->n;
      auto it = n.transfers_.find(k);
      if (it == n.transfers_.end() || it->second.id != id) return;
      if (!c) return n.end_transfer(k, "the store lost the snapshot");
      peer* p = n.peer_by_store({k.first.hi, k.first.lo});
      if (!p || !p->ready()) return n.end_transfer(k, "the follower is not reachable");
      it->second.touched = steady_now();
      it->second.bytes += c->writes.size();
      n.snapshot_counters_->bytes.fetch_add(c->writes.size(), std::memory_order_relaxed);
      wire::Frame f;
      auto* x = f.mutable_snapshot_chunk();
      x->set_id(id);
      x->set_partition(c->partition);
      x->set_epoch(c->position.epoch);
      x->set_lsn(c->position.lsn);
      x->set_seq(c->seq);
      x->set_last(c->last);
      x->set_writes(std::move(c->writes));
      p->send_bulk(std::move(f));
    });
  });
}

bool node::take_snapshot_budget() {
  if (opts_.replication_snapshot_bytes_per_s == 0) return true;
  if (snapshot_refill_ == ports::time_point{}) {  // the first: a full burst
    snapshot_refill_ = steady_now();
    snapshot_tokens_ = std::max<double>(static_cast<double>(opts_.replication_snapshot_bytes_per_s) / 10,
                                        snapshot_chunk_bytes);
  }
  if (snapshot_tokens_ < snapshot_chunk_bytes) return false;
  snapshot_tokens_ -= snapshot_chunk_bytes;
  return true;
}

void node::refill_snapshot_budget(ports::time_point now) {
  if (opts_.replication_snapshot_bytes_per_s == 0 || snapshot_refill_ == ports::time_point{}) return;
  const double rate = static_cast<double>(opts_.replication_snapshot_bytes_per_s);
  const double seconds = std::chrono::duration<double>(now - snapshot_refill_).count();
  snapshot_refill_ = now;
  snapshot_tokens_ = std::min(snapshot_tokens_ + rate * seconds, std::max<double>(rate / 10, snapshot_chunk_bytes));
  while (!snapshot_waiting_.empty() && snapshot_tokens_ >= snapshot_chunk_bytes) {
    const auto k = snapshot_waiting_.front();
    snapshot_waiting_.pop_front();
    send_snapshot_chunk(k);
  }
}

std::vector<node::transfer_key> node::transfers_to(const replication::store_id& f) const {
  std::vector<transfer_key> out;
  for (auto it = transfers_.lower_bound({f, 0}); it != transfers_.end() && it->first.first == f; ++it)
    out.push_back(it->first);
  return out;
}

std::map<replication::partition_id, ports::partition_position> node::own_positions() const {
  std::map<replication::partition_id, ports::partition_position> out;
  for (const auto& [p, pos] : replica_->positions()) out[p] = pos;
  return out;
}

void node::end_transfer(const transfer_key& k, const char* why) {
  auto it = transfers_.find(k);
  if (it == transfers_.end()) return;
  if (why) {
    log::warn("cluster: replication: snapshot of partition ", k.second, " to store ", k.first.hex(), " stopped (",
              why, ")");
    snapshot_counters_->failed.fetch_add(1, std::memory_order_relaxed);
  }
  if (it->second.id != 0) replica_->end_snapshot(it->second.id);
  transfers_.erase(it);
  std::erase(snapshot_waiting_, k);
  snapshot_counters_->sending.store(transfers_.size(), std::memory_order_relaxed);
}

void node::expire_transfers(ports::time_point now) {
  refill_snapshot_budget(now);
  std::vector<transfer_key> expired;
  for (const auto& [k, t] : transfers_)
    if (now - t.touched > transfer_timeout) expired.push_back(k);
  for (const auto& k : expired) end_transfer(k, "no progress for 10 s");
  // Gaps no snapshot is on its way for (the follower limit, or a transfer
  // that failed): the partition may stay idle, so ask again from here.
  std::set<transfer_key> wanted;
  for (const auto& [f, acks] : follower_acks_)
    for (const auto& g : acks.pending)
      for (auto partition : g.gaps) wanted.insert({f, partition});
  for (const auto& k : wanted) start_snapshot(k);
}

void node::follower_connected(peer& p, const wire::HelloReply& reply) {
  if (!replica_ || p.store.empty()) return;
  const replication::store_id f{p.store.hi, p.store.lo};
  auto& reported = follower_positions_[f];
  reported.clear();  // a copy it does not name, it does not have
  for (const auto& x : reply.positions())
    if (x.partition() < replication::default_partitions)
      reported[static_cast<replication::partition_id>(x.partition())] = {x.epoch(), x.lsn()};
  for (const auto& k : transfers_to(f)) {
    end_transfer(k, nullptr);
    start_snapshot(k);
  }
}

void node::forget_follower(const replication::store_id& f) {
  follower_positions_.erase(f);
  follower_acks_.erase(f);
  std::erase_if(behind_since_, [&](const auto& e) { return e.first.first == f; });
  for (const auto& k : transfers_to(f)) end_transfer(k, "the follower was forgotten");
}

void node::catch_up_followers(ports::time_point now) {
  if (!replica_) return;
  const auto roles = replica_->roles();
  if (roles.empty()) return;
  const auto mine = own_positions();
  std::map<transfer_key, ports::time_point> still;
  for (std::size_t i = 0; i < roles.size(); ++i) {
    const auto& role = roles[i];
    const auto partition = static_cast<replication::partition_id>(i);
    auto own = mine.find(partition);
    if (!role.owner || own == mine.end()) continue;
    auto check = [&](const replication::store_id& f) {
      const transfer_key k{f, partition};
      if (transfers_.contains(k)) return;
      peer* p = peer_by_store({f.hi, f.lo});
      // Something on its way: its answer will say where the copy stands.
      if (!p || !p->ready() || p->replication_backlog() > 0) return;
      ports::partition_position reported;
      if (auto it = follower_positions_.find(f); it != follower_positions_.end())
        if (auto r = it->second.find(partition); r != it->second.end()) reported = r->second;
      if (ports::same_copy(reported, own->second)) return;
      auto since = behind_since_.find(k);
      const auto first = since == behind_since_.end() ? now : since->second;
      if (now - first >= std::chrono::seconds(1)) start_snapshot(k);
      else still[k] = first;
    };
    for (const auto& f : role.in_sync) check(f);
    for (const auto& f : role.learners) check(f);
  }
  behind_since_ = std::move(still);
}

void node::on_snapshot_chunk(peer& p, const wire::SnapshotChunk& c, const std::shared_ptr<inbound_link>& link) {
  if (!replica_) return;
  ports::snapshot_chunk chunk;
  chunk.partition = static_cast<replication::partition_id>(std::min<std::uint32_t>(c.partition(), 0xFFFF));
  chunk.position = {c.epoch(), c.lsn()};
  chunk.seq = c.seq();
  chunk.last = c.last();
  chunk.writes = c.writes();
  const std::string from = p.name;
  replica_->apply_chunk(std::move(chunk), 0, [link, id = c.id(), seq = c.seq(), from,
                                               counters = snapshot_counters_](ports::apply_result r) {
    wire::Batch out;
    auto* ack = out.add_frames()->mutable_snapshot_chunk_ack();
    ack->set_id(id);
    ack->set_seq(seq);
    auto* x = ack->mutable_result();
    x->set_partition(r.partition);
    x->set_status(static_cast<std::uint32_t>(r.status));
    x->set_epoch(r.position.epoch);
    x->set_lsn(r.position.lsn);
    if (r.status == ports::apply_status::applied) {
      counters->installed.fetch_add(1, std::memory_order_relaxed);
      log::debug("cluster: replication: installed partition ", r.partition, " from ", from, " (epoch ",
                 r.position.epoch, ", LSN ", r.position.lsn, ")");
    }
    link->respond(std::move(out));
  });
}

void node::on_snapshot_chunk_ack(peer& p, const wire::SnapshotChunkAck& a) {
  if (p.store.empty() || a.result().partition() >= replication::default_partitions) return;
  const transfer_key k{{p.store.hi, p.store.lo}, static_cast<replication::partition_id>(a.result().partition())};
  auto it = transfers_.find(k);
  if (it == transfers_.end() || it->second.id != a.id() || a.seq() != it->second.next_seq) return;
  auto& t = it->second;
  t.streaming = false;
  t.touched = steady_now();
  ++t.next_seq;
  const auto status = static_cast<ports::apply_status>(a.result().status());
  if (status == ports::apply_status::installing) return send_snapshot_chunk(k);
  if (status != ports::apply_status::applied) {
    const std::string why = std::string("the follower refused chunk ") + std::to_string(a.seq()) + ": " +
                            (status == ports::apply_status::malformed ? "malformed" : "not the install it expects");
    return end_transfer(k, why.c_str());
  }
  follower_positions_[k.first][k.second] = {a.result().epoch(), a.result().lsn()};
  snapshot_counters_->sent.fetch_add(1, std::memory_order_relaxed);
  log::debug("cluster: replication: partition ", k.second, " sent to ", p.name, " (", t.next_seq, " chunk(s), ",
             t.bytes, " bytes)");
  // The groups before the snapshot that the follower could not apply for
  // this partition are in its copy now.
  auto& acks = follower_acks_[k.first];
  for (auto& g : acks.pending)
    if (g.id < t.group) g.gaps.erase(k.second);
  pass_acknowledgements(k.first);
  end_transfer(k, nullptr);
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
