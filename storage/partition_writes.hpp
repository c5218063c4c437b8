#pragma once
// A group's writes split by partition, and one partition's share encoded
// for the replication stream (ports::replicated_part::writes) and decoded
// on the follower. Decoding trusts nothing: a peer sent those bytes.
//
// Encoding, per write: u8 kind, u8 column, varint key length, key, varint
// value length, value (kv_write's fields as they are). Only session columns
// and messages, and every key (both ends of a range) inside the partition's
// range [be16(p), be16(p + 1)).
#include <optional>
#include <string>
#include <string_view>

#include "broker/ports/replication.hpp"
#include "storage/kv_backend.hpp"

namespace flock::storage {

// The partition a write belongs to; nullopt for writes outside every
// partition (the format record, retained messages).
std::optional<replication::partition_id> partition_of_write(const kv_write& w);

// The record of partition p's position (sessions column, key be16(p)).
kv_write position_write(replication::partition_id p, const ports::partition_position& pos);
std::optional<ports::partition_position> decode_position(std::string_view value);
// A sessions-column key of two bytes is a partition's position record.
inline bool is_position_key(std::string_view key) { return key.size() == 2; }

// The columns that hold partitions (sessions' records and messages).
inline constexpr column partition_columns[] = {column::sessions, column::subscriptions, column::messages,
                                               column::queue,    column::inflight,      column::incoming};
// Range deletes of every record of partition p (its position record too).
void drop_partition(replication::partition_id p, kv_batch& out);

// Where the reading of a partition's copy stands: the column and the key
// the next chunk starts at.
struct partition_cursor {
  std::size_t column_index = 0;  // into partition_columns
  std::string next_key;          // empty: the partition's first key
  bool done = false;
};
// The next chunk of partition p's records in `view` (about max_bytes, at
// least one record), encoded as puts, without the position record (the
// follower writes the position once the whole copy is in).
std::string read_partition_chunk(const kv_view& view, replication::partition_id p, partition_cursor& cursor,
                                 std::size_t max_bytes);

void encode_writes(const kv_write& w, std::string& out);
// nullopt when the bytes are malformed or a write leaves partition p.
std::optional<kv_batch> decode_writes(std::string_view bytes, replication::partition_id p);

}  // namespace flock::storage
