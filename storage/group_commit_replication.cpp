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
void group_commit_store::replicate(ticket t, kv_batch& batch, const std::vector<ports::partition_role>& roles) {
  std::map<replication::partition_id, std::string> shares;
  for (const auto& w : batch) {
    auto p = partition_of_write(w);
    if (p && *p < roles.size() && roles[*p].owner) encode_writes(w, shares[*p]);
  }
  if (shares.empty()) return;
  std::map<replication::store_id, std::vector<ports::replicated_part_ptr>> out;
  std::vector<replication::store_id> wait_for;
  ports::replication_stream* stream = nullptr;
  {
    std::lock_guard lk(mu_);
    stream = stream_;
    for (auto& [p, writes] : shares) {
      const auto& role = roles[p];
      auto& pos = positions_[p];
      pos = {role.epoch, pos.lsn + 1};
      batch.push_back(position_write(p, pos));
      auto part = std::make_shared<ports::replicated_part>(ports::replicated_part{p, pos.epoch, pos.lsn, std::move(writes)});
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
}

void group_commit_store::apply(std::vector<ports::replicated_part_ptr> parts, ports::worker_id w,
                               std::function<void(std::vector<ports::apply_result>)> done) {
  std::vector<ports::apply_result> results;
  results.reserve(parts.size());
  std::unique_lock lk(mu_);
  const bool wake = open_empty();
  bool added = false;
  for (const auto& part : parts) {
    ports::apply_result r{part->partition, ports::apply_status::malformed, {}};
    if (part->partition >= positions_.size()) {
      results.push_back(r);
      continue;
    }
    auto& pos = positions_[part->partition];
    replication::epoch_t known = pos.epoch;
    bool owner = false;
    if (roles_ && part->partition < roles_->size()) {
      known = std::max(known, (*roles_)[part->partition].epoch);
      owner = (*roles_)[part->partition].owner;
    }
    // Another writer in an epoch this store owns, or an older epoch.
    if (part->epoch < known || (owner && part->epoch == known)) {
      r.status = ports::apply_status::stale_epoch;
    } else if (part->epoch == pos.epoch && part->lsn <= pos.lsn) {
      r.status = ports::apply_status::applied;  // a resend: durable once what is open now is
    } else if (part->lsn != pos.lsn + 1) {
      r.status = ports::apply_status::gap;
    } else if (auto writes = decode_writes(part->writes, part->partition)) {
      open_applied_.insert(open_applied_.end(), std::make_move_iterator(writes->begin()),
                           std::make_move_iterator(writes->end()));
      pos = {part->epoch, part->lsn};
      open_applied_.push_back(position_write(part->partition, pos));
      r.status = ports::apply_status::applied;
      added = true;
    }
    r.position = pos;
    results.push_back(r);
  }
  // Everything accepted so far is in the open group or an earlier one.
  const ticket t = last_group();
  auto fn = [done = std::move(done), results = std::move(results)]() mutable { done(std::move(results)); };
  if (t > durable_) {
    apply_waiters_.push_back({t, w, std::move(fn)});
    lk.unlock();
    if (wake && added) work_cv_.notify_one();
    return;
  }
  lk.unlock();
  std::lock_guard pl(post_mu_);  // after the writer's posts for earlier groups
  executor_.post(w, std::move(fn));
}

std::vector<std::pair<replication::partition_id, ports::partition_position>> group_commit_store::positions() const {
  std::lock_guard lk(mu_);
  std::vector<std::pair<replication::partition_id, ports::partition_position>> out;
  for (std::size_t p = 0; p < positions_.size(); ++p)
    if (positions_[p].lsn != 0) out.emplace_back(static_cast<replication::partition_id>(p), positions_[p]);
  return out;
}

}  // namespace flock::storage
