#pragma once
// The smallest key/value interface the store needs, so the group commit,
// the record encoding and load() are the same code over RocksDB and over
// memory (the contract tests run one suite against both). Ordered columns,
// one atomic batch per write, a full scan at start-up: nothing else.
//
// Threads: write() and recover() are called by the store's one writer
// thread and by the controller's log (controller_log_kv, the node's thread):
// they must be safe against each other. scan(), scan_range() and get() only at start-up,
// before the first write; an implementation need not make write() and
// scan() safe against each other.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace flock::storage {

// One per kind of record (RocksDB: one column family each, so a kind can be
// scanned or range-deleted without touching the others).
enum class column : std::uint8_t { meta, sessions, subscriptions, messages, queue, inflight, incoming, retained };
inline constexpr std::size_t column_count = 8;

// The RocksDB column family name ("default" for meta).
std::string_view column_name(column c);

struct kv_write {
  enum class kind : std::uint8_t { put, del, del_range };
  kind op = kind::put;
  column col = column::meta;
  std::string key;    // del_range: first key deleted
  std::string value;  // put: the value; del_range: the end key (excluded)
};

// Applied atomically and in order: all of it or none of it.
using kv_batch = std::vector<kv_write>;

struct write_status {
  std::string error;  // empty: written
  bool ok() const { return error.empty(); }
};

// A consistent read of the backend as it was when made (RocksDB: a
// snapshot), for copying a partition while writes go on. Used by the
// store's writer thread only, and released before the backend's next
// recover() and before the backend is destroyed.
class kv_view {
 public:
  virtual ~kv_view() = default;
  // The records of column c with begin <= key < end, in key order, until fn
  // returns false. Same errors as kv_backend::scan().
  virtual void scan_range(column c, std::string_view begin, std::string_view end,
                          const std::function<bool(std::string_view key, std::string_view value)>& fn) const = 0;
};

class kv_backend {
 public:
  virtual ~kv_backend() = default;

  // Writes the batch atomically; with sync, durable across power loss when it
  // returns (fsync), otherwise across a process crash.
  virtual write_status write(const kv_batch& batch, bool sync) = 0;
  // Called after a failed write, before the retry (RocksDB refuses every
  // write after an I/O error until DB::Resume()).
  virtual void recover() = 0;

  // Every record of column c in key order. Throws std::runtime_error (one
  // line naming the data and the column) when stored data cannot be read.
  virtual void scan(column c, const std::function<void(std::string_view key, std::string_view value)>& fn) const = 0;
  // The records of column c with begin <= key < end, in key order (one
  // partition's range). Same errors as scan().
  virtual void scan_range(column c, std::string_view begin, std::string_view end,
                          const std::function<void(std::string_view key, std::string_view value)>& fn) const = 0;
  virtual std::optional<std::string> get(column c, std::string_view key) const = 0;
  // Safe against write() (see kv_view for its lifetime).
  virtual std::unique_ptr<kv_view> view() const = 0;

  // "data directory /var/lib/flock" or "memory store": how errors name it.
  virtual std::string location() const = 0;

  // Moves everything written into the backend's long-term form (RocksDB:
  // flush memtables, compact every column family). Tests use it to get
  // table files to damage.
  virtual void compact() {}
};

}  // namespace flock::storage
