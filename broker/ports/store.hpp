#pragma once
// Durable state: persistent sessions (with their subscriptions, queued and
// in-flight messages, incoming QoS 2 ids, delayed will) and retained messages.
//
// The core describes every change as a store_op. append() adds ops to one
// log in call order, from any thread: that order is the order of changes in
// the whole broker, so an op that causally follows another (a delivery after
// the publish that stored it, a takeover after the old owner's writes) is
// never committed before it. The store commits the log in groups (one
// WriteBatch for everything appended meanwhile, from every connection); a
// ticket names the group an op went into. when_durable(t) runs a callback on
// a worker once group t is on disk, which is when the core releases what
// depended on it (PUBACK, PUBREC, SUBACK, CONNACK, a QoS 2 PUBLISH to a
// subscriber...).
//
// The core never reads the store on the hot path: load() runs once at
// start-up and the core rebuilds its memory state from it.
//
// Time: ops and loaded state carry ports::time_point (monotonic); the store
// converts to and from wall-clock time, so expiry keeps counting while the
// broker is down.
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "broker/core/delivery.hpp"
#include "broker/core/histogram.hpp"
#include "broker/core/message.hpp"
#include "broker/core/subscription_index.hpp"
#include "broker/ports/clock.hpp"
#include "broker/ports/controller_log.hpp"
#include "broker/ports/executor.hpp"
#include "broker/ports/replication.hpp"

namespace flock::ports {

// --- ops ---
// Ids: a session id names one incarnation of a client's session (a clean
// start gets a new one, so late writes for the old one never touch the new);
// a message id names one stored message. Both come from one counter that
// load() seeds above every stored id.

// Creates or replaces the session record.
struct session_put {
  std::uint64_t session_id = 0;
  std::string client_id;
  std::uint32_t expiry_interval = 0;     // seconds
  std::optional<time_point> expires_at;  // offline with a deadline; nullopt: online, or never expires
  bool online = false;                   // if the broker stops while it is online, expiry counts from start-up
  core::message_ptr will;                // a delayed will waiting for will_due, or null
  std::optional<time_point> will_due;
  core::stamp claimed;                   // the claim it was last resumed under (cluster)
};
// The session record and everything stored under the session id.
struct session_delete {
  std::uint64_t session_id = 0;
};
struct subscription_put {
  std::uint64_t session_id = 0;
  std::string filter;  // as the client wrote it, $share/ included
  core::subscription_options options;
};
struct subscription_delete {
  std::uint64_t session_id = 0;
  std::string filter;
};
// The message (topic, payload, qos, retain, forwarded properties, expiry,
// publisher) under msg->id, once in each of msg->partitions (every
// partition whose sessions reference it; session ids carry their partition,
// replication/partition.hpp).
struct message_put {
  core::message_ptr msg;
};
// Every copy of the message: those in `partitions`.
struct message_delete {
  std::uint64_t message_id = 0;
  replication::partition_set partitions;
};
// Per-subscriber parts of a queued or in-flight delivery.
struct delivery_meta {
  std::uint8_t qos = 0;
  bool retain = false;
  std::vector<std::uint32_t> subscription_ids;
};
struct queued_put {
  std::uint64_t session_id = 0;
  std::uint64_t message_id = 0;
  delivery_meta meta;
};
struct queued_delete {
  std::uint64_t session_id = 0;
  std::uint64_t message_id = 0;
};
// Outgoing QoS 1/2 sent with packet_id and waiting for an ack. In state
// awaiting_pubcomp the message itself is no longer needed.
struct inflight_put {
  std::uint64_t session_id = 0;
  std::uint64_t message_id = 0;
  std::uint16_t packet_id = 0;
  core::outgoing_state state = core::outgoing_state::awaiting_puback;
  delivery_meta meta;
};
struct inflight_delete {
  std::uint64_t session_id = 0;
  std::uint64_t message_id = 0;
};
// Incoming QoS 2: PUBREC sent, PUBREL not yet received.
struct incoming_put {
  std::uint64_t session_id = 0;
  std::uint16_t packet_id = 0;
};
struct incoming_delete {
  std::uint64_t session_id = 0;
  std::uint16_t packet_id = 0;
};
// The retained message for msg->topic (stored by topic, apart from messages).
struct retained_put {
  core::message_ptr msg;
};
struct retained_delete {
  std::string topic;
};

// Everything stored for one partition: its sessions with all their records
// and its message copies (a replica this node no longer holds).
struct partition_drop {
  replication::partition_id partition = 0;
};

using store_op = std::variant<session_put, session_delete, subscription_put, subscription_delete, message_put,
                              message_delete, queued_put, queued_delete, inflight_put, inflight_delete, incoming_put,
                              incoming_delete, retained_put, retained_delete, partition_drop>;

// --- what load() returns ---
struct restored_delivery {
  std::uint64_t message_id = 0;
  core::message_ptr msg;  // shared by every session referencing it; null for awaiting_pubcomp
  delivery_meta meta;
};
struct restored_inflight {
  restored_delivery d;
  std::uint16_t packet_id = 0;
  core::outgoing_state state = core::outgoing_state::awaiting_puback;
};
struct restored_session {
  std::uint64_t session_id = 0;
  std::string client_id;
  std::uint32_t expiry_interval = 0;
  // Offline sessions: their deadline (possibly already past: the core ends
  // them). Sessions that were online when the broker stopped: now +
  // expiry_interval. nullopt: never expires.
  std::optional<time_point> expires_at;
  core::message_ptr will;
  std::optional<time_point> will_due;
  core::stamp claimed;
  std::vector<std::pair<std::string, core::subscription_options>> subscriptions;
  std::vector<restored_delivery> queue;       // in message id order
  std::vector<restored_inflight> inflight;    // in message id order
  std::vector<std::uint16_t> incoming_qos2;
};
// The data directory's identity: 128 random bits written at its first
// start. A directory deleted and made again is a new store (replication
// never counts it as a copy of what the old one held).
struct store_identity {
  std::uint64_t hi = 0;
  std::uint64_t lo = 0;
  bool empty() const { return hi == 0 && lo == 0; }
  bool operator==(const store_identity&) const = default;
};

struct restored_state {
  std::vector<restored_session> sessions;
  // Where each partition copy held here stands in its owner's history
  // (replication; none while it is off).
  std::vector<std::pair<replication::partition_id, partition_position>> partitions;
  std::vector<core::message_ptr> retained;  // expires_at may be past: the core drops those
  std::uint64_t next_id = 1;                // above every stored session and message id
  store_identity identity;
};

class store {
 public:
  using ticket = std::uint64_t;

  virtual ~store() = default;

  // Start-up only, before the first append. Repairs what a crash can leave
  // behind (refs to a missing session or message, messages nobody
  // references, older incarnations of a client's session) and returns the
  // rest. Throws std::runtime_error with a one-line reason when the data
  // cannot be read (corrupt, written by a newer format).
  virtual restored_state load() = 0;

  // Adds ops to the log, in order, after everything appended before (by any
  // thread). Returns the ticket of the group they will be committed in.
  // Never blocks on I/O.
  virtual ticket append(std::span<store_op> ops) = 0;

  // True once every group up to t is durable (with replication: here and
  // on the in-sync followers of the partitions those groups touched).
  virtual bool is_durable(ticket t) const = 0;
  // Runs fn on worker w (through the executor) once every group up to t is
  // durable, as is_durable() means it. For one worker, tickets must not
  // decrease between calls, and callbacks run in call order.
  virtual void when_durable(ticket t, worker_id w, std::function<void()> fn) = 0;

  // False while writes fail (disk full, I/O error). The store keeps retrying
  // the failed group (nothing appended is dropped) and turns healthy again by
  // itself once a write succeeds; meanwhile the broker refuses new QoS 1/2
  // publishes.
  virtual bool healthy() const = 0;

  // Commits everything appended so far and waits until it is durable, at
  // most `timeout` (shutdown; a failing disk must not hang it). True if
  // everything appended is durable.
  virtual bool flush(duration timeout) = 0;

  // The replication controller's Raft log in the same data directory; null
  // where the store keeps none. Lives as long as the store.
  virtual controller_log* controller() { return nullptr; }
  // Its side of replication (ports/replication.hpp); null where the store
  // cannot replicate. Lives as long as the store.
  virtual replica_store* replica() { return nullptr; }

  // For /metrics: how long each write of a group took (µs, retries
  // included) and how many operations it carried. Any thread.
  struct write_metrics {
    core::latency_reading write_us;
    core::size_reading batch_ops;
    std::uint64_t failed_writes = 0;
  };
  virtual write_metrics metrics() const { return {}; }
};

}  // namespace flock::ports
