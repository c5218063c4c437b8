#pragma once
// The cluster as the core sees it, and the core as the cluster sees it.
//
// ports::cluster is what the core tells the other nodes: its route changes,
// copies of publishes, retained changes, session claims. cluster/ implements
// it over gRPC; a single node has none (null) and routes locally only.
// ports::cluster_host is what the other nodes ask of this one; the core
// implements it (broker/clustering/host.cpp) and the cluster calls it.
//
// Threads: ports::cluster is called from the workers (route_changed under
// the core's subscription-index lock, so changes arrive in order) and must
// never block on the network. cluster_host is called from the cluster's
// threads; it posts to the workers and never blocks on them.
#include <array>
#include <cstdint>
#include <chrono>
#include <functional>
#include <optional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "broker/core/delivery.hpp"
#include "broker/ports/replication.hpp"
#include "broker/core/histogram.hpp"
#include "broker/core/message.hpp"
#include "broker/core/remote_ack.hpp"
#include "broker/core/stamp.hpp"
#include "broker/core/subscription_index.hpp"
#include "broker/ports/store.hpp"

namespace flock::ports {

// A peer node, by slot: assigned by the cluster when it first hears of a
// node name, kept for the life of the process (a restarted peer keeps its slot).
using peer_id = std::uint32_t;

// A shared-subscription group whose turn fell to a peer's members: the peer
// delivers the message to one of them.
struct shared_pick {
  std::string group;   // "$queue" for $queue/ subscriptions
  std::string filter;  // the inner filter
};

// A session as it moves between nodes: everything a resume needs. The
// messages are the receiving node's own copies (decoded off the wire, held
// by nobody else yet), so it can give them its store ids.
struct moved_delivery {
  std::shared_ptr<core::message> msg;  // null in state awaiting_pubcomp
  std::uint8_t qos = 0;
  bool retain = false;
  std::vector<std::uint32_t> subscription_ids;
};
struct moved_inflight {
  std::uint16_t packet_id = 0;
  core::outgoing_state state = core::outgoing_state::awaiting_puback;
  moved_delivery d;
};
struct moved_session {
  core::stamp claimed;  // the claim the session last had on its old node
  std::uint32_t expiry_interval = 0;
  std::vector<std::pair<std::string, core::subscription_options>> subscriptions;
  std::vector<moved_delivery> queue;     // in order
  std::vector<moved_inflight> inflight;  // in send order
  std::vector<std::uint16_t> incoming_qos2;
};

// What a node answers to a claim on a client id.
struct claim_answer {
  enum class kind : std::uint8_t {
    none,     // no session with this id here (any older one is gone now)
    session,  // it was here: its connection was kicked, and here it is
    refused,  // a newer claim holds the id here: the claimant loses
  };
  kind what = kind::none;
  moved_session session;  // kind::session
  core::stamp holder;     // kind::refused: the newer claim
};

// What the claimant hears once every reachable peer answered.
struct claim_result {
  bool refused = false;  // a newer connection elsewhere won
  bool found = false;    // `session` came from `from`
  peer_id from = 0;
  moved_session session;
};

// Why a would-be peer was refused (flock_cluster_peers_refused_total).
enum class peer_refusal : std::uint8_t { certificate, secret, peer_limit, malformed };
inline constexpr const char* peer_refusal_names[] = {"certificate", "secret", "peer_limit", "malformed"};

// A certificate the process presents, as last loaded from its files.
struct certificate_status {
  std::string listener;             // "cluster" or an MQTT listener's address
  std::int64_t not_after_unix = 0;  // 0: none loaded
  std::uint64_t reloads_ok = 0;
  std::uint64_t reloads_failed = 0;
};

// One peer's share of cluster_status.
struct peer_status {
  std::string name;
  std::uint64_t forwarded = 0;
  std::uint64_t dropped = 0;
  std::size_t outbox = 0;
  core::latency_reading route_lag;  // its route changes until applied here, µs
  std::uint32_t protocol = 0;       // the cluster protocol we write to it (both read)
  std::size_t replication_backlog = 0;  // groups of our store it follows, not yet acknowledged
};

// What $SYS and /metrics report about the cluster.
struct cluster_status {
  std::size_t peers_known = 0;
  std::size_t peers_up = 0;
  std::size_t local_routes = 0;  // filters this node announces
  std::uint64_t forwarded = 0;   // copies of publishes sent to peers
  std::uint64_t dropped = 0;     // copies dropped: no stream (QoS 0) or a full outbox
  std::uint64_t unconfirmed = 0; // publisher acks released before a peer confirmed
  std::size_t outbox = 0;        // copies waiting for a peer
  std::uint64_t streams_opened = 0;  // streams to peers that came up (reconnects show here)
  std::uint64_t replication_refused = 0;  // parts from owners this store refused (stale epoch, malformed)
  // Snapshots of partitions (docs/replication.md, 6): copies of ours sent to
  // followers, and copies installed here.
  std::size_t snapshots_sending = 0;
  std::uint64_t snapshots_sent = 0;
  std::uint64_t snapshots_failed = 0;
  std::uint64_t snapshot_bytes_sent = 0;
  std::uint64_t snapshots_installed = 0;
  std::vector<peer_status> peers;    // every known peer, with its own counts
  // Streams refused before they could join, by reason (peer_refusal).
  std::array<std::uint64_t, 4> refused{};
  certificate_status certificate;    // the node certificate (tls on)
  // The replication controller (docs/replication.md), when it runs.
  struct controller_status {
    bool running = false;       // has a Raft log and takes part
    bool leads = false;
    bool lease = false;         // leads, or follows a leader it hears from
    std::string leader;         // node name; empty: unknown
    std::uint64_t term = 0;
    std::uint64_t commit_index = 0;
    std::size_t voters = 0;
    std::size_t members = 0;    // stores in the controller state
    std::size_t fenced = 0;
    replication::partition_set owned;        // partitions this store owns
    replication::partition_set following;    // ... it follows in their ISR
    replication::partition_set catching_up;  // ... it is a replica of outside the ISR (learner, or shrunk)
  } controller;
};

class cluster {
 public:
  virtual ~cluster() = default;

  // The process runs it: start() once the workers run (throws when it
  // cannot listen), stop() before they stop.
  virtual void start() = 0;
  virtual void stop() = 0;
  virtual cluster_status status() = 0;
  // The data directory, for replication: its identity and the controller's
  // log (null with durability memory). Before start().
  virtual void attach_store(controller_log* /*log*/, store_identity /*identity*/) {}
  // The store's side of replication (ports/replication.hpp): the cluster
  // carries an owner's parts to its followers and their acknowledgements
  // back, and applies what owners send here. Before start().
  virtual void attach_replica(replica_store* /*replica*/) {}

  // Local routes: `filter` (plain, or "$share/{group}/{filter}") is now held
  // by `holders` local sessions (0: no longer). Plain filters are announced
  // only on 0 <-> 1, groups on every change (their size weighs the choice of
  // a member cluster-wide).
  virtual void route_changed(std::string_view filter, std::uint32_t holders) = 0;

  // One copy of a publish for `peer`, with the shared groups whose turn fell
  // there. For QoS 1/2, `ack` (not null) is expected here and confirmed once
  // the peer has the copy durable, or once the copy cannot be confirmed
  // (link lost, outbox full); the copy itself is resent after a broken link.
  virtual void forward(peer_id peer, const core::message_ptr& msg, std::vector<shared_pick> picks,
                       const core::remote_ack_ptr& ack) = 0;

  // A retained message was set (non-empty payload) or cleared here.
  virtual void retained_changed(const core::message_ptr& msg) = 0;

  // True while some peer is reachable: a connect must ask the cluster
  // whether the client's session lives elsewhere.
  virtual bool has_peers() const = 0;
  // Asks every reachable peer for `client_id`'s session (want_session) or
  // to drop it. `done` runs once all answered or the claim timed out, on
  // any thread.
  virtual void claim(const std::string& client_id, core::stamp s, bool want_session,
                     std::function<void(claim_result)> done) = 0;
  // The session of `client_id` is (now) here: peers end older copies, and a
  // peer that holds a newer one tells us (cluster_host::end_if_older).
  virtual void announce(const std::string& client_id, core::stamp s) = 0;
  // A session moved here from `from` is durable here: `from` may delete it.
  virtual void session_installed(peer_id from, const std::string& client_id, core::stamp s) = 0;
  // The move from `from` is off (our connection lost): `from` keeps the session.
  virtual void session_declined(peer_id from, const std::string& client_id) = 0;
  // A delivery to a session that is moving to `to`: it follows the session.
  virtual void deliver_to_moved(peer_id to, const std::string& client_id, core::delivery d) = 0;

  // Shutdown, after the MQTT connections closed: hands every session still
  // here to the other nodes and waits until they hold it durably (bounded
  // by the cluster's drain timeout), so a rolling restart loses no queued
  // message.
  virtual void drain() = 0;
};

// One forwarded publish as the receiving node gets it: its own copy (off
// the wire, held by nobody else yet), so it can give it a store id.
struct forwarded_publish {
  std::shared_ptr<core::message> msg;
  std::vector<shared_pick> picks;
};

class cluster_host {
 public:
  virtual ~cluster_host() = default;

  // --- routes ---
  // Peer routes as the peer announced them (holders 0: gone).
  virtual void set_peer_route(peer_id peer, std::string_view filter, std::uint32_t holders) = 0;
  virtual void clear_peer_routes(peer_id peer) = 0;
  // How many local publishes have read the peers' routes so far: read after
  // a route change, every publish numbered above it (message::local_seq)
  // was routed with the change.
  virtual std::uint64_t local_publishes() = 0;
  // Returns once every publish that has read the peers' routes so far has
  // queued its copies for them. Not from inside the core's routing.
  virtual void settle_routing() = 0;

  // --- delivery ---
  // Publishes forwarded by a peer, in its order, delivered to local
  // subscribers only (never forwarded again). `durable` runs once what they
  // gave persistent sessions is on disk.
  virtual void deliver_forwarded(peer_id from, std::vector<forwarded_publish> batch, std::function<void()> durable) = 0;
  // A delivery that follows a session moving here.
  virtual void deliver_to_session(const std::string& client_id, moved_delivery d) = 0;

  // --- retained ---
  // A peer's retained write (an empty payload clears); the newest stamp wins.
  virtual void merge_retained(core::message_ptr msg) = 0;
  // fn for every retained message and every recent clear (an empty-payload
  // message with the clear's stamp), to bring a peer up to date.
  virtual void retained_snapshot(const std::function<void(const core::message_ptr&)>& fn) = 0;
  // An order-independent hash of (topic, stamp) over the retained messages:
  // equal on two nodes when they hold the same ones.
  virtual std::uint64_t retained_digest() = 0;

  // --- sessions ---
  // A peer claims `client_id` with stamp `s`. reply runs once, on any thread.
  virtual void on_claim(peer_id from, const std::string& client_id, core::stamp s, bool want_session,
                        std::function<void(claim_answer)> reply) = 0;
  // The session we handed to `to` is durable there (installed) or not taken.
  // Installed, it stays out of the directory but keeps its routes here and
  // passes what still arrives on to `to` (deliver_to_moved, which drops
  // what no longer needs it) until handover_done: peers that have not yet
  // heard `to`'s routes still route its topics here.
  virtual void on_move_finished(peer_id to, const std::string& client_id, bool installed) = 0;
  // Every peer routes `client_id`'s topics to its new node now (or the wait
  // timed out): the moved session ends here and its routes go.
  virtual void handover_done(const std::string& client_id) = 0;
  // A peer holds `client_id` with stamp `s`: ours ends if it is older.
  virtual void end_if_older(const std::string& client_id, core::stamp s) = 0;
  // fn(client_id, stamp) for every local session (duplicate resolution after a netsplit).
  virtual void local_sessions(const std::function<void(const std::string&, core::stamp)>& fn) = 0;
  // A peer is gone (failure timeout): sessions moving to it stay here.
  virtual void peer_down(peer_id peer) = 0;

  // --- handing sessions over at shutdown (drain; local_sessions lists them) ---
  // Starts moving `client_id`'s session to `to` (as for a claim, but asked
  // by this node); reply runs once, on any thread, with nothing when there
  // is no persistent session to hand over.
  virtual void hand_off(peer_id to, const std::string& client_id,
                        std::function<void(std::optional<moved_session>)> reply) = 0;
  // A peer hands us a session (it is shutting down); done(installed) runs
  // once it is durable here, or with false when a newer session for the id
  // is here already.
  virtual void adopt_session(peer_id from, const std::string& client_id, moved_session s,
                             std::function<void(bool installed)> done) = 0;

  // The hybrid clock stamps come from; remote stamps are observed into it.
  virtual core::hybrid_clock& clock() = 0;
};

}  // namespace flock::ports
