#pragma once
// One encoding of an application message (core::message) for whatever keeps
// or sends one: the store's records, forwarded publishes, moved sessions
// and replication (docs/replication.md, slice 0b). Flat and compact:
//
//   0xF1 | flags (varint: qos:2, retain, expiry, stamp, properties,
//   publisher) | topic | payload (each varint length + bytes) |
//   [publisher] [expiry: wall-clock ms] [stamp: time, node]
//   [properties: an MQTT 5 property block, as a will carries them]
//
// The first byte, 0xF1, begins no protobuf record of flock's (it would be
// field 30, which none has), so a store can hold both this and its older
// records and tell them apart. Flag bits this version does not know make
// the message malformed: a newer format is refused, never misread.
//
// Deadlines are wall-clock milliseconds since the Unix epoch: they keep
// running while a node is down and mean the same on every node (whose
// clocks NTP keeps together). Pure code; any thread.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "broker/core/message.hpp"

namespace flock::core {

inline constexpr std::uint8_t message_codec_magic = 0xF1;

// One instant on both clocks: converts deadlines to and from wall time.
struct wall_instant {
  ports::time_point now;
  std::int64_t unix_ms = 0;
};

// Appends `m` to `out`. Carries topic, payload, qos, retain, publisher, the
// expiry deadline, the retained stamp and the properties; not the store id,
// reference count or routing marks (from_peer, seqs), which are per node.
void encode_message(const message& m, const wall_instant& at, std::string& out);

// Decodes one message starting at `pos` and moves `pos` past it. Null when
// the bytes are cut short, carry unknown flags, a QoS above 2, a topic that
// is not a valid topic name, or properties a message cannot have.
std::shared_ptr<message> decode_message(std::string_view in, std::size_t& pos, const wall_instant& at);

// True when `in` starts like an encode_message record (a store can hold
// older records too).
inline bool is_encoded_message(std::string_view in) {
  return !in.empty() && static_cast<std::uint8_t>(in[0]) == message_codec_magic;
}

}  // namespace flock::core
