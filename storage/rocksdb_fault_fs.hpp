#pragma once
// A RocksDB FileSystem that makes every file write fail while a switch is
// on, as a full disk would. It lets the store's failure handling (retry,
// back-off, DB::Resume()) be tested against RocksDB's real error path, not
// only against the memory twin. Included by rocksdb_backend.cpp only.
#include <rocksdb/file_system.h>

#include <atomic>
#include <memory>

#include "storage/rocksdb_backend.hpp"

namespace flock::storage {

std::shared_ptr<rocksdb::FileSystem> make_fault_fs(std::shared_ptr<rocksdb::FileSystem> base,
                                                   std::shared_ptr<const std::atomic<injected_fault>> fault);

}  // namespace flock::storage
