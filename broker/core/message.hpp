#pragma once
// An application message as it travels through the broker: decoded once,
// shared (immutable, reference counted) by every session it is delivered to.
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "broker/codec/packet.hpp"
#include "broker/core/stamp.hpp"
#include "broker/ports/clock.hpp"
#include "broker/replication/types.hpp"

namespace flock::core {

// How many persistent sessions still need a stored message. Copying a
// message gives a copy that nobody references yet.
struct durable_ref_count {
  mutable std::atomic<std::uint32_t> value{0};
  durable_ref_count() = default;
  durable_ref_count(const durable_ref_count&) {}
  durable_ref_count& operator=(const durable_ref_count&) { return *this; }
};

struct message {
  std::string topic;
  std::string payload;
  std::uint8_t qos = 0;
  bool retain = false;
  // Properties forwarded unchanged (payload format, content type, response
  // topic, correlation data, user properties). Never carries topic alias,
  // subscription identifiers or message expiry: those are per delivery.
  // (A will waiting to be published keeps its Message Expiry Interval here:
  // it starts counting at publication.)
  codec::properties props;
  // Message Expiry Interval turned into a deadline; nullopt: never expires.
  std::optional<ports::time_point> expires_at;
  std::string publisher;  // client id, for No Local
  // Wall-clock µs when the publisher's PUBLISH arrived, on the node it came
  // to (0: unknown); from_peer: forwarded by another node. For the
  // publish-to-deliver latency histograms.
  std::int64_t received_us = 0;
  bool from_peer = false;
  std::uint32_t peer_slot = 0;  // from_peer: which peer (its ports::peer_id)
  std::uint64_t peer_seq = 0;   // from_peer: its number on that peer's stream (0: passed on with a moving session)
  // Published here, in a cluster: its number among this node's publishes,
  // taken while the peers' routes were read for it (a moved session's
  // hand-over tells by it which publishes saw the new node's routes).
  mutable std::uint64_t local_seq = 0;
  // Retained messages: when and where the retained copy was written, so that
  // every node resolves concurrent writes to a topic the same way. Set once,
  // by broker::impl::publish before the message is visible to other threads,
  // or from the store or a peer.
  mutable stamp written;

  // Durable state (ports::store): the key of the stored copy, 0 when the
  // message is not stored, how many persistent sessions reference that
  // copy (the last one to let go deletes it), and the partitions of those
  // sessions (the store keeps a copy in each). Set before the message is
  // shared.
  std::uint64_t id = 0;
  durable_ref_count refs;
  mutable replication::partition_set partitions;
};

using message_ptr = std::shared_ptr<const message>;

}  // namespace flock::core
