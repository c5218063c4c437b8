#pragma once
// Core types <-> cluster.proto messages. Times travel as what is left
// (milliseconds to expiry), since two nodes' monotonic clocks have nothing in
// common. Decoding checks what the core relies on (QoS 0..2, a valid topic,
// known in-flight states): a frame that fails is dropped, never trusted.
// Pure functions; any thread.
//
// Messages are written in the protocol the receiving peer reads
// (Hello.protocol): from 2 on in core::message_codec, the encoding the
// store uses too; protocol 1's fields only for a peer from before (a
// rolling upgrade). Both are read.
#include <memory>
#include <optional>

#include "broker/core/message_codec.hpp"
#include "broker/ports/cluster.hpp"
#include "proto/cluster.pb.h"

namespace flock::cluster {

// Cluster protocol versions: what a node reads.
inline constexpr std::uint32_t protocol_first = 1;          // wire::Message fields, Forwards.packed
inline constexpr std::uint32_t protocol_message_codec = 2;  // Message.encoded, Forwards.records
inline constexpr std::uint32_t protocol_current = protocol_message_codec;  // options::protocol's default

// Deadlines in core::message_codec on the wire: ms left from `now`.
inline core::wall_instant wire_instant(ports::time_point now) { return {now, 0}; }

void encode_message(const core::message& m, ports::time_point now, std::uint32_t protocol, wire::Message& out);
// A fresh message (id 0) or null when the record is not valid.
std::shared_ptr<core::message> decode_message(const wire::Message& in, ports::time_point now);

void encode_delivery(const core::delivery& d, ports::time_point now, std::uint32_t protocol, wire::Delivery& out);
void encode_delivery(const ports::moved_delivery& d, ports::time_point now, std::uint32_t protocol,
                     wire::Delivery& out);
std::optional<ports::moved_delivery> decode_delivery(const wire::Delivery& in, ports::time_point now);

void encode_session(const ports::moved_session& s, ports::time_point now, std::uint32_t protocol,
                    wire::SessionState& out);
std::optional<ports::moved_session> decode_session(const wire::SessionState& in, ports::time_point now);

inline core::stamp make_stamp(std::uint64_t time, std::uint64_t node) { return {time, node}; }

}  // namespace flock::cluster
