#pragma once
// How the app gets a store: the only storage header outside storage/ needs.
// No RocksDB or protobuf types appear here.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "broker/ports/clock.hpp"
#include "broker/ports/executor.hpp"
#include "broker/ports/store.hpp"

namespace flock::storage {

enum class durability : std::uint8_t {
  sync,   // fsync every group: an acknowledged message survives power loss
  async,  // write every group to the OS: it survives a flockd crash, not power loss
};

struct store_options {
  std::string dir;
  durability mode = durability::async;
  std::function<void(const std::string&)> log;  // write errors, repairs at load; stderr when empty
  // Writes stop (the store turns unhealthy, QoS 1/2 is refused) while the
  // disk has less free space than this; see rocksdb_backend.hpp.
  std::uint64_t reserve_bytes = 64ull << 20;
};

// Throws std::runtime_error with ONE clear line: corrupt data ("data
// directory X is corrupt: ...; flockd will not start on it: move it away or
// restore a backup"), newer format (from load()), locked by another process
// ("data directory X is in use by another flockd"), not readable/writable.
std::unique_ptr<ports::store> open_rocksdb_store(const store_options& options, ports::executor& executor,
                                                 ports::clock& clock);

// The in-memory twin, for tests: the data lives in a memory_disk that
// outlives the store, so a test can close a store and open another on the
// same data, and make writes fail as on a full disk.
struct memory_disk;
std::shared_ptr<memory_disk> make_memory_disk();
void set_failing(memory_disk& disk, bool failing);
std::unique_ptr<ports::store> open_memory_store(std::shared_ptr<memory_disk> disk, const store_options& options,
                                                ports::executor& executor, ports::clock& clock);

}  // namespace flock::storage
