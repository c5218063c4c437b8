// group_commit_store's side of replication (group_commit_store.hpp,
// ports/replication.hpp): an owner's parts out, a follower's parts in.
#include <algorithm>
#include <map>

#include "storage/group_commit_store.hpp"
#include "storage/partition_writes.hpp"

namespace flock::storage {

void group_commit_store::set_stream(ports::replication_stream* stream) {
  std::lock_guard lk(mu_);
  stream_ = stream;
}

void group_commit_store::set_roles(std::vector<ports::partition_role> roles) {
  std::lock_guard pl(post_mu_);
  {
    std::lock_guard lk(mu_);
    std::set<replication::store_id> in_sync;
    for (const auto& r : roles)
      if (r.owner) in_sync.insert(r.in_sync.begin(), r.in_sync.end());
    // A follower that left every ISR this store leads is waited for no more.
    std::vector<ticket> done;
    for (auto it = waited_.begin(); it != waited_.end();) {
      if (in_sync.contains(*it)) {
        ++it;
        continue;
      }
      auto released = waits_.dropped(*it);
      done.insert(done.end(), released.begin(), released.end());
      it = waited_.erase(it);
    }
    roles_ = std::make_shared<const std::vector<ports::partition_role>>(std::move(roles));
    advance_replicated(done);
  }
  release_waiters();
}

std::vector<ports::partition_role> group_commit_store::roles() const {
  std::lock_guard lk(mu_);
  return roles_ ? *roles_ : std::vector<ports::partition_role>{};
}

void group_commit_store::acknowledged(const replication::store_id& follower, std::uint64_t group) {
  std::lock_guard pl(post_mu_);
  {
    std::lock_guard lk(mu_);
    advance_replicated(waits_.acknowledged(follower, group));
  }
  release_waiters();
}

// Writer thread. The group's writes are encoded already; each owned
// partition's share gets the next LSN and its position record.
void group_commit_store::replicate(ticket t, kv_batch& batch, const std::vector<ports::partition_role>& roles,
                                   std::vector<snapshot_request>& starts) {
  std::map<replication::partition_id, std::string> shares;
  std::vector<replication::partition_id> unowned;
  for (const auto& w : batch) {
    auto p = partition_of_write(w);
    if (!p) continue;
    if (*p < roles.size() && roles[*p].owner) encode_writes(w, shares[*p]);
    else if (unowned.empty() || unowned.back() != *p) unowned.push_back(*p);
  }
  if (shares.empty() && starts.empty() && unowned.empty()) return;
  std::map<replication::store_id, std::vector<ports::replicated_part_ptr>> out;
  std::vector<replication::store_id> wait_for;
  ports::replication_stream* stream = nullptr;
  std::vector<std::optional<ports::snapshot_started>> started;
  {
    std::lock_guard lk(mu_);
    stream = stream_;
    for (auto p : unowned)
      if (p < positions_.size() && positions_[p].lsn == 0) positions_[p] = unnamed_copy;
    for (auto& req : starts) {
      started.emplace_back();
      const auto p = req.partition;
      if (p >= roles.size() || !roles[p].owner || !stream) continue;
      auto& pos = positions_[p];
      // A copy needs a position followers can match: one never written, or
      // written before replication (epoch 0), gets the next LSN in this
      // epoch here (no data; the view below is the state it names).
      if (pos.lsn == 0 || pos.epoch == 0) {
        pos = {roles[p].epoch, pos.lsn + 1};
        batch.push_back(position_write(p, pos));
      }
      std::unique_ptr<kv_view> view;
      try {
        view = backend_->view();
      } catch (const std::exception& e) {
        log(std::string("store: cannot read partition ") + std::to_string(p) + " for a snapshot: " + e.what());
        continue;
      }
      const std::uint64_t id = next_snapshot_id_++;
      readings_[id] = snapshot_reading{p, pos, std::move(view), {}, 0};
      // The marker's epoch is the owner's (what the follower checks); its
      // base epoch and LSN name the copy.
      out[req.follower].push_back(std::make_shared<ports::replicated_part>(
          ports::replicated_part{p, roles[p].epoch, pos.lsn, pos.epoch, true, {}}));
      started.back() = ports::snapshot_started{id, pos, t};
    }
    for (auto& [p, writes] : shares) {
      const auto& role = roles[p];
      auto& pos = positions_[p];
      const replication::epoch_t base = pos.epoch;
      pos = {role.epoch, pos.lsn + 1};
      batch.push_back(position_write(p, pos));
      auto part = std::make_shared<ports::replicated_part>(
          ports::replicated_part{p, pos.epoch, pos.lsn, base, false, std::move(writes)});
      for (const auto& f : role.in_sync) out[f].push_back(part);
      for (const auto& f : role.learners) out[f].push_back(part);
      wait_for.insert(wait_for.end(), role.in_sync.begin(), role.in_sync.end());
    }
    std::sort(wait_for.begin(), wait_for.end());
    wait_for.erase(std::unique(wait_for.begin(), wait_for.end()), wait_for.end());
    if (!wait_for.empty()) {
      waited_.insert(wait_for.begin(), wait_for.end());
      if (!waits_.add(t, std::move(wait_for))) awaiting_.insert(t);
    }
  }
  // Sent while the group is written here: the network and the disk overlap.
  if (stream)
    for (auto& [follower, parts] : out) stream->send(follower, t, std::move(parts));
  // After the markers, so a reader of the stream sees the marker first.
  for (std::size_t i = 0; i < starts.size(); ++i) starts[i].ready(started[i]);
  starts.clear();
}

void group_commit_store::snapshot(replication::partition_id p, const replication::store_id& follower,
                                  std::function<void(std::optional<ports::snapshot_started>)> ready) {
  {
    std::lock_guard lk(mu_);
    snapshot_requests_.push_back({p, follower, std::move(ready)});
  }
  work_cv_.notify_one();
}

void group_commit_store::next_chunk(std::uint64_t id, std::size_t max_bytes,
                                    std::function<void(std::optional<ports::snapshot_chunk>)> got) {
  {
    std::lock_guard lk(mu_);
    chunk_requests_.push_back({id, std::max<std::size_t>(max_bytes, 1), std::move(got)});
  }
  work_cv_.notify_one();
}

void group_commit_store::end_snapshot(std::uint64_t id) {
  {
    std::lock_guard lk(mu_);
    chunk_requests_.push_back({id, 0, {}});
  }
  work_cv_.notify_one();
}

// Writer thread, between two groups: each read is a chunk's worth, so a
// snapshot never holds up a group for long.
void group_commit_store::serve_snapshot_reads() {
  std::vector<chunk_request> requests;
  {
    std::lock_guard lk(mu_);
    std::swap(requests, chunk_requests_);
  }
  for (auto& req : requests) {
    auto it = readings_.find(req.id);
    if (req.max_bytes == 0) {
      if (it != readings_.end()) readings_.erase(it);
      continue;
    }
    if (it == readings_.end()) {
      req.got(std::nullopt);
      continue;
    }
    auto& r = it->second;
    ports::snapshot_chunk chunk{r.partition, r.position, r.next_seq++, false, {}};
    try {
      chunk.writes = read_partition_chunk(*r.view, r.partition, r.cursor, req.max_bytes);
    } catch (const std::exception& e) {
      log(std::string("store: reading partition ") + std::to_string(r.partition) + " for a snapshot failed: " + e.what());
      readings_.erase(it);
      req.got(std::nullopt);
      continue;
    }
    chunk.last = r.cursor.done;
    req.got(std::move(chunk));
  }
}

// A part continues a copy only from exactly its base: the same history.
// A missing LSN, another base epoch, or a copy whose content no position
// names (written before replication, or a snapshot given up half way) does
// not; an empty copy (0, 0) follows an owner's first part, whose base is
// its own empty copy.
bool group_commit_store::follows(const ports::replicated_part& part, const ports::partition_position& pos) {
  return part.lsn == pos.lsn + 1 && part.base_epoch == pos.epoch && (pos.epoch != 0 || pos.lsn == 0);
}

bool group_commit_store::append_part(const ports::replicated_part& part, ports::partition_position& pos) {
  auto writes = decode_writes(part.writes, part.partition);
  if (!writes) return false;
  open_applied_.insert(open_applied_.end(), std::make_move_iterator(writes->begin()),
                       std::make_move_iterator(writes->end()));
  pos = {part.epoch, part.lsn};
  open_applied_.push_back(position_write(part.partition, pos));
  return true;
}

ports::apply_result group_commit_store::apply_part(const ports::replicated_part& part, ports::time_point now,
                                                   bool& added, released& out) {
  ports::apply_result r{part.partition, ports::apply_status::malformed, {}};
  if (part.partition >= positions_.size()) return r;
  auto& pos = positions_[part.partition];
  replication::epoch_t known = pos.epoch;
  bool owner = false;
  if (roles_ && part.partition < roles_->size()) {
    known = std::max(known, (*roles_)[part.partition].epoch);
    owner = (*roles_)[part.partition].owner;
  }
  auto inst = installs_.find(part.partition);
  if (inst != installs_.end()) {
    known = std::max(known, inst->second.epoch);
    // Its owner stopped sending it: the next part asks for another.
    if (now - inst->second.touched > install_timeout) {
      finish_install(inst, false, out);
      inst = installs_.end();
    }
  }
  r.position = pos;
  // Another writer in an epoch this store owns, or an older epoch.
  if (part.epoch < known || (owner && part.epoch == known)) {
    r.status = ports::apply_status::stale_epoch;
  } else if (part.snapshot) {
    // A new copy (a resent marker too: its chunks start again). Whatever
    // this copy held goes in the open group; it has no position until the
    // last chunk is in, so a crash meanwhile leaves none.
    if (inst != installs_.end()) finish_install(inst, false, out);
    drop_partition(part.partition, open_applied_);
    pos = {};
    installs_[part.partition] = install{{part.base_epoch, part.lsn}, part.epoch, 0, {}, 0, now, {}};
    r.status = ports::apply_status::installing;
    r.position = {};
    added = true;
  } else if (inst != installs_.end()) {
    auto& in = inst->second;
    r.status = ports::apply_status::installing;
    if (part.lsn > in.target.lsn) {
      in.held_bytes += part.writes.size();
      if (in.held_bytes > max_held_bytes) {
        finish_install(inst, false, out);  // too far behind to hold: another snapshot
        r.status = ports::apply_status::gap;
      } else {
        in.held.push_back(std::make_shared<ports::replicated_part>(part));
      }
    }
  } else if (pos.lsn != 0 && part.epoch == pos.epoch && part.lsn <= pos.lsn) {
    r.status = ports::apply_status::applied;  // a resend: durable once what is open now is
  } else if (!follows(part, pos)) {
    r.status = ports::apply_status::gap;  // a snapshot
  } else if (append_part(part, pos)) {
    r.status = ports::apply_status::applied;
    r.position = pos;
    added = true;
  }
  return r;
}

void group_commit_store::finish_install(std::map<replication::partition_id, install>::iterator it, bool installed,
                                        released& out) {
  // Given up: the copy holds part of a snapshot, which no position names.
  if (!installed) positions_[it->first] = unnamed_copy;
  const auto pos = positions_[it->first];
  auto deferred = std::move(it->second.deferred);
  installs_.erase(it);
  for (auto& d : deferred) {
    auto& r = d.apply->results[d.index];
    r.status = installed && d.lsn <= pos.lsn ? ports::apply_status::applied : ports::apply_status::gap;
    r.position = pos;
    if (--d.apply->waiting > 0) continue;
    out.emplace_back(d.apply->w, [a = d.apply] { a->done(std::move(a->results)); });
  }
}

void group_commit_store::release_applied(std::unique_lock<std::mutex>& lk, bool wake, released out) {
  // Everything accepted so far is in the open group or an earlier one.
  const ticket t = last_group();
  const bool added = !open_empty();
  if (t > durable_) {
    for (auto& [w, fn] : out) apply_waiters_.push_back({t, w, std::move(fn)});
    out.clear();
  }
  lk.unlock();
  if (wake && added) work_cv_.notify_one();
  if (out.empty()) return;
  std::lock_guard pl(post_mu_);  // after the writer's posts for earlier groups
  for (auto& [w, fn] : out) executor_.post(w, std::move(fn));
}

void group_commit_store::apply(std::vector<ports::replicated_part_ptr> parts, ports::worker_id w,
                               std::function<void(std::vector<ports::apply_result>)> done) {
  auto a = std::make_shared<deferred_apply>();
  a->results.reserve(parts.size());
  a->w = w;
  a->done = std::move(done);
  const auto now = clock_.now();
  released out;
  std::unique_lock lk(mu_);
  const bool wake = open_empty();
  bool added = false;
  std::set<replication::partition_id> installing;
  for (const auto& part : parts) {
    a->results.push_back(apply_part(*part, now, added, out));
    if (a->results.back().status != ports::apply_status::installing) continue;
    // Answered once the copy it waits for is installed (or given up).
    installs_[part->partition].deferred.push_back({a, a->results.size() - 1, part->lsn});
    installing.insert(part->partition);
  }
  a->waiting = installing.size();
  if (a->waiting == 0) out.emplace_back(w, [a] { a->done(std::move(a->results)); });
  release_applied(lk, wake, std::move(out));
}

void group_commit_store::apply_chunk(ports::snapshot_chunk chunk, ports::worker_id w,
                                     std::function<void(ports::apply_result)> done) {
  const auto now = clock_.now();
  released out;
  std::unique_lock lk(mu_);
  const bool wake = open_empty();
  ports::apply_result r{chunk.partition, ports::apply_status::gap, {}};
  auto inst = installs_.find(chunk.partition);
  if (chunk.partition >= positions_.size()) {
    r.status = ports::apply_status::malformed;
  } else if (inst != installs_.end() && (inst->second.target != chunk.position || inst->second.next_seq != chunk.seq)) {
    // The owner and this copy disagree about the snapshot: given up, the
    // parts that waited answer gap and the owner sends another.
    finish_install(inst, false, out);
  } else if (inst != installs_.end()) {
    auto writes = decode_writes(chunk.writes, chunk.partition);
    const bool puts = writes && std::all_of(writes->begin(), writes->end(), [](const kv_write& x) {
      return x.op == kv_write::kind::put && !(x.col == column::sessions && is_position_key(x.key));
    });
    if (!puts) {
      finish_install(inst, false, out);  // the copy stays without a position: another snapshot
      r.status = ports::apply_status::malformed;
    } else {
      open_applied_.insert(open_applied_.end(), std::make_move_iterator(writes->begin()),
                           std::make_move_iterator(writes->end()));
      auto& in = inst->second;
      ++in.next_seq;
      in.touched = now;
      r.status = ports::apply_status::installing;
      if (chunk.last) {
        auto& pos = positions_[chunk.partition];
        pos = in.target;
        open_applied_.push_back(position_write(chunk.partition, pos));
        // The parts that waited, in order; one that does not follow ends
        // it (its apply answers gap: the owner sends another snapshot).
        auto held = std::move(in.held);
        in.held.clear();
        for (const auto& part : held)
          if (part->lsn > pos.lsn && (!follows(*part, pos) || !append_part(*part, pos))) break;
        finish_install(inst, true, out);
        r.status = ports::apply_status::applied;
      }
    }
  }
  if (chunk.partition < positions_.size()) r.position = positions_[chunk.partition];
  out.emplace_back(w, [done = std::move(done), r]() mutable { done(r); });
  release_applied(lk, wake, std::move(out));
}

void group_commit_store::expire_installs() {
  const auto now = clock_.now();
  released out;
  std::unique_lock lk(mu_);
  for (auto it = installs_.begin(); it != installs_.end();) {
    auto next = std::next(it);
    if (now - it->second.touched > install_timeout) finish_install(it, false, out);
    it = next;
  }
  if (out.empty()) return;
  release_applied(lk, false, std::move(out));
}

std::vector<std::pair<replication::partition_id, ports::partition_position>> group_commit_store::positions() const {
  std::lock_guard lk(mu_);
  std::vector<std::pair<replication::partition_id, ports::partition_position>> out;
  for (std::size_t p = 0; p < positions_.size(); ++p)
    if (positions_[p].lsn != 0) out.emplace_back(static_cast<replication::partition_id>(p), positions_[p]);
  return out;
}

}  // namespace flock::storage
