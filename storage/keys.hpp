#pragma once
// Key layout of every column (see storage/README.md). Ids are big-endian so
// that byte order is id order: a scan returns a session's queue in message
// id order, and everything under one session id is one contiguous range that
// a single DeleteRange removes. Every key of a persistent session starts
// with be16(partition): session ids carry it in their top bits
// (replication/partition.hpp), message copies are keyed by it. So one
// partition is one key range in each column.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace flock::storage::keys {

inline constexpr std::string_view meta_format = "format";

inline void put_be64(std::string& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xFF);
}
inline void put_be16(std::string& out, std::uint16_t v) {
  out += static_cast<char>(v >> 8);
  out += static_cast<char>(v & 0xFF);
}
inline std::uint64_t get_be64(std::string_view in) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}
inline std::uint16_t get_be16(std::string_view in) {
  return static_cast<std::uint16_t>((static_cast<unsigned char>(in[0]) << 8) | static_cast<unsigned char>(in[1]));
}

// sessions: be64(id)
inline std::string id_key(std::uint64_t id) {
  std::string k;
  k.reserve(8);
  put_be64(k, id);
  return k;
}
// messages: be16(partition) + be64(message id), one copy per partition
inline std::string message_key(std::uint16_t partition, std::uint64_t message_id) {
  std::string k;
  k.reserve(10);
  put_be16(k, partition);
  put_be64(k, message_id);
  return k;
}
// [be16(p), be16(p + 1)): everything of partition p in any session column
// and in messages. Partitions are below replication::default_partitions,
// so p + 1 never wraps.
inline std::pair<std::string, std::string> partition_range(std::uint16_t partition) {
  std::string begin;
  put_be16(begin, partition);
  std::string end;
  put_be16(end, static_cast<std::uint16_t>(partition + 1));
  return {begin, end};
}

// subscriptions: be64(session id) + filter
inline std::string subscription_key(std::uint64_t session_id, std::string_view filter) {
  std::string k;
  k.reserve(8 + filter.size());
  put_be64(k, session_id);
  k += filter;
  return k;
}
// queue, inflight: be64(session id) + be64(message id)
inline std::string pair_key(std::uint64_t session_id, std::uint64_t message_id) {
  std::string k;
  k.reserve(16);
  put_be64(k, session_id);
  put_be64(k, message_id);
  return k;
}
// incoming: be64(session id) + be16(packet id)
inline std::string incoming_key(std::uint64_t session_id, std::uint16_t packet_id) {
  std::string k;
  k.reserve(10);
  put_be64(k, session_id);
  put_be16(k, packet_id);
  return k;
}
// [be64(sid), be64(sid + 1)): every key under one session. Ids come from a
// counter starting at 1, so sid + 1 never wraps.
inline std::pair<std::string, std::string> session_range(std::uint64_t session_id) {
  return {id_key(session_id), id_key(session_id + 1)};
}

// Parsing for load(): nullopt when the key has the wrong length.
inline std::optional<std::uint64_t> parse_id(std::string_view k) {
  if (k.size() != 8) return std::nullopt;
  return get_be64(k);
}
inline std::optional<std::pair<std::uint16_t, std::uint64_t>> parse_message(std::string_view k) {
  if (k.size() != 10) return std::nullopt;
  return std::pair{get_be16(k), get_be64(k.substr(2))};
}
inline std::optional<std::pair<std::uint64_t, std::uint64_t>> parse_pair(std::string_view k) {
  if (k.size() != 16) return std::nullopt;
  return std::pair{get_be64(k), get_be64(k.substr(8))};
}
inline std::optional<std::pair<std::uint64_t, std::uint16_t>> parse_incoming(std::string_view k) {
  if (k.size() != 10) return std::nullopt;
  return std::pair{get_be64(k), get_be16(k.substr(8))};
}
// A subscription key: the session id and the filter after it (non-empty).
inline std::optional<std::pair<std::uint64_t, std::string_view>> parse_subscription(std::string_view k) {
  if (k.size() <= 8) return std::nullopt;
  return std::pair{get_be64(k), k.substr(8)};
}

}  // namespace flock::storage::keys
