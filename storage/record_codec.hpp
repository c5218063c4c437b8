#pragma once
// store_op -> key/value writes (protobuf records from proto/records.proto),
// and the records back into core types on load. The only code that knows
// the generated classes; nothing outside storage/*.cpp includes them.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "broker/ports/store.hpp"
#include "storage/kv_backend.hpp"
#include "storage/wall_clock.hpp"

namespace flock::storage {

// Bumped only for a change an older build cannot read correctly (new fields
// alone do not need it: older builds skip them). load() refuses data written
// with a higher version, and marks what it loads with this one.
//  1: protobuf records throughout.
//  2: messages, retained messages and wills in core/message_codec.hpp's
//     encoding (format 1 records still load).
//  3: keyed by partition: session ids carry their partition, messages have
//     a copy per partition (partition_migration.hpp rewrites 1 and 2).
inline constexpr std::uint32_t record_format_version = 3;

// Appends the writes that apply op to batch.
void encode_op(const ports::store_op& op, const wall_clock_mapping& time, kv_batch& batch);

std::string encode_meta(std::uint32_t format_version, std::string_view written_by, ports::store_identity id);

// --- decoding (load) ---
// Each returns nullopt / null when the bytes are not a valid record; the
// caller names the column and key in the error.
struct meta_info {
  std::uint32_t format_version = 0;
  std::string written_by;
  ports::store_identity id;  // empty: none written yet
};
std::optional<meta_info> decode_meta(std::string_view value);

struct session_info {
  std::string client_id;
  std::uint32_t expiry_interval = 0;
  std::optional<ports::time_point> expires_at;
  bool online = false;
  core::message_ptr will;
  std::optional<ports::time_point> will_due;
  core::stamp claimed;
};
std::optional<session_info> decode_session(std::string_view value, const wall_clock_mapping& time);

std::optional<core::subscription_options> decode_subscription(std::string_view value);

// A new message (id 0, refs 0).
std::shared_ptr<core::message> decode_message(std::string_view value, const wall_clock_mapping& time);

std::optional<ports::delivery_meta> decode_delivery(std::string_view value);

struct inflight_info {
  std::uint16_t packet_id = 0;
  core::outgoing_state state = core::outgoing_state::awaiting_puback;
  ports::delivery_meta meta;
};
std::optional<inflight_info> decode_inflight(std::string_view value);

bool decode_incoming(std::string_view value);

}  // namespace flock::storage
