#pragma once
// Record format 3 keys everything of a persistent session by its partition
// (storage/keys.hpp): session ids carry it in their top 16 bits and each
// message has a copy under be16(partition) + be64(id) in every partition
// whose sessions reference it. A directory of format 1 or 2 is rewritten
// into that layout at start-up, before it is loaded.
#include <cstddef>
#include <functional>
#include <string>

#include "storage/kv_backend.hpp"
#include "storage/wall_clock.hpp"

namespace flock::storage {

struct partition_migration {
  std::size_t sessions_renamed = 0;  // sessions given the id of their partition
  std::size_t records_moved = 0;     // their subscription, queue, in-flight and incoming records
  std::size_t message_copies = 0;    // message records written under a partition
};

// Adds to `batch` the writes that turn format 2 keys into format 3 keys: a
// session's records move to its new id (the old counter under its client's
// partition, so ids stay unique and in the same order per client), each
// referenced message gets a copy per referencing partition, and every old
// key goes. Records of a session that does not exist keep their key (load
// removes them); a message nobody references is not copied. The caller
// writes the batch in one atomic write with the new format record, so a
// crash leaves the directory in one format or the other. Throws
// std::runtime_error (naming the column and key) on a record that does not
// decode.
partition_migration plan_partition_migration(const kv_backend& backend, const wall_clock_mapping& time,
                                             kv_batch& batch);

}  // namespace flock::storage
