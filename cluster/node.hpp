#pragma once
// This node's membership in the cluster (docs/clustering.md): finds peers
// (seeds, DNS, what peers tell), keeps one stream to each, heartbeats and
// declares silent peers down, replicates routes both ways, forwards
// publishes, replicates retained messages, and carries session claims and
// moves. Implements ports::cluster for the core and calls back through
// ports::cluster_host.
//
// Threads: one thread of its own (an io_context: timers, membership, route
// replicas, claims); the transport's threads deliver stream events; workers
// call the ports::cluster methods, which only lock an outbox or post here.
// Lifetime: start() after the core is wired, stop() before the workers stop.
#include "broker/server/asio.hpp"

#include <array>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "broker/ports/cluster.hpp"
#include "cluster/options.hpp"
#include "cluster/peer.hpp"
#include "cluster/peer_refusals.hpp"
#include "cluster/route_table.hpp"
#include "cluster/transport.hpp"

namespace flock::cluster {
namespace asio = boost::asio;

class cluster_tls;
class controller_host;

class node final : public ports::cluster {
 public:
  static constexpr std::size_t max_peers = 256;

  // `tls`: the certificates the transport uses, reloaded and reported
  // here (null: plaintext). `refusals`: shared with the transport's TLS.
  node(options opts, ports::cluster_host& host, std::unique_ptr<transport> t,
       std::shared_ptr<peer_refusals> refusals = std::make_shared<peer_refusals>(),
       std::shared_ptr<cluster_tls> tls = nullptr);
  ~node() override;
  node(const node&) = delete;
  node& operator=(const node&) = delete;

  // Listens (throws std::runtime_error if it cannot), starts the thread,
  // dials the seeds and waits (join_timeout at most) until they answered.
  void start() override;
  // Tells peers we leave, closes every stream, joins the thread. Idempotent.
  void stop() override;

  ports::cluster_status status() override;
  // How many peers the hand-over of a session moved from here still waits
  // for (tests); nullopt: none open. Not from the node's thread.
  std::optional<std::size_t> handover_waits(const std::string& client_id);
  // The slot of a peer by name (tests, $SYS); nullopt if never heard of.
  std::optional<ports::peer_id> peer_id(const std::string& name) {
    auto* p = find_peer(name);
    return p ? std::optional<ports::peer_id>(p->id) : std::nullopt;
  }
  int bound_port() const { return transport_->bound_port(); }
  const std::string& name() const { return opts_.node_name; }

  // --- ports::cluster (workers) ---
  void route_changed(std::string_view filter, std::uint32_t holders) override;
  void forward(ports::peer_id peer, const core::message_ptr& msg, std::vector<ports::shared_pick> picks,
               const core::remote_ack_ptr& ack) override;
  void retained_changed(const core::message_ptr& msg) override;
  bool has_peers() const override { return peers_up_.load(std::memory_order_acquire) > 0; }
  void claim(const std::string& client_id, core::stamp s, bool want_session,
             std::function<void(ports::claim_result)> done) override;
  void announce(const std::string& client_id, core::stamp s) override;
  void session_installed(ports::peer_id from, const std::string& client_id, core::stamp s) override;
  void session_declined(ports::peer_id from, const std::string& client_id) override;
  void deliver_to_moved(ports::peer_id to, const std::string& client_id, core::delivery d) override;
  void drain() override;
  void attach_store(ports::controller_log* log, ports::store_identity identity) override;

 private:
  friend class inbound_handler;
  friend class outbound_handler;

  // --- membership (node.cpp) ---
  peer* find_peer(const std::string& name);
  // Creates the slot; any thread. Null (refused and counted) when the
  // table is full: a hostile or broken peer cannot end the node.
  peer* peer_named(const std::string& name);
  template <class F>
  void for_each_peer(F&& fn) {
    const auto n = peer_count_.load(std::memory_order_acquire);
    for (std::uint32_t i = 0; i < n; ++i)
      if (peer* p = peers_[i].load(std::memory_order_acquire)) fn(*p);
  }
  // The peer in a slot, or null (never used, or forgotten). Any thread.
  peer* slot(ports::peer_id id) const {
    return id < peer_count_.load(std::memory_order_acquire) ? peers_[id].load(std::memory_order_acquire) : nullptr;
  }
  // Frees the slots of peers gone for forget_after (node thread).
  void forget_departed(ports::time_point now);
  void wait_joined(std::chrono::milliseconds timeout);
  void tick();
  void arm_tick();
  // A stream to `address` with our hello written: p's stream, or a probe (p null).
  std::shared_ptr<outbound_link> open_stream(const std::string& address, peer* p);
  void dial(peer& p);
  void probe(const std::string& address);
  wire::Batch hello_reply(std::uint64_t applied_seq);
  void resolve_dns();
  void learn(const wire::Member& m);
  void fill_self(wire::Member& m) const;
  void fill_members(google::protobuf::RepeatedPtrField<wire::Member>& out);
  void mark_up(peer& p);
  void mark_down(peer& p, const char* why);
  void on_connected(peer& p, const std::shared_ptr<outbound_link>& link, const wire::HelloReply& reply);
  void on_outbound_closed(peer* p, const std::shared_ptr<outbound_link>& link, const std::string& probe_address);
  void send_state(peer& p, bool retained);
  void send_route_snapshot(peer& p);
  void send_retained_snapshot(peer& p);
  void send_sessions(peer& p);
  void heartbeat(peer& p);

  // --- frames from peers (node_inbound.cpp) ---
  std::shared_ptr<inbound_events> accept(std::shared_ptr<inbound_link> link);
  void on_control(peer& p, std::uint64_t incarnation, std::vector<wire::Frame> frames,
                  const std::shared_ptr<inbound_link>& link);
  void on_route_snapshot(peer& p, const wire::RouteSnapshot& s, const std::shared_ptr<inbound_link>& link);
  void on_route_delta(peer& p, const wire::RouteDelta& d, const std::shared_ptr<inbound_link>& link);
  void on_heartbeat(peer& p, const wire::Heartbeat& h, const std::shared_ptr<inbound_link>& link);
  void ask_resync(peer& p, const std::shared_ptr<inbound_link>& link);

  // --- sessions (node_sessions.cpp) ---
  struct pending_claim {
    std::string client_id;
    core::stamp stamp;
    bool want = false;
    std::function<void(ports::claim_result)> done;  // null: an announce
    std::set<ports::peer_id> waiting;
    std::vector<std::pair<ports::peer_id, ports::moved_session>> sessions;
    bool refused = false;
    ports::time_point deadline;
  };
  void start_claim(pending_claim c);
  void on_claim(peer& p, const wire::Claim& c);
  void on_claim_answer(peer& p, wire::ClaimAnswer& a);
  void finish_claim(std::uint64_t id);
  void forget_peer_in_claims(ports::peer_id p);
  void expire_claims(ports::time_point now);
  void on_handoff(peer& p, wire::Handoff& h);
  void finish_move(peer& p, std::uint64_t incarnation, const wire::MoveFinished& m);
  // Tells `to` whether we hold the session it handed us; installed, with
  // our route sequence and the last publish we forwarded to it (any thread).
  void send_move_finished(peer& to, const std::string& client_id, bool installed);
  // A session of ours moves again: the hand-over of an earlier move of it ends.
  void new_move(const std::string& client_id);
  // What the peer in `id` reads (protocol_first when it is gone). Any thread.
  std::uint32_t protocol_of(ports::peer_id id) const;
  // Runs fn on the node's thread: at once when called there, else posted.
  // With one thread Asio keeps a post made from that thread in a private
  // queue until the running handler returns, behind what other threads
  // post meanwhile: a peer's answer to a frame sent after the post (a
  // MoveFinished) would then be handled before what the post registers.
  template <class F>
  void on_node_thread(F&& fn) {
    if (io_.get_executor().running_in_this_thread()) fn();
    else asio::post(io_, std::forward<F>(fn));
  }

  // --- route hand-over after a move (node_handover.cpp) ---
  // The old node of a moved session keeps routing for it, passing on what
  // arrives (deliver_to_moved), until every peer that was up holds the new
  // node's routes up to the sequence its MoveFinished named and we have
  // routed what that peer forwarded before; then the core drops it.
  struct handover {
    std::string client_id;
    ports::peer_id to = 0;
    std::uint64_t to_incarnation = 0;
    std::uint64_t route_seq = 0;
    bool self_pending = false;  // our own replica of `to` is not there yet
    // Once it is: our own publishes up to this number (message::local_seq)
    // may have reached `to` before the session did, so they are passed on.
    std::uint64_t self_through = 0;
    struct reached {
      std::uint64_t incarnation = 0;
      std::uint64_t forward_seq = 0;  // routed here up to this: done
    };
    // Peers that may still route the session's topics here only (the new
    // node too: what it forwarded before it held the session). Not reached
    // yet: everything from them is passed on; reached: up to forward_seq.
    std::map<ports::peer_id, std::optional<reached>> waiting;
    // Peers no longer waited for (reached, or gone): what they sent up to
    // this is still passed on, as it may still be queued here for the
    // session's worker.
    std::map<ports::peer_id, std::uint64_t> waited;
    ports::time_point deadline;
  };
  // Not a slot: publishes from this node's own clients, in relaying_.
  static constexpr ports::peer_id self_origin = max_peers;
  void start_handover(peer& to, std::uint64_t to_incarnation, const wire::MoveFinished& m);
  void ask_barrier(peer& p, std::uint64_t id, const handover& h);
  void check_handover(std::uint64_t id, ports::time_point now);
  void check_handovers(ports::time_point now);
  void finish_handover(std::uint64_t id);  // tells the core; a drain stops waiting for it
  std::optional<std::string> drop_handover(std::uint64_t id);  // only forgets it; its client id
  void forget_peer_in_handovers(ports::peer_id p);
  void include_in_handovers(peer& p);
  bool holds_routes_of(const peer& b, std::uint64_t incarnation, std::uint64_t route_seq) const;
  void update_relaying(const handover& h);
  // The other side: a peer asks when we hold a node's routes up to a point.
  struct barrier {
    ports::peer_id from = 0;
    std::uint64_t id = 0;
    std::string node;
    std::uint64_t incarnation = 0;
    std::uint64_t route_seq = 0;
    ports::time_point deadline;
  };
  void on_route_barrier(peer& p, const wire::RouteBarrier& b);
  void on_route_barrier_reached(peer& p, std::uint64_t incarnation, const wire::RouteBarrierReached& r);
  bool answer_if_reached(const barrier& b);  // true: answered, or nobody asks any more
  void check_barriers(ports::time_point now);

  options opts_;
  ports::cluster_host& host_;
  std::unique_ptr<transport> transport_;
  std::shared_ptr<peer_refusals> refusals_;
  std::shared_ptr<cluster_tls> tls_;
  std::string secret_;  // the cluster secret (empty: none)
  const std::uint64_t incarnation_;
  std::string advertise_;

  asio::io_context io_{1};
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  asio::steady_timer tick_timer_;
  std::thread thread_;
  bool started_ = false;
  bool stopped_ = false;
  std::atomic<bool> stopping_{false};

  std::mutex peers_mutex_;  // creating and freeing slots, the name map
  // Workers read slots without a lock: a forgotten peer's object stays in
  // retired_ for a while after its slot is cleared, so a worker that loaded
  // the pointer just before finishes its call on a live object.
  std::array<std::atomic<peer*>, max_peers> peers_{};
  std::array<std::shared_ptr<peer>, max_peers> owned_;
  std::vector<std::pair<std::shared_ptr<peer>, ports::time_point>> retired_;  // node thread
  std::atomic<std::uint32_t> peer_count_{0};  // slots ever used (the high-water mark)
  std::unordered_map<std::string, peer*> by_name_;
  std::atomic<int> peers_up_{0};
  std::atomic<std::uint64_t> streams_opened_{0};

  // Our routes and the order they changed in (workers, under the core's
  // index lock); peer.routes_live says who hears the deltas.
  std::mutex routes_mutex_;
  route_set routes_;
  std::uint64_t route_seq_ = 0;

  // Node thread.
  std::map<std::string, ports::time_point> probes_;  // seed/DNS address -> next probe
  // Probes under way: closed if the address does not answer in failure_timeout.
  std::map<std::string, std::pair<std::shared_ptr<outbound_link>, ports::time_point>> probing_;
  std::set<std::string> self_addresses_;
  std::map<std::string, std::string> probed_names_;  // seed/DNS address -> the node that answered there
  ports::time_point next_dns_{};
  ports::time_point next_tls_check_{};
  std::uint64_t next_claim_id_ = 1;
  std::unordered_map<std::uint64_t, pending_claim> claims_;
  std::map<std::string, std::pair<ports::peer_id, ports::time_point>> moves_;  // handed over, awaiting MoveFinished
  std::unordered_map<std::uint64_t, handover> handovers_;
  std::unordered_map<std::string, std::uint64_t> handover_of_;  // client id -> its open hand-over
  std::uint64_t next_handover_id_ = 1;
  std::vector<barrier> barriers_;  // asked by peers, not reached yet
  // Client id -> origins (peer slots, self_origin) whose publishes a moved
  // session still passes on, up to which sequence number on their stream;
  // the rest reach the new node directly. Read by workers in deliver_to_moved.
  std::mutex relay_mutex_;
  std::unordered_map<std::string, std::map<ports::peer_id, std::uint64_t>> relaying_;
  // Hand-overs that ended: their relaying_ entry stays until this time (node
  // thread), as the moved session is dropped here a little later and may
  // still see deliveries; passing those all on would duplicate them.
  std::unordered_map<std::string, ports::time_point> relaying_ended_;
  void forget_ended_relaying(ports::time_point now);
  // The client's session comes here or leaves again: an ended hand-over's
  // filter no longer applies to it.
  void stop_relaying(const std::string& client_id);

  // Drain at shutdown (node thread; drain() waits on the condition).
  std::size_t drain_replies_ = 0;          // hand_off answers still to come
  std::map<std::string, ports::peer_id> drain_waiting_;  // handed over, not yet confirmed, to whom
  std::condition_variable drained_cv_;
  std::mutex drain_mutex_;

  std::mutex joined_mutex_;
  std::condition_variable joined_cv_;
  std::set<std::string> seeds_pending_;

  // --- replication streams (node_replication.cpp): our store's parts to
  // the followers' peers, theirs applied here, acknowledgements both ways ---
 public:
  void attach_replica(ports::replica_store* replica) override;
 private:
  struct replication_out final : ports::replication_stream {
    explicit replication_out(node& n) : n(n) {}
    void send(const replication::store_id& follower, std::uint64_t group,
              std::vector<ports::replicated_part_ptr> parts) override;
    node& n;
  };
  peer* peer_by_store(const ports::store_identity& store);
  void on_replicate(peer& p, const wire::Replicate& r, const std::shared_ptr<inbound_link>& link);
  void on_replicate_ack(peer& p, const wire::ReplicateAck& a);
  // As an owner: shrink lagging followers from our partitions' ISRs, take
  // caught-up ones back (through the controller's leader).
  void request_isr_changes(ports::time_point now);
  void on_controller_request(peer& p, const wire::ControllerRequest& r);
  std::map<replication::store_id, std::map<replication::partition_id, ports::partition_position>> follower_positions_;
  ports::time_point next_isr_requests_{};

  // As an owner: copies of our partitions on their way to followers that
  // have none, or one that does not follow ours (they answered a part with
  // `gap`): the store's snapshot, one chunk in flight, on the bulk lane.
  struct snapshot_transfer {
    std::uint64_t id = 0;          // the store's snapshot (0: not taken yet)
    bool streaming = false;        // a chunk is on its way or being read
    std::uint64_t group = 0;       // the copy holds the groups before this one
    std::uint64_t next_seq = 0;
    std::uint64_t bytes = 0;
    ports::time_point touched{};
  };
  // A follower's acknowledgements, in group order, until they can be handed
  // to the store: a group whose part of P the follower could not apply
  // (gap) counts once a snapshot of P taken after it is installed there.
  struct follower_acks {
    struct group {
      std::uint64_t id;
      std::set<replication::partition_id> gaps;
    };
    std::deque<group> pending;
    std::uint64_t last = 0;  // the newest group it answered
  };
  std::map<replication::store_id, follower_acks> follower_acks_;
  void follower_answered(const replication::store_id& f, std::uint64_t group, std::set<replication::partition_id> gaps);
  void pass_acknowledgements(const replication::store_id& f);
  using transfer_key = std::pair<replication::store_id, replication::partition_id>;
  static constexpr std::size_t snapshot_chunk_bytes = 256u << 10;
  static constexpr std::size_t max_transfers_per_follower = 4;
  static constexpr ports::duration transfer_timeout = std::chrono::seconds(10);
  void start_snapshot(const transfer_key& k);
  std::vector<transfer_key> transfers_to(const replication::store_id& f) const;
  // Where our store's copies stand (replica_ attached).
  std::map<replication::partition_id, ports::partition_position> own_positions() const;
  void send_snapshot_chunk(const transfer_key& k);
  void end_transfer(const transfer_key& k, const char* why);
  void expire_transfers(ports::time_point now);
  // A stream to a peer is up: where its copies stand (its hello reply), and
  // our snapshots to it start again (their chunks went with the old stream).
  void follower_connected(peer& p, const wire::HelloReply& reply);
  // Followers of our partitions whose copy is not ours while nothing is on
  // its way to them (an idle partition after a restart, a copy written
  // before replication) get a snapshot once that lasted a second.
  void catch_up_followers(ports::time_point now);
  // A peer forgotten for good: what we kept about its copies goes too.
  void forget_follower(const replication::store_id& f);
  std::map<transfer_key, ports::time_point> behind_since_;
  void on_snapshot_chunk(peer& p, const wire::SnapshotChunk& c, const std::shared_ptr<inbound_link>& link);
  void on_snapshot_chunk_ack(peer& p, const wire::SnapshotChunkAck& a);
  std::map<transfer_key, snapshot_transfer> transfers_;
  // The byte budget of every transfer together (a token bucket refilled by
  // the tick; bursts of at most a tenth of a second's worth, or a chunk).
  double snapshot_tokens_ = 0;
  ports::time_point snapshot_refill_{};
  std::deque<transfer_key> snapshot_waiting_;  // their next chunk waits for the budget
  bool take_snapshot_budget();
  void refill_snapshot_budget(ports::time_point now);
  struct snapshot_counters {
    std::atomic<std::size_t> sending{0};
    std::atomic<std::uint64_t> sent{0}, failed{0}, bytes{0}, installed{0};
  };
  std::shared_ptr<snapshot_counters> snapshot_counters_ = std::make_shared<snapshot_counters>();
  // The store's callbacks reach the node's thread through this, closed when
  // the node stops (they run on the store's writer thread).
  struct replica_gate {
    std::mutex mutex;
    node* n = nullptr;
    template <class F>
    void post(F&& f) {
      std::lock_guard lock(mutex);
      if (n) asio::post(n->io_, std::forward<F>(f));
    }
  };
  std::shared_ptr<replica_gate> replica_gate_ = std::make_shared<replica_gate>();
  ports::replica_store* replica_ = nullptr;
  replication_out replication_out_{*this};
  std::shared_ptr<std::atomic<std::uint64_t>> replication_refused_ = std::make_shared<std::atomic<std::uint64_t>>(0);

  // --- the replication controller (node_controller.cpp), when
  // opts_.replication_factor > 0; node thread ---
  void start_controller();
  void tick_controller(ports::time_point now);
  void on_raft(peer& p, const wire::Raft& r);
  void update_roles();
  std::uint64_t roles_applied_index_ = 0;
  // What a peer's hello (or hello reply) says of its controller.
  void learn_controller(peer& p, const wire::Member& m);
  wire::ControllerState controller_state() const;
  ports::controller_log* controller_log_ = nullptr;
  ports::store_identity store_identity_;
  std::unique_ptr<controller_host> controller_;
  // What hellos say of it (wire::ControllerState): fill_self() also runs
  // on transport threads. Set on the node's thread.
  std::atomic<int> controller_state_{0};
  // What status() reports of it (any thread).
  mutable std::mutex controller_view_mutex_;
  ports::cluster_status::controller_status controller_view_;
};

}  // namespace flock::cluster
