#pragma once
// One node of a cluster, as the core sees it (core::cluster_side) and as the
// cluster sees the core (ports::cluster_host, host.cpp). Owns what only a
// clustered node has: the peers' routes, the hybrid clock that stamps claims
// and retained writes, the recent clears and the digest of the retained
// messages, and the sessions on their way to another node.
//
// Lives as long as the broker, which owns it (broker::set_cluster_side).
// Threads: the cluster_side calls come from the workers, the host's from the
// cluster's threads (README.md).
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "broker/clustering/remote_routes.hpp"
#include "broker/clustering/retained_clears.hpp"
#include "broker/core/broker_impl.hpp"
#include "broker/core/cluster_side.hpp"

namespace flock::clustering {

class member final : public core::cluster_side {
 public:
  explicit member(core::broker& b);
  ~member() override;

  // What the cluster calls; give it to the cluster before connect().
  ports::cluster_host& host() { return *host_; }
  // The cluster this node talks through, before any connection. It must
  // outlive the workers' use of it (the server stops it after them).
  void connect(ports::cluster& c) { cluster_ = &c; }

  // --- core::cluster_side (routing.cpp, retained.cpp, sessions.cpp) ---
  void plan_peers(const core::message& msg, const std::vector<ports::shared_pick>* forwarded,
                  std::vector<core::group_turn>& groups, core::peer_plan& plan) override;
  core::remote_ack_ptr send_to_peers(const core::message_ptr& msg, core::peer_plan& plan) override;
  void local_route_changed(std::string_view filter, std::size_t before, std::size_t after) override;
  void retain(const core::message_ptr& msg, std::vector<ports::store_op>& ops) override;
  void retained(const core::message_ptr& msg) override;
  void retained_restored(const core::message_ptr& m) override;
  void retained_expired(const core::message_ptr& m) override;
  void tick(ports::time_point now) override;
  core::stamp new_claim() override { return hlc.now(); }
  bool may_hold_elsewhere() override { return cluster_->has_peers(); }
  void fetch_session(const std::shared_ptr<core::session>& fresh, core::stamp claim) override;
  void claimed_here(const std::string& client_id, core::stamp claim) override;
  void restored(core::stamp claim) override { hlc.observe(claim); }
  void add_metrics(core::broker_metrics& m) override;

  // --- shared with host.cpp ---
  core::broker::impl& core() { return b_; }
  ports::cluster& cluster() { return *cluster_; }

  core::hybrid_clock hlc;  // stamps claims and retained writes; peers' stamps are observed into it
  remote_routes remote;    // what the peers subscribed to

  // Under the core's retained lock: recent clears, so an older write arriving
  // late from a peer does not bring a topic back, and the digest peers
  // compare to find out whether they hold the same messages.
  retained_clears clears;
  std::uint64_t retained_digest = 0;
  // Sets or clears msg->topic if msg is newer than what is there (under the
  // retained lock). Adds the store op to `ops`. False: msg is older.
  bool apply_retained(const core::message_ptr& msg, std::vector<ports::store_op>& ops);

  // Sessions handed to another node, waiting for it to say the session is
  // durable there (then they linger) or declined (then they stay).
  std::mutex moving_mutex;
  std::unordered_map<std::string, std::shared_ptr<core::session>> moving;
  // Durable on their new node, out of the directory, still subscribed here
  // and passing on what arrives until the cluster says every peer routes to
  // the new node (cluster_host::handover_done). Under moving_mutex.
  std::unordered_map<std::string, std::shared_ptr<core::session>> lingering;

  // The cluster answered fetch_session for `s` (sessions.cpp); on s's owner.
  void finish_claim(const std::shared_ptr<core::session>& s, ports::claim_result r);
  // Ends a session that moved to another node: no will, records deleted.
  void drop_moved(const std::shared_ptr<core::session>& s);

 private:
  core::broker::impl& b_;
  ports::cluster* cluster_ = nullptr;
  std::unique_ptr<ports::cluster_host> host_;
};

// The host the cluster calls for `m` (host.cpp).
std::unique_ptr<ports::cluster_host> make_host(member& m);

}  // namespace flock::clustering
