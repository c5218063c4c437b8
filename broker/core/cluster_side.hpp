#pragma once
// The cluster as the core's routing, retained index and session directory
// see it: one interface, so router.cpp, session_directory.cpp and broker.cpp
// read the same on a lone node and in a cluster. A lone node runs
// single_node (single_node.cpp): no peers, no stamps, nothing to ask.
// broker/clustering/ implements it for one node of a cluster.
//
// Threads: called on the workers; the calls that run under one of the core's
// locks say so. Implementations never block on the network.
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "broker/core/broker_metrics.hpp"
#include "broker/core/message.hpp"
#include "broker/core/remote_ack.hpp"
#include "broker/core/stamp.hpp"
#include "broker/core/subscription_index.hpp"
#include "broker/ports/cluster.hpp"
#include "broker/ports/store.hpp"

namespace flock::core {

class session;

// A shared group that matched a publish locally, and whose turn the message is.
struct group_turn {
  const subscription_index::group* group = nullptr;
  // Set by plan_peers: the local member (index into members()) whose turn it
  // is; none when a peer's members have it, or the group is not ours to serve.
  std::optional<std::uint32_t> member;
};

// One copy of a publish for a peer: for its plain routes and/or the groups
// whose turn fell on its members.
struct peer_copy {
  ports::peer_id peer = 0;
  std::vector<ports::shared_pick> picks;
};

// The copies of one publish for other nodes, from plan_peers to send_to_peers.
struct peer_plan {
  std::vector<peer_copy> copies;
  // The peers' routes stay as planned until the copies are queued, so a route
  // hand-over's barrier answer (which names the last copy queued for a peer)
  // covers every copy the old routes chose.
  std::shared_lock<std::shared_mutex> routes_held;
};

class cluster_side {
 public:
  virtual ~cluster_side() = default;

  // --- routing (router.cpp) ---
  // Under the core's index lock, after the local match: which peers get a
  // copy of `msg`, and whose turn each matched shared group is (sets
  // group_turn::member). `forwarded`: msg came from a peer, which chose the
  // groups whose turn is ours; it goes to no other node.
  virtual void plan_peers(const message& msg, const std::vector<ports::shared_pick>* forwarded,
                          std::vector<group_turn>& groups, peer_plan& plan) = 0;
  // Queues the planned copies and lets the routes go. For QoS 1/2 the
  // publisher's ack also waits for what this returns (null: nothing).
  virtual remote_ack_ptr send_to_peers(const message_ptr& msg, peer_plan& plan) = 0;
  // Under the index lock (exclusive): `filter` now has `after` local holders
  // (sessions, or a group's members), and had `before`.
  virtual void local_route_changed(std::string_view filter, std::size_t before, std::size_t after) = 0;

  // --- retained messages ---
  // Under the retained lock: a local publish sets (or, with an empty payload,
  // clears) msg->topic; what to write goes to `ops`.
  virtual void retain(const message_ptr& msg, std::vector<ports::store_op>& ops) = 0;
  // After retain(), out of the lock.
  virtual void retained(const message_ptr& msg) = 0;
  // Under the retained lock: `m` came back from the store (start-up) or
  // expired from the index.
  virtual void retained_restored(const message_ptr& m) = 0;
  virtual void retained_expired(const message_ptr& m) = 0;
  // Under the retained lock, once a second on worker 0.
  virtual void tick(ports::time_point now) = 0;

  // --- sessions (session_directory.cpp) ---
  // The claim a connect makes on its client id (the newest claim wins).
  virtual stamp new_claim() = 0;
  // A connect resumes a session this node does not have: may another node?
  virtual bool may_hold_elsewhere() = 0;
  // Asks the nodes that may for the state of `fresh` (new here, claimed with
  // `claim`, a connection parked on it); that connection gets its session
  // once they answered.
  virtual void fetch_session(const std::shared_ptr<session>& fresh, stamp claim) = 0;
  // `client_id` is claimed here: copies of it on other nodes end.
  virtual void claimed_here(const std::string& client_id, stamp claim) = 0;
  // A session came back from the store with this claim.
  virtual void restored(stamp claim) = 0;

  // --- reporting (any thread) ---
  virtual void add_metrics(broker_metrics& m) = 0;
};

}  // namespace flock::core
