#pragma once
// What a controller keeps of its Raft log: term, vote, entries after the
// last snapshot, and that snapshot. Held in memory here; the node writes it
// through to its store (slice 4), tests keep it across a simulated crash.
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

namespace flock::controller {

struct raft_server_info {
  std::uint64_t id = 0;
  std::string address;
  int role = 0;  // RAFT_VOTER, RAFT_STANDBY, RAFT_SPARE
  bool operator==(const raft_server_info&) const = default;
};

struct raft_storage {
  struct entry {
    std::uint64_t term = 0;
    unsigned short type = 0;
    std::string data;
  };
  struct snapshot {
    std::uint64_t index = 0;
    std::uint64_t term = 0;
    std::vector<raft_server_info> configuration;
    std::uint64_t configuration_index = 0;
    std::string data;
  };

  std::uint64_t term = 0;
  std::uint64_t vote = 0;
  std::uint64_t first_index = 1;  // the index of entries.front()
  std::deque<entry> entries;
  std::optional<snapshot> last_snapshot;

  std::uint64_t last_index() const { return first_index + entries.size() - 1; }
};

}  // namespace flock::controller
