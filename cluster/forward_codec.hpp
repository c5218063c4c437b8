#pragma once
// Forwarded publishes packed back to back in one buffer (wire::Forwards):
// on a busy stream this is most of the traffic, and a protobuf object per
// message cost more CPU than everything else a forward does.
//
// Protocol 2 (Forwards.records), per record:
//   varint seq | varint length + the message in core::message_codec
//   (deadlines as ms left) | varint count of picks | group, filter (each
//   varint length + bytes)
// Protocol 1 (Forwards.packed), for peers from before; remove once no
// release speaks it. Per record:
//   varint seq | flags (qos:2, retain, expiry, properties, picks, stamp) |
//   topic | payload | publisher (each varint length + bytes) |
//   [expiry ms left] [stamp time, node] [properties: a wire::Message holding
//   only MQTT 5 properties] [picks: count, then group and filter]
// Decoding checks what the core relies on, like wire_codec; any thread.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "broker/ports/cluster.hpp"

namespace flock::cluster {

void encode_forward(std::string& out, std::uint64_t seq, const core::message& m,
                    const std::vector<ports::shared_pick>& picks, ports::time_point now);
void encode_forward_v1(std::string& out, std::uint64_t seq, const core::message& m,
                       const std::vector<ports::shared_pick>& picks, ports::time_point now);

struct decoded_forward {
  std::uint64_t seq = 0;
  ports::forwarded_publish publish;  // publish.msg null: the record was not valid (skipped)
};

// False when the buffer is cut or garbled (what was decoded before stays in
// `out`). A record whose message is not valid comes with a null message.
bool decode_forwards(std::string_view in, ports::time_point now, std::vector<decoded_forward>& out);
bool decode_forwards_v1(std::string_view in, ports::time_point now, std::vector<decoded_forward>& out);

}  // namespace flock::cluster
