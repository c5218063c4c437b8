#pragma once
// The replication controller as a node runs it (docs/replication.md, 1.3
// and 2): a controller::controller whose Raft messages travel as `Raft`
// frames on the peer streams' control lane, whose log lives in the data
// directory (ports::controller_log), and whose time is the steady clock.
//
// What it decides here so far, as the Raft leader: the controller state's
// bootstrap over the stores it knows, node_up for stores that join or come
// back, node_fenced for stores silent past the failure timeout; Raft
// membership (new nodes added, voters kept at the largest odd count up to
// five). The state is observed, not yet used by the data path.
//
// Threads: the node's thread only.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "broker/controller/controller.hpp"
#include "broker/ports/controller_log.hpp"
#include "broker/ports/store.hpp"

namespace flock::cluster {

// A node as the controller host sees it (from the node's peer table).
struct controller_peer {
  std::string name;
  ports::store_identity store;
  std::uint64_t incarnation = 0;
  bool up = false;            // reachable now
  bool down_long = false;     // silent past the failure timeout
  bool has_log = false;       // its controller has a Raft log
};

struct controller_host_options {
  std::string name;                  // this node's
  std::uint64_t incarnation = 0;
  ports::store_identity store;
  std::uint32_t replication_factor = 2;
  std::uint32_t partitions = 256;
  std::size_t expect = 1;            // nodes that bootstrap a new controller together
  controller::controller_options raft;
};

class controller_host final : public controller::environment {
 public:
  // Sends one Raft message to the node named `to`; false when there is no
  // stream to it now.
  using send_fn = std::function<bool(const std::string& to, std::string bytes)>;

  controller_host(controller_host_options options, ports::controller_log& log, send_fn send);
  ~controller_host() override;

  // The raft id of a store: part of its identity, never 0.
  static std::uint64_t raft_id(const ports::store_identity& s) { return s.lo != 0 ? s.lo : (s.hi != 0 ? s.hi : 1); }

  // Every node tick: drives libraft, bootstraps or joins, and as leader
  // proposes what the peer table says.
  void tick(const std::vector<controller_peer>& peers);
  // A Raft message from node `from`, whose data directory is `store`.
  void receive(const std::string& from, const ports::store_identity& store, std::string_view bytes);

  // Proposes c when this node leads the controller; false otherwise.
  bool propose(const replication::command& c);

  bool has_log() const { return started_ || storage_.term != 0; }
  bool started() const { return started_; }
  const controller::controller* engine() const { return engine_.get(); }
  std::string leader_name() const;

  // environment
  std::uint64_t now_ms() override;
  int random(int min, int max) override;
  bool send(std::uint64_t to, std::string bytes) override;

 private:
  void start_engine();
  void maybe_bootstrap(const std::vector<controller_peer>& peers);
  void lead(const std::vector<controller_peer>& peers);
  void manage_voters(const std::vector<controller_peer>& peers);
  replication::member member_of(const controller_peer& p) const;

  controller_host_options opts_;
  ports::controller_log& log_;
  send_fn send_;
  controller::raft_storage storage_;
  std::unique_ptr<controller::controller> engine_;
  bool started_ = false;
  std::mt19937_64 rng_;
  std::map<std::uint64_t, std::string> names_;  // raft id -> node name, as learned
  std::uint64_t next_proposals_ms_ = 0;          // state proposals at most this often
};

}  // namespace flock::cluster
