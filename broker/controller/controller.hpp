#pragma once
// The controller (docs/replication.md, sections 1.3 and 2): one Raft log
// over the cluster's voters, run by libraft (Debian's libraft-dev) behind
// our own raft_io, whose committed entries are replication::commands
// applied to a replication::controller_state, the same on every node.
//
// Everything libraft needs from outside comes through `environment` (the
// clock, random numbers, sending a message to a server) and `raft_storage`
// (its log, term and vote): the same engine runs in a node (clock, peer
// streams, the store) and in a single-threaded simulator with a manual
// clock. Asynchronous completions (appends, sends, snapshots) are queued and
// run before each public call returns, in order.
//
// Threads: one at a time (the node's thread); no call blocks.
// Lifetime: the environment and storage outlive the controller.
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "broker/controller/libraft.hpp"

#include "broker/controller/raft_storage.hpp"
#include "broker/replication/controller_state.hpp"

namespace flock::controller {

class environment {
 public:
  virtual ~environment() = default;
  virtual std::uint64_t now_ms() = 0;
  virtual int random(int min, int max) = 0;  // inclusive
  // Hands `bytes` (one encoded Raft message) to server `to`. False when
  // there is no way to it now: libraft tries again later.
  virtual bool send(std::uint64_t to, std::string bytes) = 0;
};

struct controller_options {
  unsigned election_timeout_ms = 1000;  // randomised by libraft between 1x and 2x
  unsigned heartbeat_timeout_ms = 100;
  unsigned snapshot_threshold = 1024;   // entries between snapshots
  unsigned snapshot_trailing = 128;     // entries kept behind a snapshot
  // A snapshot sent to a follower and not acknowledged is sent again after
  // this (libraft's default, 30 s, stalls a follower whose copy was lost).
  unsigned install_snapshot_timeout_ms = 5000;
};

class controller {
 public:
  // Every committed command, in log order, with its log index and what
  // applying it did.
  using commit_fn = std::function<void(std::uint64_t index, const replication::command&, replication::outcome)>;

  controller(std::uint64_t id, std::string address, environment& env, raft_storage& storage,
             controller_options options, commit_fn on_commit);
  ~controller();
  controller(const controller&) = delete;
  controller& operator=(const controller&) = delete;

  // Creates a new cluster whose first configuration is `voters` (before
  // start; false when the storage already holds a log).
  bool bootstrap(const std::vector<raft_server_info>& servers);
  // Loads the storage and starts taking part. False (and errmsg()) on a
  // corrupt log or snapshot.
  bool start();
  // Drives libraft's timers: call at least every heartbeat timeout.
  void tick();
  // A message from server `from`.
  void receive(std::uint64_t from, std::string_view from_address, std::string_view bytes);

  // Appends `c` to the log if this server leads. Applied through on_commit
  // once committed (or never, if leadership is lost first).
  bool propose(const replication::command& c);
  // Membership of the Raft configuration itself (leader only; one at a time).
  bool add_server(std::uint64_t id, const std::string& address);
  bool assign_role(std::uint64_t id, int role);
  bool remove_server(std::uint64_t id);

  bool leads() const;
  std::uint64_t leader() const;  // 0: unknown
  std::uint64_t term() const;
  std::uint64_t commit_index() const;
  std::uint64_t applied_index() const;
  std::vector<raft_server_info> configuration() const;
  const replication::controller_state& state() const { return state_; }
  std::string errmsg() const;
  std::uint64_t id() const { return id_; }

  struct io_state;  // our raft_io (controller.cpp)

 private:
  void flush();

  const std::uint64_t id_;
  const std::string address_;
  environment& env_;
  raft_storage& storage_;
  commit_fn on_commit_;
  replication::controller_state state_;
  std::unique_ptr<io_state> io_;
  raft raft_{};
  raft_fsm fsm_{};
  bool started_ = false;
  bool closed_ = false;
};

}  // namespace flock::controller
