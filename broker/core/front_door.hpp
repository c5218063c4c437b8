#pragma once
// What a connection may ask of the core: the protocol machine's one door
// into it (broker/protocol), instead of the core's insides. Open sessions,
// publish, subscribe, count clients, check access, write to the store,
// read the clock. Called from the connection's worker.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/core/broker.hpp"
#include "broker/core/delivery.hpp"
#include "broker/core/journal.hpp"
#include "broker/core/message.hpp"
#include "broker/core/remote_ack.hpp"
#include "broker/core/subscription_index.hpp"

namespace flock::core {

class session;
struct worker_stats;

// A persistent session's change is written to the store; its SUBACK /
// UNSUBACK waits for `ticket`.
struct subscription_change {
  bool changed = false;  // subscribe: the subscription is new; unsubscribe: it existed
  journal::ticket ticket = 0;
};

struct publish_result {
  std::size_t routed = 0;      // sessions (and peers) the message went to
  journal::ticket ticket = 0;  // the publisher's ack waits for it (0: nothing written)
  remote_ack_ptr ack;          // and for these peers' confirmations (null: none)
};

class front_door {
 public:
  explicit front_door(broker::impl& core) : core_(core) {}

  const broker_config& config() const;
  ports::time_point now() const;
  ports::worker_id current() const;  // the calling worker
  ports::executor& executor() const;
  worker_stats& my_stats();

  // --- who may do what ---
  const ports::authenticator* authenticator() const;  // null: anonymous rules only
  // Without an authorizer everything is allowed and nothing is checked.
  bool may_publish(std::string_view client_id, std::optional<std::string_view> username,
                   std::string_view topic) const;
  bool may_subscribe(std::string_view client_id, std::optional<std::string_view> username,
                     std::string_view filter_or_topic) const;

  // --- connections and sessions ---
  void client_connected();  // counted for $SYS and /metrics
  void client_disconnected();
  // Finds, resumes or creates the session for `client_id` and hands it to
  // `requester` on the calling worker (at once, or after a takeover).
  void open_session(const std::string& client_id, bool clean_start, std::weak_ptr<session_requester> requester);
  // The connection attached to `s` went away (on s's owner).
  void session_detached(const std::shared_ptr<session>& s, std::optional<message_ptr> will, std::uint32_t will_delay);

  // --- messages and subscriptions ---
  std::uint64_t new_message_id();
  // Stores or clears a retained message, routes, and writes what persistent
  // sessions got (with `publisher_op`, the publisher's QoS 2 id, in one group).
  publish_result publish(const message_ptr& msg, std::optional<ports::store_op> publisher_op = std::nullopt);
  subscription_change subscribe(const std::shared_ptr<session>& s, const std::string& filter,
                                const subscription_options& opts);
  subscription_change unsubscribe(const std::shared_ptr<session>& s, const std::string& filter);
  std::vector<message_ptr> retained_for(std::string_view filter);

  // --- durable state (null store: durability "memory") ---
  ports::store* store() const;
  bool persistent() const { return store() != nullptr; }
  // False while the store cannot write (disk full): QoS 1/2 publishes are refused.
  bool store_healthy() const;
  journal::ticket persist(ports::store_op op);

 private:
  broker::impl& core_;
};

}  // namespace flock::core
