#pragma once
// A client's session: subscriptions, queued messages, outgoing in-flight QoS
// 1/2 messages, incoming QoS 2 packet ids, the delayed will, and expiry.
//
// Threading: a session is owned by exactly one worker at a time (`owner()`),
// and only that worker touches the fields below. It moves to another worker
// only when a client resumes it there (broker::impl::takeover). Anyone else
// reaches it by posting to the owner; a task that arrives after a move
// re-posts itself to the new owner.
// Lifetime: shared by the directory, the subscription index and queued tasks;
// `ended()` sessions drop everything delivered to them.
#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>

#include "broker/core/delivery.hpp"
#include "broker/core/lazy_deque.hpp"
#include "broker/core/journal.hpp"
#include "broker/core/subscription_index.hpp"
#include "broker/ports/clock.hpp"
#include "broker/ports/cluster.hpp"
#include "broker/ports/executor.hpp"
#include "broker/replication/partition.hpp"

namespace flock::core {

struct broker_config;
struct worker_stats;

class session {
 public:
  // `id` names this incarnation in the store (a clean start makes a new one).
  session(std::string client_id, std::uint64_t id, ports::worker_id owner, const broker_config& config,
          journal& persistence);

  const std::string& client_id() const { return client_id_; }
  std::uint64_t id() const { return id_; }
  replication::partition_id partition() const { return replication::partition_of_session(id_); }
  // Read by publishers on any worker: QoS 1/2 deliveries to this session are
  // written to the store before the publisher is acknowledged.
  bool stores_messages() const { return stores_messages_.load(std::memory_order_acquire); }
  ports::worker_id owner() const { return owner_.load(std::memory_order_acquire); }
  void set_owner(ports::worker_id w) { owner_.store(w, std::memory_order_release); }
  // Read from any thread (shared-subscription member choice prefers online ones).
  bool online() const { return online_.load(std::memory_order_relaxed); }
  // Latest connection that claimed this session; older claims give way.
  std::uint64_t claim() const { return claim_.load(std::memory_order_acquire); }
  std::uint64_t new_claim() { return claim_.fetch_add(1, std::memory_order_acq_rel) + 1; }

  // The claim this session was last created or resumed under: the newest
  // claim on a client id wins across the cluster. Under the directory lock.
  stamp claimed() const { return claimed_; }
  void set_claimed(stamp s) { claimed_ = s; }

  // --- owner-thread only below ---
  bool ended() const { return ended_; }
  void mark_ended() { ended_ = true; }

  // --- cluster: a session whose state may be on another node ---
  // Created by a connect while the cluster is asked for the client's
  // session: the connection waits (parked) until the answer is in. A newer
  // connect takes the place of the parked one, which is refused.
  bool awaiting_transfer() const { return travel_ && travel_->awaiting_transfer; }
  void await_transfer() { travel().awaiting_transfer = true; }
  struct parked_requester {
    std::weak_ptr<session_requester> requester;
    ports::worker_id worker = 0;
  };
  // Parks `r`; returns the one it replaces (to be refused), if any.
  std::optional<parked_requester> park(parked_requester r);
  // The answer is in: the parked connection (if any) gets the session.
  std::optional<parked_requester> transfer_done();
  // Takes the state that came from the old node (before it is attached):
  // queue first, then whatever was delivered here while it travelled.
  // Returns the store ops that make it durable here.
  void absorb(ports::moved_session m, std::vector<ports::store_op>& ops,
              const std::function<std::uint64_t()>& new_id);
  // A message that came from another node for this session, as this node's
  // own copy: a QoS 1/2 one gets a store id and its records in `ops` when
  // the session stores messages (a queued record unless `queued` is false).
  delivery adopt(ports::moved_delivery& md, bool queued, std::vector<ports::store_op>& ops,
                 const std::function<std::uint64_t()>& new_id);
  // Handed to `to`: deliveries follow the session there until the move is
  // finished (dropped here) or declined (it stays).
  ports::moved_session start_moving(ports::peer_id to, ports::cluster* cluster);
  void stop_moving() {
    if (travel_) travel_->moving.reset();
  }
  bool moving() const { return travel_ && travel_->moving; }
  ports::peer_id moving_to() const { return moving() ? travel_->moving->to : 0; }

  // Attaches a connection and resends in-flight messages (DUP) and PUBRELs,
  // then drains the queue. Clears the delayed will (resumed in time).
  void attach(session_sink* sink, worker_stats& stats);
  void detach();
  session_sink* sink() const { return sink_; }

  // Queues or sends one delivery. Counts drops in `stats`.
  void deliver(delivery d, ports::time_point now, worker_stats& stats);
  // Sends queued messages while the window and the transport allow, a
  // bounded number per call (the next call comes when the transport drained).
  void pump(ports::time_point now, worker_stats& stats);
  // Retained messages for a new subscription: queued behind what is waiting
  // (never dropped for queue space: the subscriber asked for all of them),
  // then sent paced by pump().
  void enqueue_all(std::vector<delivery>& ds, ports::time_point now, worker_stats& stats);

  // Acks from the client. Return false when the packet id is unknown.
  bool on_puback(std::uint16_t id);
  bool on_pubrec(std::uint16_t id, bool failed);
  bool on_pubcomp(std::uint16_t id);
  std::size_t inflight_count() const { return inflight_.size(); }
  std::size_t queued_count() const { return queue_.size(); }

  // Incoming QoS 2: ids received and PUBREC'd, waiting for PUBREL.
  std::unordered_set<std::uint16_t>& incoming_qos2() { return incoming_qos2_; }

  // Subscriptions by filter (as the client wrote it, $share/ included).
  std::map<std::string, subscription_options, std::less<>>& subscriptions() { return subscriptions_; }

  // Expiry: seconds after disconnect; 0 = ends with the connection.
  std::uint32_t expiry_interval() const { return expiry_interval_; }
  void set_expiry_interval(std::uint32_t s) { expiry_interval_ = s; }

  // --- durable state (no-ops without a store) ---
  // Writes the session record (expiry, online or offline, delayed will) when
  // the session is persistent or already has a record; returns its ticket.
  journal::ticket save(bool online);
  // The session record as save() writes it.
  ports::session_put record(bool online) const;
  // The session ended: deletes its record and everything under it, and lets
  // go of the stored messages it referenced.
  void forget_stored();
  bool has_record() const { return has_record_; }
  // Start-up: state loaded from the store (the session has a record).
  // Queued messages already past their expiry are purged.
  void restore(const ports::restored_session& r, ports::time_point now);
  std::optional<ports::time_point> expires_at() const { return expires_at_; }
  void set_expires_at(std::optional<ports::time_point> t) { expires_at_ = t; }

  // A will waiting for its delay (or for the session to end).
  struct pending_will {
    message_ptr msg;
    ports::time_point due;
  };
  std::optional<pending_will>& will() { return will_; }

 private:
  void enqueue(delivery d, worker_stats& stats, bool bounded);
  bool send_now(delivery& d, ports::time_point now, worker_stats& stats);
  std::uint16_t next_packet_id();
  // The delivery is dropped or done: its stored record and message reference go.
  void drop_queued(const delivery& d);
  void drop_inflight(const inflight_message& m);

  const std::string client_id_;
  const std::uint64_t id_;
  const broker_config& config_;
  journal& journal_;
  bool has_record_ = false;
  std::atomic<bool> stores_messages_{false};
  std::atomic<ports::worker_id> owner_;
  std::atomic<bool> online_{false};
  std::atomic<std::uint64_t> claim_{0};

  bool ended_ = false;
  stamp claimed_;
  // What a session between nodes needs, allocated only for those: most
  // sessions never travel, and every byte here is per connection.
  struct moving_state {
    ports::peer_id to = 0;
    ports::cluster* cluster = nullptr;
  };
  struct travel_state {
    bool awaiting_transfer = false;
    std::optional<parked_requester> parked;
    std::optional<moving_state> moving;
  };
  travel_state& travel() {
    if (!travel_) travel_ = std::make_unique<travel_state>();
    return *travel_;
  }
  std::unique_ptr<travel_state> travel_;
  session_sink* sink_ = nullptr;
  lazy_deque<delivery> queue_;
  // In send order; small (bounded by the in-flight window).
  lazy_deque<inflight_message> inflight_;
  std::unordered_set<std::uint16_t> incoming_qos2_;
  std::map<std::string, subscription_options, std::less<>> subscriptions_;
  std::uint16_t last_packet_id_ = 0;
  std::uint32_t expiry_interval_ = 0;
  std::optional<ports::time_point> expires_at_;
  std::optional<pending_will> will_;
};

}  // namespace flock::core
