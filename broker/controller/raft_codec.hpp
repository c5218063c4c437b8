#pragma once
// libraft's messages (struct raft_message) as bytes on flock's peer
// streams. Decoding allocates with raft_malloc the way libraft's recv
// callback expects to own it (AppendEntries: one batch for the entries'
// data; InstallSnapshot: its configuration and data), and validates every
// length and count first: a peer's bytes never crash the engine.
#include <optional>
#include <string>
#include <string_view>

#include "broker/controller/libraft.hpp"
#include "broker/controller/raft_storage.hpp"

namespace flock::controller {

std::string encode_raft_message(const raft_message& m);

// libraft's configuration and ours. to_raft fails (false, `out` left
// empty) on what libraft refuses: an id 0 or listed twice, a bad role.
bool to_raft(const std::vector<raft_server_info>& servers, raft_configuration& out);
std::vector<raft_server_info> from_raft(const raft_configuration& c);

// A decoded message and what it owns until it is handed to libraft
// (release()) or destroyed.
class decoded_raft_message {
 public:
  decoded_raft_message() = default;
  decoded_raft_message(const decoded_raft_message&) = delete;
  decoded_raft_message& operator=(const decoded_raft_message&) = delete;
  decoded_raft_message(decoded_raft_message&& o) noexcept : msg_(o.msg_), owns_(o.owns_) { o.owns_ = false; }
  ~decoded_raft_message();
  raft_message& get() { return msg_; }
  // libraft owns the buffers from now on.
  raft_message* release() {
    owns_ = false;
    return &msg_;
  }

 private:
  friend std::optional<decoded_raft_message> decode_raft_message(std::string_view in);
  raft_message msg_{};
  bool owns_ = false;
};

// Nullopt for a malformed message (unknown type, cut short, trailing bytes,
// absurd counts). server_id and server_address are left for the caller.
std::optional<decoded_raft_message> decode_raft_message(std::string_view in);

}  // namespace flock::controller
