#pragma once
// ports::controller_log over the store's kv_backend: the replication
// controller's Raft log in the default column family, beside the format
// record, under keys an older flock never reads:
//
//   controller/term            varint term, varint vote
//   controller/entry/be64(i)   varint term, varint type, data
//   controller/snapshot        index, term, configuration, its index, data
//
// Every write is one synced batch. No new column family: an older build
// opens the directory as before (it ignores these keys).
#include "broker/ports/controller_log.hpp"
#include "storage/kv_backend.hpp"

namespace flock::storage {

class controller_log_kv final : public ports::controller_log {
 public:
  explicit controller_log_kv(kv_backend& backend) : b_(backend) {}

  ports::controller_log_state load() override;
  bool save_term_vote(std::uint64_t term, std::uint64_t vote) override;
  bool append(std::uint64_t first, std::span<const ports::controller_entry> entries) override;
  bool truncate(std::uint64_t index) override;
  bool save_snapshot(const ports::controller_snapshot& s, std::uint64_t keep_from) override;

 private:
  bool write(kv_batch batch);
  kv_backend& b_;
};

}  // namespace flock::storage
