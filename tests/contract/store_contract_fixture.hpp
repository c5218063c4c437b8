#pragma once
// The ports::store contract suite's fixture: every TEST_P(store_contract, ...)
// runs once against the RocksDB store (a fresh directory per test) and once
// against the memory store. raw() opens the backend under the store, so a
// test can check what is really on disk (after close(): RocksDB allows one
// opener at a time). set_failing() makes every write fail, as on a full
// disk: the memory disk's switch, or a RocksDB file system that fails every
// file write with ENOSPC's error (the same store as open_rocksdb_store()
// builds, plus that switch), so the retry path meets RocksDB's real errors.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "broker/ports/store.hpp"
#include "storage/group_commit_store.hpp"
#include "storage/kv_backend.hpp"
#include "storage/memory_backend.hpp"
#include "storage/rocksdb_backend.hpp"
#include "storage/store_factory.hpp"
#include "tests/contract/store_test_support.hpp"

namespace flock::testing {

enum class store_kind { memory, rocksdb };

inline std::string kind_name(const ::testing::TestParamInfo<store_kind>& info) {
  return info.param == store_kind::memory ? "memory" : "rocksdb";
}

class store_contract : public ::testing::TestWithParam<store_kind> {
 protected:
  void SetUp() override {
    if (GetParam() == store_kind::rocksdb) dir_ = std::make_unique<temp_dir>();
    else disk_ = storage::make_memory_disk();
  }
  void TearDown() override {
    store.reset();
    dir_.reset();
  }

  storage::store_options options() {
    storage::store_options o;
    if (dir_) o.dir = dir_->path();
    o.log = [this](const std::string& line) {
      std::lock_guard lk(log_mu_);
      log_.push_back(line);
    };
    return o;
  }
  std::unique_ptr<ports::store> open() {
    if (!dir_) return storage::open_memory_store(disk_, options(), executor, clock);
    storage::group_commit_options o;
    o.log = options().log;
    return std::make_unique<storage::group_commit_store>(storage::open_rocksdb_backend(dir_->path(), rocksdb_failing_),
                                                         o, executor, clock);
  }
  void set_failing(bool failing) {
    if (disk_) storage::set_failing(*disk_, failing);
    else *rocksdb_failing_ = failing ? storage::injected_fault::no_space : storage::injected_fault::none;
  }
  // Opens the store (closing the current one first) and loads it.
  ports::restored_state reopen() {
    store.reset();
    store = open();
    return store->load();
  }
  void close() { store.reset(); }

  // Appends and waits until durable.
  ports::store::ticket commit(std::vector<ports::store_op> ops) {
    auto t = store->append(ops);
    EXPECT_TRUE(store->flush(std::chrono::seconds(5)));
    return t;
  }

  std::unique_ptr<storage::kv_backend> raw() {
    if (dir_) return storage::open_rocksdb_backend(dir_->path());
    return storage::open_memory_backend(disk_);
  }
  // Every key of column c (closes the store).
  std::vector<std::string> keys(storage::column c) {
    close();
    std::vector<std::string> out;
    raw()->scan(c, [&](std::string_view k, std::string_view) { out.emplace_back(k); });
    return out;
  }
  void raw_put(storage::column c, std::string key, std::string value) {
    close();
    auto b = raw();
    ASSERT_TRUE(b->write({{storage::kv_write::kind::put, c, std::move(key), std::move(value)}}, true).ok());
  }

  std::vector<std::string> log_lines() {
    std::lock_guard lk(log_mu_);
    return log_;
  }

  queued_executor executor{2};
  manual_clock clock;
  std::unique_ptr<ports::store> store;

 private:
  std::unique_ptr<temp_dir> dir_;
  std::shared_ptr<storage::memory_disk> disk_;
  std::shared_ptr<std::atomic<storage::injected_fault>> rocksdb_failing_ =
      std::make_shared<std::atomic<storage::injected_fault>>(storage::injected_fault::none);
  std::mutex log_mu_;
  std::vector<std::string> log_;
};

// |a - b| < 1 s (times go through wall-clock milliseconds and back).
inline bool near(std::optional<ports::time_point> a, std::optional<ports::time_point> b) {
  if (!a || !b) return !a && !b;
  auto d = *a > *b ? *a - *b : *b - *a;
  return d < std::chrono::seconds(1);
}

}  // namespace flock::testing
