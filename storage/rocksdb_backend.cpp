// kv_backend over RocksDB: one column family per column, one WriteBatch per
// write. Tuned for a broker's small, write-mostly state: the data is read
// once at start-up and otherwise only written, so memory goes to write
// buffers, little to caches, none to bloom filters.
#include "storage/rocksdb_backend.hpp"

#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/table_properties_collectors.h>
#include <rocksdb/write_batch.h>
#include <rocksdb/write_buffer_manager.h>

#include <array>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <system_error>

#include "storage/errors.hpp"
#include "storage/rocksdb_fault_fs.hpp"

namespace flock::storage {
namespace {

std::string location_of(const std::string& dir) { return "data directory " + dir; }

// Maps an open/read failure to the one line flockd prints.
[[noreturn]] void throw_status(const std::string& dir, const rocksdb::Status& s, const std::string& what) {
  const std::string text = s.ToString();
  if (s.IsCorruption()) throw_corrupt(location_of(dir), what + text);
  if (text.find("Permission denied") != std::string::npos || text.find("Read-only file system") != std::string::npos)
    throw std::runtime_error(location_of(dir) + " is not readable/writable: " + text);
  // Another process holds the lock (EAGAIN), or this one does (RocksDB
  // tracks its own locks: "lock hold by current process").
  if (s.IsIOError() && text.find("/LOCK") != std::string::npos &&
      (text.find("Resource temporarily unavailable") != std::string::npos ||
       text.find("lock hold by current process") != std::string::npos))
    throw std::runtime_error(location_of(dir) + " is in use by another flockd (" + text + ")");
  throw std::runtime_error(location_of(dir) + " cannot be opened: " + what + text);
}

rocksdb::DBOptions db_options() {
  rocksdb::DBOptions o;
  o.create_if_missing = true;
  o.create_missing_column_families = true;
  // Stop at the first sign of damage instead of serving (and then
  // overwriting) a partial state.
  o.paranoid_checks = true;
  // A crash, or a power loss in async mode, can leave the end of the log cut
  // short or garbled (a partly written page fails its checksum): replay
  // stops there and keeps every complete group before it, the consistent
  // prefix. kTolerateCorruptedTailRecords would refuse to open on the
  // garbled case; kAbsoluteConsistency even on a clean cut.
  o.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  // With several column families a log file can be deleted only once every
  // family has flushed what it holds; a rarely written family (retained)
  // would otherwise keep old logs, and replay time, growing without bound.
  o.max_total_wal_size = 64 << 20;
  // All memtables together; each family's own limit is below.
  o.db_write_buffer_size = 32 << 20;
  o.max_background_jobs = 2;
  // RocksDB's own info log, bounded.
  o.max_log_file_size = 1 << 20;
  o.keep_log_file_num = 3;
  o.stats_dump_period_sec = 0;
  // One writer thread (group commit) and vector memtables, which cannot
  // take concurrent inserts anyway.
  o.allow_concurrent_memtable_write = false;
  return o;
}

rocksdb::ColumnFamilyOptions cf_options(column c, const std::shared_ptr<rocksdb::Cache>& cache) {
  rocksdb::ColumnFamilyOptions o;
  o.write_buffer_size = 8 << 20;
  o.level_compaction_dynamic_level_bytes = true;
  rocksdb::BlockBasedTableOptions t;
  t.block_cache = cache;  // shared and small: we read at start-up only
  t.cache_index_and_filter_blocks = true;  // so table metadata is bounded by the cache too
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  // Queue, in-flight and message records live briefly: most end as
  // tombstones. Compacting files that fill up with them keeps the start-up
  // scan from walking over millions of deleted records.
  if (c == column::messages || c == column::queue || c == column::inflight || c == column::incoming) {
    o.table_properties_collector_factories.push_back(rocksdb::NewCompactOnDeletionCollectorFactory(1024, 512));
    // These are written several times per message and read only when a
    // memtable is flushed or at start-up: an append-only vector memtable
    // makes each insert O(1) on the single writer thread, and the sorting
    // happens in the background flush instead (measured: the skiplist
    // inserts were the writer's largest cost).
    o.memtable_factory = std::make_shared<rocksdb::VectorRepFactory>();
  }
  return o;
}

// The records of one column with begin <= key < end, until fn returns
// false; at `snapshot` (null: now).
void scan_rocksdb_range(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* cf, const rocksdb::Snapshot* snapshot,
                        const std::string& dir, column c, std::string_view begin, std::string_view end,
                        const std::function<bool(std::string_view, std::string_view)>& fn) {
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;  // one partition read once (load, or a copy for a peer): keep the working set cached
  ro.snapshot = snapshot;
  const rocksdb::Slice upper(end.data(), end.size());
  ro.iterate_upper_bound = &upper;  // stops at the range's end instead of reading into the next partition
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(ro, cf));
  for (it->Seek(rocksdb::Slice(begin.data(), begin.size())); it->Valid(); it->Next())
    if (!fn(it->key().ToStringView(), it->value().ToStringView())) return;
  if (!it->status().ok()) throw_status(dir, it->status(), "column family " + std::string(column_name(c)) + ": ");
}

// A RocksDB snapshot: reads see the database as it was when it was taken.
class snapshot_view final : public kv_view {
 public:
  snapshot_view(rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*> columns, const std::string& dir)
      : db_(db), snapshot_(db->GetSnapshot()), columns_(std::move(columns)), dir_(dir) {}
  ~snapshot_view() override { db_->ReleaseSnapshot(snapshot_); }

  void scan_range(column c, std::string_view begin, std::string_view end,
                  const std::function<bool(std::string_view, std::string_view)>& fn) const override {
    scan_rocksdb_range(*db_, columns_[static_cast<std::size_t>(c)], snapshot_, dir_, c, begin, end, fn);
  }

 private:
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snapshot_;
  std::vector<rocksdb::ColumnFamilyHandle*> columns_;
  const std::string& dir_;
};

class rocksdb_backend final : public kv_backend {
 public:
  rocksdb_backend(std::string dir, std::shared_ptr<const std::atomic<injected_fault>> fault, std::uint64_t reserve)
      : dir_(std::move(dir)), reserve_(reserve) {
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    if (ec) throw std::runtime_error(location_of(dir_) + " is not readable/writable: " + ec.message());
    if (fault) env_ = rocksdb::NewCompositeEnv(make_fault_fs(rocksdb::FileSystem::Default(), std::move(fault)));
    auto s = open_db();
    if (!s.ok()) throw_status(dir_, s, "");
  }

  ~rocksdb_backend() override { close_db(); }

  write_status write(const kv_batch& batch, bool sync) override {
    std::lock_guard lock(mu_);
    if (!db_) return {"the database is closed after an unrecoverable error: " + reopen_error_};
    if (auto low = short_of_space()) return {*low};
    rocksdb::WriteBatch wb;
    for (const auto& w : batch) {
      auto* cf = handle(w.col);
      rocksdb::Status s;
      switch (w.op) {
        case kv_write::kind::put: s = wb.Put(cf, w.key, w.value); break;
        case kv_write::kind::del: s = wb.Delete(cf, w.key); break;
        case kv_write::kind::del_range: s = wb.DeleteRange(cf, w.key, w.value); break;
      }
      if (!s.ok()) return {s.ToString()};
    }
    rocksdb::WriteOptions wo;
    wo.sync = sync;
    auto s = db_->Write(wo, &wb);
    if (!s.ok()) return {s.ToString()};
    return {};
  }

  // Why a write must not start now, when the disk is nearly full. statvfs is
  // a syscall: while space is plentiful it is asked at most every 50 ms.
  std::optional<std::string> short_of_space() {
    if (reserve_ == 0) return std::nullopt;
    const auto now = std::chrono::steady_clock::now();
    if (now < next_space_check_) return std::nullopt;
    std::error_code ec;
    auto space = std::filesystem::space(dir_, ec);
    if (ec) return std::nullopt;  // cannot tell: let RocksDB try
    next_space_check_ = space.available > 4 * reserve_ ? now + std::chrono::milliseconds(50) : now;
    if (space.available >= reserve_) return std::nullopt;
    return "disk nearly full: " + std::to_string(space.available >> 20) + " MiB free, " +
           std::to_string(reserve_ >> 20) + " MiB kept in reserve (disk_reserve_mb)";
  }

  void recover() override {
    std::lock_guard lock(mu_);
    if (!db_) {
      auto s = open_db();
      reopen_error_ = s.ToString();
      return;
    }
    auto s = db_->Resume();
    // A full disk (NoSpace) is resumable: RocksDB even retries by itself
    // (Resume() says Busy meanwhile). An I/O error in the log is fatal to
    // this DB object: only a reopen, which replays the log from the files,
    // makes it writable again.
    if (!s.ok() && s.severity() >= rocksdb::Status::Severity::kFatalError) {
      close_db();
      s = open_db();
      reopen_error_ = s.ToString();
    }
  }

  void scan(column c, const std::function<void(std::string_view, std::string_view)>& fn) const override {
    rocksdb::ReadOptions ro;
    ro.fill_cache = false;  // read once at start-up: do not evict anything for it
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, handle(c)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) fn(it->key().ToStringView(), it->value().ToStringView());
    if (!it->status().ok()) throw_status(dir_, it->status(), "column family " + std::string(column_name(c)) + ": ");
  }

  void scan_range(column c, std::string_view begin, std::string_view end,
                  const std::function<void(std::string_view, std::string_view)>& fn) const override {
    scan_rocksdb_range(*db_, handle(c), nullptr, dir_, c, begin, end, [&](std::string_view k, std::string_view v) {
      fn(k, v);
      return true;
    });
  }

  std::optional<std::string> get(column c, std::string_view key) const override {
    std::string value;
    auto s = db_->Get(rocksdb::ReadOptions(), handle(c), key, &value);
    if (s.IsNotFound()) return std::nullopt;
    if (!s.ok()) throw_status(dir_, s, "column family " + std::string(column_name(c)) + ": ");
    return value;
  }

  std::string location() const override { return location_of(dir_); }

  std::unique_ptr<kv_view> view() const override {
    if (!db_) throw std::runtime_error(location_of(dir_) + " is closed after an unrecoverable error: " + reopen_error_);
    return std::make_unique<snapshot_view>(db_.get(), std::vector<rocksdb::ColumnFamilyHandle*>(cf_.begin(), cf_.end()),
                                           dir_);
  }

  void compact() override {
    rocksdb::FlushOptions fo;
    fo.wait = true;
    std::vector<rocksdb::ColumnFamilyHandle*> all(cf_.begin(), cf_.end());
    db_->Flush(fo, all);
    for (auto* h : cf_) db_->CompactRange(rocksdb::CompactRangeOptions(), h, nullptr, nullptr);
  }

 private:
  rocksdb::ColumnFamilyHandle* handle(column c) const { return cf_[static_cast<std::size_t>(c)]; }

  rocksdb::Status open_db() {
    auto db_opts = db_options();
    if (env_) db_opts.env = env_.get();
    auto cache = rocksdb::NewLRUCache(8 << 20);
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
    for (std::size_t i = 0; i < column_count; ++i) {
      auto c = static_cast<column>(i);
      cfs.emplace_back(std::string(column_name(c)), cf_options(c, cache));
    }
    // A newer flock may have added column families: open them too (RocksDB
    // refuses to open without all of them), so that load() can read the
    // meta record and say "newer format" instead of a RocksDB error.
    if (std::filesystem::exists(std::filesystem::path(dir_) / "CURRENT")) {
      std::vector<std::string> existing;
      auto s = rocksdb::DB::ListColumnFamilies(db_opts, dir_, &existing);
      if (!s.ok()) return s;
      for (const auto& name : existing) {
        bool known = false;
        for (const auto& d : cfs) known = known || d.name == name;
        if (!known) cfs.emplace_back(name, rocksdb::ColumnFamilyOptions());
      }
    }
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* db = nullptr;
    auto s = rocksdb::DB::Open(db_opts, dir_, cfs, &handles, &db);
    if (!s.ok()) return s;
    db_.reset(db);
    extra_.clear();
    for (std::size_t i = 0; i < handles.size(); ++i) {
      if (i < column_count) cf_[i] = handles[i];
      else extra_.push_back(handles[i]);
    }
    return s;
  }

  void close_db() {
    if (!db_) return;
    for (auto* h : cf_) db_->DestroyColumnFamilyHandle(h);
    for (auto* h : extra_) db_->DestroyColumnFamilyHandle(h);
    cf_ = {};
    extra_.clear();
    db_->Close();  // nothing to flush that the log does not have
    db_.reset();
  }

  // The store's writer and the controller's log write (recover() may
  // reopen db_ under a write from the other).
  std::mutex mu_;
  std::string dir_;
  std::unique_ptr<rocksdb::Env> env_;  // only with a fault switch; outlives db_
  std::string reopen_error_;
  std::unique_ptr<rocksdb::DB> db_;
  std::array<rocksdb::ColumnFamilyHandle*, column_count> cf_{};
  std::vector<rocksdb::ColumnFamilyHandle*> extra_;
  const std::uint64_t reserve_;
  std::chrono::steady_clock::time_point next_space_check_{};
};

}  // namespace

std::unique_ptr<kv_backend> open_rocksdb_backend(const std::string& dir,
                                                 std::shared_ptr<const std::atomic<injected_fault>> fault,
                                                 std::uint64_t reserve_bytes) {
  return std::make_unique<rocksdb_backend>(dir, std::move(fault), reserve_bytes);
}

}  // namespace flock::storage
