#include "broker/controller/raft_storage.hpp"

#include <stdexcept>

#include "broker/core/varint_io.hpp"

namespace flock::controller {

std::string encode_configuration(const std::vector<raft_server_info>& servers) {
  std::string out;
  core::put_varint(out, servers.size());
  for (const auto& s : servers) {
    core::put_varint(out, s.id);
    core::put_bytes(out, s.address);
    core::put_varint(out, static_cast<std::uint64_t>(s.role));
  }
  return out;
}

bool read_configuration(core::varint_reader& r, std::vector<raft_server_info>& out) {
  const auto n = r.varint();
  if (n > 1024) r.ok = false;
  for (std::uint64_t i = 0; i < n && r.ok; ++i) {
    raft_server_info s;
    s.id = r.varint();
    s.address = std::string(r.bytes());
    const auto role = r.varint();
    if (role > 2) r.ok = false;  // voter, standby, spare
    s.role = static_cast<int>(role);
    out.push_back(std::move(s));
  }
  return r.ok;
}

std::optional<std::vector<raft_server_info>> decode_configuration(std::string_view in) {
  core::varint_reader r{in};
  std::vector<raft_server_info> out;
  if (!read_configuration(r, out) || r.pos != in.size()) return std::nullopt;
  return out;
}

raft_storage raft_storage::from(const ports::controller_log_state& log, ports::controller_log* durable) {
  raft_storage st;
  st.term = log.term;
  st.vote = log.vote;
  st.first_index = log.first_index;
  for (const auto& e : log.entries) st.entries.push_back({e.term, e.type, e.data});
  if (log.snapshot) {
    auto conf = decode_configuration(log.snapshot->configuration);
    if (!conf) throw std::runtime_error("the controller's snapshot names a configuration that does not decode");
    st.last_snapshot = snapshot{log.snapshot->index, log.snapshot->term, std::move(*conf),
                                log.snapshot->configuration_index, log.snapshot->data};
  }
  st.durable = durable;
  return st;
}

}  // namespace flock::controller
