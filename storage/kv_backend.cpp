// See kv_backend.hpp.
#include "storage/kv_backend.hpp"

namespace flock::storage {

std::string_view column_name(column c) {
  switch (c) {
    case column::meta: return "default";  // RocksDB always has it; the meta record needs no column of its own
    case column::sessions: return "sessions";
    case column::subscriptions: return "subscriptions";
    case column::messages: return "messages";
    case column::queue: return "queue";
    case column::inflight: return "inflight";
    case column::incoming: return "incoming";
    case column::retained: return "retained";
  }
  return "?";
}

}  // namespace flock::storage
