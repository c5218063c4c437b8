#pragma once
// The inside of core::broker, shared by the core's .cpp files and its cluster
// half (broker/clustering). The protocol machine sees only front_door.hpp.
//
// Threading: the directory, the subscription index and the retained index are
// shared by all workers behind their own locks, each held only for a lookup
// or an update, never across I/O or a call into a session. Sessions are
// reached through their owner worker (see session.hpp). `timed_` and the stats
// blocks are per worker.
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "broker/core/broker.hpp"
#include "broker/core/cluster_side.hpp"
#include "broker/core/delivery.hpp"
#include "broker/core/delivery_mailbox.hpp"
#include "broker/core/front_door.hpp"
#include "broker/core/journal.hpp"
#include "broker/core/message.hpp"
#include "broker/core/remote_ack.hpp"
#include "broker/core/retained_index.hpp"
#include "broker/core/session.hpp"
#include "broker/core/stats.hpp"
#include "broker/core/subscription_index.hpp"
#include "broker/replication/partition.hpp"

namespace flock::core {

struct broker::impl {
  impl(broker_config cfg, ports::executor& ex, ports::clock& clk);

  broker_config config;
  ports::executor& executor;
  ports::clock& clock;
  const ports::time_point started;
  std::vector<worker_stats> stats;  // one per worker
  std::atomic<std::int64_t> clients_connected{0};
  std::atomic<std::int64_t> clients_maximum{0};
  const ports::authenticator* authenticator = nullptr;
  const ports::authorizer* authorizer = nullptr;  // null: no topic access checks at all
  journal persistence;  // durable state; disabled (no store) with durability "memory"
  // The cluster as routing, the retained index and the directory see it
  // (never null: single_node without peers).
  std::unique_ptr<cluster_side> cluster;
  // Session and stored-message ids (see ports/store.hpp); seeded by restore().
  std::atomic<std::uint64_t> next_id{1};
  std::uint64_t new_id() { return next_id.fetch_add(1, std::memory_order_relaxed); }
  // A session id names its client's partition (replication/partition.hpp).
  std::uint64_t new_session_id(std::string_view client_id) {
    return replication::make_session_id(replication::partition_of(client_id), new_id());
  }

  ports::worker_id current() const { return executor.current_worker(); }
  worker_stats& my_stats() { return stats[current()]; }
  ports::time_point now() const { return clock.now(); }

  // --- sessions (session_directory.cpp) ---
  // Finds, resumes or creates the session for `client_id` and hands it to
  // `requester` on the calling worker (at once, or after a takeover on
  // another worker). Expiry 0 with clean_start=false still resumes.
  void open_session(const std::string& client_id, bool clean_start, std::weak_ptr<session_requester> requester);
  // Gives `s` to the connection waiting on worker `w` (on s's owner).
  void hand_over(const std::shared_ptr<session>& s, ports::worker_id w, std::weak_ptr<session_requester> requester,
                 bool session_present = true);
  // The connection attached to `s` went away (called on s's owner).
  void on_session_detached(const std::shared_ptr<session>& s, std::optional<message_ptr> will,
                           std::uint32_t will_delay);
  // Ends a session: drops subscriptions, queue, in-flight; publishes a pending will.
  void end_session(const std::shared_ptr<session>& s);
  // Runs `fn` on s's owner worker (now, if that is the caller), following moves.
  void run_on_owner(std::shared_ptr<session> s, std::function<void(const std::shared_ptr<session>&)> fn);
  std::size_t session_count();
  broker_metrics metrics();  // any thread
  std::optional<queue_reading> queue_depths(std::chrono::milliseconds timeout);  // not on a worker

  // --- subscriptions (subscriptions.cpp) ---
  using subscription_change = core::subscription_change;  // front_door.hpp
  subscription_change subscribe(const std::shared_ptr<session>& s, const std::string& filter,
                                const subscription_options& opts);
  subscription_change unsubscribe(const std::shared_ptr<session>& s, const std::string& filter);
  std::vector<message_ptr> retained_for(std::string_view filter);
  std::size_t subscription_count();

  // --- routing (router.cpp) ---
  using publish_result = core::publish_result;  // front_door.hpp
  // Stores/clears a retained message, then routes. QoS 1/2 deliveries to
  // persistent sessions are written to the store (message once, one queued
  // record per session) before anything is posted to another worker.
  // `publisher_op` (the publisher's incoming QoS 2 id) is written in the same
  // group as the message: a restart knows both or neither.
  publish_result publish(const message_ptr& msg, std::optional<ports::store_op> publisher_op = std::nullopt);
  // `forwarded`: the message came from a peer, which chose `picks` (the
  // shared groups whose turn is ours); it is delivered locally only.
  publish_result route(const message_ptr& msg, std::vector<ports::store_op>& ops,
                       const std::vector<ports::shared_pick>* forwarded = nullptr);
  // Hands deliveries for sessions of worker `w` over from another worker
  // (delivery_mailbox.hpp); drain_mailbox runs on `w`.
  void send_to_worker(ports::worker_id w, std::vector<delivery_mailbox::item>& batch);
  void drain_mailbox(ports::worker_id w);
  std::vector<std::unique_ptr<delivery_mailbox>> mailboxes;  // one per worker
  // A will's Message Expiry Interval counts from when it is published, not
  // from CONNECT (MQTT 5 3.1.3.2.4): the interval rides in the will's props
  // until then and becomes the deadline here.
  void publish_will(const message_ptr& will);

  // --- timers and $SYS (broker.cpp) ---
  void on_tick(ports::worker_id w);
  void publish_sys();
  void watch(const std::shared_ptr<session>& s);  // has an expiry or a delayed will

  // --- durable state (restore.cpp) ---
  // Start-up, before any connection: sessions, subscriptions, queues and
  // retained messages from the store. Sessions go round robin to workers;
  // expired ones end (and send their wills) on the first tick.
  void restore(ports::restored_state state);

  std::mutex directory_mutex;
  std::unordered_map<std::string, std::shared_ptr<session>> directory;

  std::shared_mutex index_mutex;
  subscription_index index;
  // Under index_mutex (exclusive), after `filter` changed: tells the cluster
  // (`before`: holders() before the change).
  void note_route(std::string_view filter, std::size_t before);

  std::shared_mutex retained_mutex;
  retained_index retained;

  // Per worker: offline sessions with an expiry or a delayed will pending.
  std::vector<std::unordered_map<session*, std::shared_ptr<session>>> timed;
  ports::time_point last_sys{};
};

// The cluster side of a node without peers (single_node.cpp).
std::unique_ptr<cluster_side> make_single_node(broker::impl& b);

}  // namespace flock::core
