#pragma once
// What a controller keeps of its Raft log: term, vote, entries after the
// last snapshot, and that snapshot. Held in memory for libraft's reads and
// written through to `durable` (the node's data directory,
// ports::controller_log) before anything that changed is reported done.
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/core/varint_io.hpp"
#include "broker/ports/controller_log.hpp"

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

  // Where each change is made durable first; null: memory only (tests).
  ports::controller_log* durable = nullptr;

  std::uint64_t last_index() const { return first_index + entries.size() - 1; }

  // What `log` holds, ready for libraft's load(); the configuration of its
  // snapshot decoded. Throws std::runtime_error when it does not decode.
  static raft_storage from(const ports::controller_log_state& log, ports::controller_log* durable);
};

// A Raft configuration as bytes: count, then id, address, role of each.
// The controller log's snapshots and the Raft messages on the wire
// (raft_codec) both use it.
std::string encode_configuration(const std::vector<raft_server_info>& servers);
// Reads one from `r` (at most 1024 servers, known roles); false and
// r.ok cleared when it does not decode.
bool read_configuration(core::varint_reader& r, std::vector<raft_server_info>& out);
// A whole buffer that holds one configuration and nothing else.
std::optional<std::vector<raft_server_info>> decode_configuration(std::string_view in);

}  // namespace flock::controller
