// See store_factory.hpp: a backend plus the group commit store over it.
#include "storage/store_factory.hpp"

#include "storage/group_commit_store.hpp"
#include "storage/memory_backend.hpp"
#include "storage/rocksdb_backend.hpp"

namespace flock::storage {
namespace {

group_commit_options commit_options(const store_options& o) {
  group_commit_options g;
  g.sync = o.mode == durability::sync;
  g.log = o.log;
  return g;
}

}  // namespace

std::unique_ptr<ports::store> open_rocksdb_store(const store_options& options, ports::executor& executor,
                                                 ports::clock& clock) {
  return std::make_unique<group_commit_store>(open_rocksdb_backend(options.dir, nullptr, options.reserve_bytes),
                                              commit_options(options), executor,
                                              clock);
}

std::shared_ptr<memory_disk> make_memory_disk() { return std::make_shared<memory_disk>(); }

void set_failing(memory_disk& disk, bool failing) { disk.failing.store(failing); }

std::unique_ptr<ports::store> open_memory_store(std::shared_ptr<memory_disk> disk, const store_options& options,
                                                ports::executor& executor, ports::clock& clock) {
  return std::make_unique<group_commit_store>(open_memory_backend(std::move(disk)), commit_options(options), executor,
                                              clock);
}

}  // namespace flock::storage
