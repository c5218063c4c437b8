#pragma once
// The in-memory twin of the RocksDB backend: one std::map per column, kept
// in a memory_disk that outlives any store opened on it, so a test can
// destroy a store and "reopen" the same data, look at what was written, and
// make writes fail to play a full disk.
#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "storage/kv_backend.hpp"

namespace flock::storage {

struct memory_disk {
  // Guards columns: the writer thread writes while a test may read.
  mutable std::mutex mu;
  std::array<std::map<std::string, std::string, std::less<>>, column_count> columns;
  // While set, every write fails and changes nothing (a full disk).
  std::atomic<bool> failing{false};
  std::atomic<std::uint64_t> writes{0};          // batches written
  std::atomic<std::uint64_t> failed_writes{0};   // batches refused while failing
};

std::unique_ptr<kv_backend> open_memory_backend(std::shared_ptr<memory_disk> disk);

}  // namespace flock::storage
