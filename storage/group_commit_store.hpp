#pragma once
// ports::store over a kv_backend, with group commit: everything appended
// while one group is being written becomes the next group, written as ONE
// atomic batch. Durability then costs each publisher the latency of about
// one write (fsync in sync mode), while throughput is set by how much a
// batch carries rather than by how many writes the disk does per second.
//
// Threads: append(), when_durable(), is_durable(), healthy() and flush()
// from any thread (workers). One writer thread, owned by the store, does
// every backend write and posts the callbacks to the workers. Lives from
// start-up to shutdown; the destructor flushes (briefly) and joins.
//
// Replication (ports/replication.hpp), while roles are set: the writer
// gives each group's share of every partition this store owns the next LSN
// (its position record joins the group) and sends it to the partition's
// followers before writing locally; when_durable() and is_durable() then
// mean durable here and acknowledged by the in-sync followers of every
// partition the groups touched, in ticket order. Parts applied as a
// follower join the open group after its ops; they are acknowledged once
// durable here, never waiting for this store's own followers (two owners
// following each other would otherwise wait on each other's next group).
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "broker/ports/replication.hpp"
#include "broker/ports/store.hpp"
#include "broker/replication/wait_set.hpp"
#include "storage/controller_log_kv.hpp"
#include "storage/kv_backend.hpp"
#include "storage/partition_writes.hpp"

namespace flock::storage {

struct group_commit_options {
  bool sync = false;      // fsync every group (durability::sync)
  bool coalesce = true;   // see coalesce.hpp; off only to measure it and test it
  std::function<void(const std::string&)> log;  // errors and repairs; stderr when empty
  // How long the destructor waits for the last groups (a failing disk must
  // not hang shutdown: what is not written by then was never acknowledged).
  ports::duration shutdown_flush_timeout = std::chrono::seconds(2);
};

struct group_commit_stats {
  std::uint64_t groups = 0;       // batches written
  std::uint64_t ops = 0;          // ops appended
  std::uint64_t coalesced = 0;    // ops dropped by coalescing
  std::uint64_t failed_writes = 0;
};

class group_commit_store final : public ports::store, public ports::replica_store {
 public:
  group_commit_store(std::unique_ptr<kv_backend> backend, group_commit_options options, ports::executor& executor,
                     const ports::clock& clock);
  ~group_commit_store() override;

  ports::restored_state load() override;
  ticket append(std::span<ports::store_op> ops) override;
  bool is_durable(ticket t) const override;
  void when_durable(ticket t, ports::worker_id w, std::function<void()> fn) override;
  bool healthy() const override;
  bool flush(ports::duration timeout) override;
  write_metrics metrics() const override;
  ports::controller_log* controller() override { return &controller_log_; }
  ports::replica_store* replica() override { return this; }

  // ports::replica_store
  void set_stream(ports::replication_stream* stream) override;
  void set_roles(std::vector<ports::partition_role> roles) override;
  std::vector<ports::partition_role> roles() const override;
  void acknowledged(const replication::store_id& follower, std::uint64_t group) override;
  void apply(std::vector<ports::replicated_part_ptr> parts, ports::worker_id w,
             std::function<void(std::vector<ports::apply_result>)> done) override;
  void snapshot(replication::partition_id p, const replication::store_id& follower,
                std::function<void(std::optional<ports::snapshot_started>)> ready) override;
  void next_chunk(std::uint64_t id, std::size_t max_bytes,
                  std::function<void(std::optional<ports::snapshot_chunk>)> got) override;
  void end_snapshot(std::uint64_t id) override;
  void apply_chunk(ports::snapshot_chunk chunk, ports::worker_id w, std::function<void(ports::apply_result)> done) override;
  void expire_installs() override;
  std::vector<std::pair<replication::partition_id, ports::partition_position>> positions() const override;

  // The position of a copy whose content no owner's position names: data
  // written before replication (or outside it), or a snapshot given up half
  // way. In memory only (a restart finds such data again: load()); it
  // matches no other copy, so followers and the copy itself get snapshots.
  static constexpr ports::partition_position unnamed_copy{0, 1};
  // A follower gives up a snapshot that has not moved for this long (its
  // owner lost the stream or the snapshot); the next part asks for another.
  static constexpr ports::duration install_timeout = std::chrono::seconds(10);
  // Parts of one partition held while its snapshot is installed, at most.
  static constexpr std::size_t max_held_bytes = 16u << 20;

  group_commit_stats stats() const;
  kv_backend& backend() { return *backend_; }

 private:
  struct waiter {
    ticket t;
    std::function<void()> fn;
  };
  using role_table = std::shared_ptr<const std::vector<ports::partition_role>>;

  // Snapshots (under mu_ unless marked).
  struct snapshot_request {
    replication::partition_id partition;
    replication::store_id follower;
    std::function<void(std::optional<ports::snapshot_started>)> ready;
  };
  struct chunk_request {
    std::uint64_t id;
    std::size_t max_bytes;  // 0: end the snapshot
    std::function<void(std::optional<ports::snapshot_chunk>)> got;
  };
  struct snapshot_reading {  // writer thread only
    replication::partition_id partition;
    ports::partition_position position;
    std::unique_ptr<kv_view> view;
    partition_cursor cursor;
    std::uint64_t next_seq = 0;
  };
  // The acknowledgement of parts applied as a follower, held while a
  // snapshot they wait for is installed.
  struct deferred_apply {
    std::vector<ports::apply_result> results;
    ports::worker_id w;
    std::function<void(std::vector<ports::apply_result>)> done;
    std::size_t waiting = 0;  // installs not finished
  };
  struct install {  // a follower's snapshot in progress
    ports::partition_position target;  // the owner's copy it installs
    replication::epoch_t epoch = 0;    // the owner's epoch that sent it
    std::uint64_t next_seq = 0;
    std::vector<ports::replicated_part_ptr> held;  // later parts, applied once installed
    std::size_t held_bytes = 0;
    ports::time_point touched{};
    // Applies whose results wait for this install, with the index of
    // each of their parts of this partition.
    struct waiting_part {
      std::shared_ptr<deferred_apply> apply;
      std::size_t index;  // into its results
      std::uint64_t lsn;  // in once the copy reaches it
    };
    std::vector<waiting_part> deferred;
  };

  void run();
  // Writes the group, retrying until it succeeds or the store stops. False
  // when stopped first.
  bool commit(ticket t, std::vector<ports::store_op>& ops, kv_batch& applied, const role_table& roles,
              std::vector<snapshot_request>& starts);
  // The owned partitions' shares of the group: LSNs, position records into
  // `batch`, parts to the followers (after the markers of the snapshots
  // starting here), the wait set. Partitions written here without owning
  // them (no roles: replication off or not yet placed; before slice 5, a
  // session of a partition owned elsewhere) that had no position get
  // unnamed_copy.
  void replicate(ticket t, kv_batch& batch, const std::vector<ports::partition_role>& roles,
                 std::vector<snapshot_request>& starts);
  // Writer thread: chunk reads and ends of snapshots.
  void serve_snapshot_reads();
  // Callbacks of applies, to run on their worker once what is applied so
  // far is durable here.
  using released = std::vector<std::pair<ports::worker_id, std::function<void()>>>;
  static bool follows(const ports::replicated_part& part, const ports::partition_position& pos);
  // Under mu_: the part's writes and the copy's new position join the open
  // group; false (nothing added) when they do not decode inside the partition.
  bool append_part(const ports::replicated_part& part, ports::partition_position& pos);
  // Under mu_: one part from an owner (the checks of apply()); true in
  // `added` when it joined the open group.
  ports::apply_result apply_part(const ports::replicated_part& part, ports::time_point now, bool& added,
                                 released& out);
  // Under mu_: an install ends; the applies that waited for it learn
  // whether each of their parts is in (those waiting for nothing else go
  // to `out`).
  void finish_install(std::map<replication::partition_id, install>::iterator it, bool installed, released& out);
  // Takes mu_'s lock `lk` and releases it: queues `out` behind the open
  // group (or posts it, when everything is durable already).
  void release_applied(std::unique_lock<std::mutex>& lk, bool wake, released out);
  void note_failure(const std::string& error);
  void mark_durable(ticket t);
  // Under mu_: nothing waits in the open group (neither ops nor applied parts).
  bool open_empty() const { return open_.empty() && open_applied_.empty(); }
  // Under mu_: the group that holds everything appended or applied so far.
  ticket last_group() const { return open_empty() ? open_ticket_ - 1 : open_ticket_; }
  // Under mu_: moves replicated_ up to the last ticket that waits for
  // nothing, given groups `done` just completed their wait sets.
  void advance_replicated(const std::vector<ticket>& done);
  // Posts the callbacks of every worker up to replicated_ (post_mu_ held).
  void release_waiters();
  void log(const std::string& line) const;

  std::unique_ptr<kv_backend> backend_;
  controller_log_kv controller_log_{*backend_};
  group_commit_options options_;
  ports::executor& executor_;
  const ports::clock& clock_;

  // Order: post_mu_ before mu_. post_mu_ is held while callbacks are posted,
  // so a callback for an already durable ticket cannot overtake earlier ones
  // of the same worker that the writer is still posting.
  std::mutex post_mu_;
  mutable std::mutex mu_;
  std::condition_variable work_cv_;     // writer: a group is open, or stop
  std::condition_variable durable_cv_;  // flush(): durable_ moved
  std::vector<ports::store_op> open_;   // the open group
  kv_batch open_applied_;               // the open group's parts applied as a follower
  ticket open_ticket_ = 1;              // the open group's ticket
  ticket durable_ = 0;                  // every group <= this is durable here (under mu_)
  ticket replicated_ = 0;               // ... and acknowledged by the followers it waits for
  std::atomic<ticket> replicated_atomic_{0};
  std::vector<std::deque<waiter>> waiters_;  // per worker, in call order (so in ticket order)
  struct apply_waiter {
    ticket t;
    ports::worker_id w;
    std::function<void()> fn;
  };
  std::deque<apply_waiter> apply_waiters_;  // follower acks: durable here is enough

  // Replication (under mu_). roles_ null: off.
  ports::replication_stream* stream_ = nullptr;
  role_table roles_;
  std::vector<ports::partition_position> positions_;  // per partition; lsn 0: never written
  replication::wait_set waits_;
  std::set<ticket> awaiting_;                  // groups the wait set still holds
  std::set<replication::store_id> waited_;     // followers some group was made to wait for
  std::vector<snapshot_request> snapshot_requests_;
  std::vector<chunk_request> chunk_requests_;
  std::map<std::uint64_t, snapshot_reading> readings_;  // writer thread only
  std::uint64_t next_snapshot_id_ = 1;                  // writer thread only
  std::map<replication::partition_id, install> installs_;

  bool stop_ = false;
  group_commit_stats stats_;

  std::atomic<bool> healthy_{true};
  // Written by the writer thread only, read by scrapes.
  core::latency_histogram write_us_{core::latency_bounds_us};
  core::size_histogram batch_ops_{core::size_bounds};
  // Writer thread only: rate limit of the failure log.
  std::optional<std::chrono::steady_clock::time_point> last_failure_log_;
  std::uint64_t unreported_failures_ = 0;
  bool failure_logged_ = false;  // a failure line awaits its "works again" line
  std::thread writer_;
};

}  // namespace flock::storage
