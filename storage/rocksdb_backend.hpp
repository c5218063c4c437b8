#pragma once
// The RocksDB backend. Only this header's .cpp includes RocksDB, so nothing
// the core might see pulls RocksDB's headers (or <fcntl.h>'s `struct flock`,
// which clashes with `namespace flock`) into its translation units.
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "storage/kv_backend.hpp"

namespace flock::storage {

// Opens (creating if missing) the database in dir with every column family.
// Throws std::runtime_error with one line naming dir: corrupt, in use by
// another flockd, not readable/writable, or could not be opened.
//
// fault (tests): while it is not `none`, every file write fails, so the
// store's retry and recovery path runs against RocksDB's real errors.
// no_space is what a full disk gives (RocksDB resumes after it); io_error
// (EIO) is fatal to an open RocksDB, and recover() reopens the database.
enum class injected_fault : std::uint8_t { none, no_space, io_error };
//
// reserve_bytes: writes fail, without reaching RocksDB, while the file system
// of dir has less free space than this. RocksDB must never run out of space
// in its write-ahead log: a failed log write leaves the log writer unusable
// (Debian's librocksdb, built with assertions, even aborts on the next use),
// whereas refusing beforehand leaves nothing to repair. 0: no check.
std::unique_ptr<kv_backend> open_rocksdb_backend(const std::string& dir,
                                                 std::shared_ptr<const std::atomic<injected_fault>> fault = nullptr,
                                                 std::uint64_t reserve_bytes = 0);

}  // namespace flock::storage
