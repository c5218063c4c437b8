#pragma once
// Shrinks one commit group before it is encoded, without changing what the
// group leaves on disk. A fast subscriber acknowledges a QoS 1 message
// within the same group that stored it: message_put, queued_put,
// queued_delete, inflight_put, inflight_delete, message_delete then write
// nothing at all instead of a 256-byte record plus four tombstones.
//
// Two rules, both checked by tests/unit/storage/coalesce_test.cpp against
// the uncoalesced group:
//  1. Per key, only the last point op matters: a put or delete followed by
//     another point op on the same key is dropped. (The last op on a key,
//     point or range, decides its final value; a dropped op is never last.)
//     session_delete is never dropped: it also carries the range deletes.
//  2. Message ids and (session, message) queue keys are put once and never
//     reused (ports/store.hpp), so before the group such a key was absent;
//     when the group both puts and deletes it, it ends absent again, and the
//     remaining delete is dropped too (no tombstone).
#include <cstddef>
#include <vector>

#include "broker/ports/store.hpp"

namespace flock::storage {

// Removes the ops that do not change the group's result, keeping the order
// of the rest. Returns how many were removed.
std::size_t coalesce(std::vector<ports::store_op>& ops);

}  // namespace flock::storage
