// See group_commit_store.hpp. The writer takes the open group as soon as it
// is non-empty: no timer, no minimum size. Groups form by themselves while
// the previous write (an fsync, in sync mode) is in progress, so an idle
// broker commits at once and a busy one commits in large batches.
#include "storage/group_commit_store.hpp"

#include <algorithm>
#include <cstdio>
#include <iterator>

#include "broker/replication/partition.hpp"
#include "storage/coalesce.hpp"
#include "storage/loader.hpp"
#include "storage/record_codec.hpp"

namespace flock::storage {

using namespace std::chrono_literals;

group_commit_store::group_commit_store(std::unique_ptr<kv_backend> backend, group_commit_options options,
                                       ports::executor& executor, const ports::clock& clock)
    : backend_(std::move(backend)), options_(std::move(options)), executor_(executor), clock_(clock) {
  waiters_.resize(std::max<std::uint32_t>(1, executor_.worker_count()));
  positions_.resize(replication::default_partitions);
  writer_ = std::thread([this] { run(); });
}

group_commit_store::~group_commit_store() {
  if (!flush(options_.shutdown_flush_timeout))
    log("store: stopping with changes not written to " + backend_->location() +
        " (writes kept failing); none of them was acknowledged");
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  writer_.join();
}

ports::restored_state group_commit_store::load() {
  auto state = load_state(*backend_, clock_, [this](const std::string& line) { log(line); });
  std::lock_guard lk(mu_);
  for (const auto& [p, pos] : state.partitions)
    if (p < positions_.size()) positions_[p] = pos;
  // Sessions without a position: written before replication was on.
  for (const auto& session : state.sessions) {
    auto& pos = positions_[replication::partition_of_session(session.session_id)];
    if (pos.lsn == 0) pos = unnamed_copy;
  }
  return state;
}

group_commit_store::ticket group_commit_store::append(std::span<ports::store_op> ops) {
  std::unique_lock lk(mu_);
  // Nothing to add: the caller depends only on what was appended before,
  // which is in the last group taken by the writer (or an older one).
  if (ops.empty()) return open_ticket_ - 1;
  const bool wake = open_empty();
  open_.insert(open_.end(), std::make_move_iterator(ops.begin()), std::make_move_iterator(ops.end()));
  stats_.ops += ops.size();
  const ticket t = open_ticket_;
  lk.unlock();
  // The writer sleeps only while the open group is empty.
  if (wake) work_cv_.notify_one();
  return t;
}

bool group_commit_store::is_durable(ticket t) const { return t <= replicated_atomic_.load(std::memory_order_acquire); }

void group_commit_store::when_durable(ticket t, ports::worker_id w, std::function<void()> fn) {
  {
    std::lock_guard lk(mu_);
    if (t > replicated_) {
      if (w >= waiters_.size()) waiters_.resize(w + 1);
      waiters_[w].push_back({t, std::move(fn)});
      return;
    }
  }
  // Durable already. Wait for the writer to finish posting the callbacks it
  // took with that ticket (registered before this one) so ours comes after.
  std::lock_guard pl(post_mu_);
  executor_.post(w, std::move(fn));
}

bool group_commit_store::healthy() const { return healthy_.load(std::memory_order_relaxed); }

bool group_commit_store::flush(ports::duration timeout) {
  std::unique_lock lk(mu_);
  const ticket target = last_group();
  return durable_cv_.wait_for(lk, timeout, [&] { return durable_ >= target; });
}

ports::store::write_metrics group_commit_store::metrics() const {
  write_metrics m;
  m.write_us = write_us_.read();
  m.batch_ops = batch_ops_.read();
  m.failed_writes = stats().failed_writes;
  return m;
}

group_commit_stats group_commit_store::stats() const {
  std::lock_guard lk(mu_);
  return stats_;
}

void group_commit_store::run() {
  // Swapped with open_ each round, so both vectors keep their capacity.
  std::vector<ports::store_op> group;
  kv_batch applied;
  std::unique_lock lk(mu_);
  std::vector<snapshot_request> starts;
  for (;;) {
    work_cv_.wait(lk, [&] {
      return stop_ || !open_empty() || !snapshot_requests_.empty() || !chunk_requests_.empty();
    });
    // Stopping: the destructor flushed first; whatever is still open was
    // never acknowledged to anyone.
    if (stop_) {
      lk.unlock();
      readings_.clear();  // the views go before the backend
      return;
    }
    if (!chunk_requests_.empty()) {
      lk.unlock();
      serve_snapshot_reads();
      lk.lock();
      continue;
    }
    std::swap(group, open_);
    std::swap(applied, open_applied_);
    std::swap(starts, snapshot_requests_);
    const ticket t = open_ticket_++;
    const role_table roles = roles_;
    lk.unlock();
    const bool written = commit(t, group, applied, roles, starts);
    starts.clear();
    group.clear();  // releases the messages here, off the workers and the lock
    applied.clear();
    if (!written) return;
    mark_durable(t);
    lk.lock();
  }
}

bool group_commit_store::commit(ticket t, std::vector<ports::store_op>& ops, kv_batch& applied,
                                const role_table& roles, std::vector<snapshot_request>& starts) {
  const std::size_t dropped = options_.coalesce ? coalesce(ops) : 0;
  const wall_clock_mapping time(clock_);
  kv_batch batch;
  batch.reserve(ops.size() + applied.size() + 4);
  for (const auto& op : ops) encode_op(op, time, batch);
  static const std::vector<ports::partition_role> no_roles;  // replication off
  replicate(t, batch, roles ? *roles : no_roles, starts);
  batch.insert(batch.end(), std::make_move_iterator(applied.begin()), std::make_move_iterator(applied.end()));
  if (batch.empty()) return true;  // only snapshots started here

  auto backoff = 50ms;
  std::uint64_t failures = 0;
  const auto started = std::chrono::steady_clock::now();
  for (;;) {
    // A group is idempotent (puts, deletes and range deletes of fixed keys),
    // so retrying one that reached the log before the error is harmless.
    auto st = backend_->write(batch, options_.sync);
    if (st.ok()) break;
    ++failures;
    healthy_.store(false, std::memory_order_relaxed);
    note_failure(st.error);
    {
      std::unique_lock lk(mu_);
      ++stats_.failed_writes;
      if (work_cv_.wait_for(lk, backoff, [&] { return stop_; })) return false;
    }
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, 1s);
    readings_.clear();  // views must not outlive a reopen; their transfers start again
    backend_->recover();
  }
  write_us_.observe(static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started).count()));
  batch_ops_.observe(ops.size());
  if (failures > 0) {
    healthy_.store(true, std::memory_order_relaxed);
    if (failure_logged_) {
      failure_logged_ = false;
      log("store: writing to " + backend_->location() + " works again after " + std::to_string(failures) +
          " failed attempt(s)");
    }
  }
  std::lock_guard lk(mu_);
  stats_.coalesced += dropped;
  return true;
}

void group_commit_store::note_failure(const std::string& error) {
  // A full disk fails every attempt: one line per 10 s, with the count.
  ++unreported_failures_;
  const auto now = std::chrono::steady_clock::now();
  if (last_failure_log_ && now - *last_failure_log_ < 10s) return;
  last_failure_log_ = now;
  failure_logged_ = true;
  log("store: writing to " + backend_->location() + " failed (" + error + "; " +
      std::to_string(unreported_failures_) +
      " failed attempt(s) since the last report); retrying, new QoS 1/2 publishes are refused meanwhile");
  unreported_failures_ = 0;
}

void group_commit_store::mark_durable(ticket t) {
  std::vector<apply_waiter> acks;
  std::lock_guard pl(post_mu_);
  {
    std::lock_guard lk(mu_);
    durable_ = t;
    ++stats_.groups;
    while (!apply_waiters_.empty() && apply_waiters_.front().t <= t) {
      acks.push_back(std::move(apply_waiters_.front()));
      apply_waiters_.pop_front();
    }
    advance_replicated(awaiting_.empty() ? std::vector<ticket>{} : waits_.durable(t));
  }
  durable_cv_.notify_all();
  for (auto& a : acks) executor_.post(a.w, std::move(a.fn));
  release_waiters();
}

void group_commit_store::advance_replicated(const std::vector<ticket>& done) {
  for (ticket d : done) awaiting_.erase(d);
  ticket upto = durable_;
  if (!awaiting_.empty()) upto = std::min(upto, *awaiting_.begin() - 1);
  if (upto > replicated_) {
    replicated_ = upto;
    replicated_atomic_.store(upto, std::memory_order_release);
  }
}

void group_commit_store::release_waiters() {
  std::vector<std::pair<ports::worker_id, std::vector<std::function<void()>>>> ready;
  {
    std::lock_guard lk(mu_);
    for (ports::worker_id w = 0; w < waiters_.size(); ++w) {
      auto& q = waiters_[w];
      if (q.empty() || q.front().t > replicated_) continue;
      std::vector<std::function<void()>> fns;
      while (!q.empty() && q.front().t <= replicated_) {
        fns.push_back(std::move(q.front().fn));
        q.pop_front();
      }
      ready.emplace_back(w, std::move(fns));
    }
  }
  // One post per worker, whatever the number of callbacks it gets.
  for (auto& [w, fns] : ready)
    executor_.post(w, [fns = std::move(fns)]() mutable {
      for (auto& f : fns) f();
    });
}

void group_commit_store::log(const std::string& line) const {
  if (options_.log) options_.log(line);
  else std::fprintf(stderr, "%s\n", line.c_str());
}

}  // namespace flock::storage
