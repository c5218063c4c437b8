#pragma once
// The controller's commands and state as bytes: what its Raft log entries
// and snapshots hold. Flat varints (core/varint_io.hpp), a version byte
// first; decoding checks every field and length, and a state must keep its
// invariants, so a corrupt entry or snapshot is refused, never applied.
#include <optional>
#include <string>
#include <string_view>

#include "broker/replication/controller_state.hpp"

namespace flock::controller {

std::string encode_command(const replication::command& c);
std::optional<replication::command> decode_command(std::string_view in);

std::string encode_state(const replication::controller_state& s);
std::optional<replication::controller_state> decode_state(std::string_view in);

}  // namespace flock::controller
