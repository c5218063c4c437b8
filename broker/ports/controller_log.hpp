#pragma once
// Where the replication controller keeps its Raft log (docs/replication.md,
// 1.3): term and vote, entries and the last snapshot, in the node's data
// directory beside its sessions. Every write is durable (fsynced) when it
// returns, as Raft requires of votes and appended entries; it is a few
// writes per membership change or failover, never per message.
//
// Threads: one caller at a time (the node's thread), concurrently with the
// store's own writer. load() at start-up, before the first write.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace flock::ports {

struct controller_entry {
  std::uint64_t term = 0;
  std::uint16_t type = 0;  // libraft's: command, barrier, configuration change
  std::string data;
  bool operator==(const controller_entry&) const = default;
};

struct controller_snapshot {
  std::uint64_t index = 0;  // the last entry it covers
  std::uint64_t term = 0;
  std::string configuration;  // the Raft configuration as of index, encoded by the controller
  std::uint64_t configuration_index = 0;
  std::string data;  // the controller's state
  bool operator==(const controller_snapshot&) const = default;
};

struct controller_log_state {
  std::uint64_t term = 0;
  std::uint64_t vote = 0;
  std::uint64_t first_index = 1;  // the index of entries.front()
  std::vector<controller_entry> entries;
  std::optional<controller_snapshot> snapshot;
  bool operator==(const controller_log_state&) const = default;
};

class controller_log {
 public:
  virtual ~controller_log() = default;
  // Throws std::runtime_error (one line naming the data) when what is
  // stored does not decode.
  virtual controller_log_state load() = 0;
  // Each returns false when the write failed (nothing of it was written).
  virtual bool save_term_vote(std::uint64_t term, std::uint64_t vote) = 0;
  // Entries from index `first` on.
  virtual bool append(std::uint64_t first, std::span<const controller_entry> entries) = 0;
  // Drops the entries from `index` on.
  virtual bool truncate(std::uint64_t index) = 0;
  // Keeps `s` as the snapshot and drops the entries below `keep_from`.
  virtual bool save_snapshot(const controller_snapshot& s, std::uint64_t keep_from) = 0;
};

}  // namespace flock::ports
