#include "broker/controller/raft_codec.hpp"

#include <cstring>
#include <vector>

#include "broker/core/varint_io.hpp"

namespace flock::controller {

namespace {

using core::put_bytes;
using core::put_varint;

constexpr std::uint64_t max_entries = 1u << 20;
void put_configuration(std::string& out, const raft_configuration& c) { out += encode_configuration(from_raft(c)); }

bool read_configuration(core::varint_reader& r, raft_configuration& c) {
  std::vector<raft_server_info> servers;
  raft_configuration_init(&c);
  return controller::read_configuration(r, servers) && to_raft(servers, c);
}

}  // namespace

bool to_raft(const std::vector<raft_server_info>& servers, raft_configuration& out) {
  raft_configuration_init(&out);
  for (const auto& s : servers) {
    if (raft_configuration_add(&out, s.id, s.address.c_str(), s.role) != 0) {
      raft_configuration_close(&out);
      raft_configuration_init(&out);
      return false;
    }
  }
  return true;
}

std::vector<raft_server_info> from_raft(const raft_configuration& c) {
  std::vector<raft_server_info> out;
  for (unsigned i = 0; i < c.n; ++i)
    out.push_back({c.servers[i].id, c.servers[i].address ? c.servers[i].address : "", c.servers[i].role});
  return out;
}

std::string encode_raft_message(const raft_message& m) {
  std::string out;
  put_varint(out, m.type);
  switch (m.type) {
    case RAFT_IO_REQUEST_VOTE: {
      const auto& v = m.request_vote;
      for (auto x : {v.term, v.candidate_id, v.last_log_index, v.last_log_term}) put_varint(out, x);
      put_varint(out, (v.disrupt_leader ? 1u : 0u) | (v.pre_vote ? 2u : 0u));
      break;
    }
    case RAFT_IO_REQUEST_VOTE_RESULT: {
      const auto& v = m.request_vote_result;
      put_varint(out, v.term);
      put_varint(out, v.vote_granted ? 1 : 0);
      put_varint(out, static_cast<std::uint64_t>(v.pre_vote));
      break;
    }
    case RAFT_IO_APPEND_ENTRIES: {
      const auto& a = m.append_entries;
      for (auto x : {a.term, a.prev_log_index, a.prev_log_term, a.leader_commit}) put_varint(out, x);
      put_varint(out, a.n_entries);
      for (unsigned i = 0; i < a.n_entries; ++i) {
        put_varint(out, a.entries[i].term);
        put_varint(out, a.entries[i].type);
        put_bytes(out, std::string_view(static_cast<const char*>(a.entries[i].buf.base), a.entries[i].buf.len));
      }
      break;
    }
    case RAFT_IO_APPEND_ENTRIES_RESULT: {
      const auto& a = m.append_entries_result;
      for (auto x : {a.term, a.rejected, a.last_log_index}) put_varint(out, x);
      break;
    }
    case RAFT_IO_INSTALL_SNAPSHOT: {
      const auto& s = m.install_snapshot;
      for (auto x : {s.term, s.last_index, s.last_term}) put_varint(out, x);
      put_configuration(out, s.conf);
      put_varint(out, s.conf_index);
      put_bytes(out, std::string_view(static_cast<const char*>(s.data.base), s.data.len));
      break;
    }
    case RAFT_IO_TIMEOUT_NOW: {
      const auto& t = m.timeout_now;
      for (auto x : {t.term, t.last_log_index, t.last_log_term}) put_varint(out, x);
      break;
    }
    default: break;
  }
  return out;
}

decoded_raft_message::~decoded_raft_message() {
  if (!owns_) return;
  if (msg_.type == RAFT_IO_APPEND_ENTRIES && msg_.append_entries.entries) {
    raft_free(msg_.append_entries.entries[0].batch);
    raft_free(msg_.append_entries.entries);
  } else if (msg_.type == RAFT_IO_INSTALL_SNAPSHOT) {
    raft_configuration_close(&msg_.install_snapshot.conf);
    raft_free(msg_.install_snapshot.data.base);
  }
}

std::optional<decoded_raft_message> decode_raft_message(std::string_view in) {
  core::varint_reader r{in};
  decoded_raft_message d;
  auto& m = d.msg_;
  const auto type = r.varint();
  if (!r.ok || type < RAFT_IO_APPEND_ENTRIES || type > RAFT_IO_TIMEOUT_NOW) return std::nullopt;
  m.type = static_cast<unsigned short>(type);
  switch (m.type) {
    case RAFT_IO_REQUEST_VOTE: {
      auto& v = m.request_vote;
      v.term = r.varint();
      v.candidate_id = r.varint();
      v.last_log_index = r.varint();
      v.last_log_term = r.varint();
      const auto flags = r.varint();
      if (flags > 3) return std::nullopt;
      v.disrupt_leader = flags & 1;
      v.pre_vote = flags & 2;
      break;
    }
    case RAFT_IO_REQUEST_VOTE_RESULT: {
      auto& v = m.request_vote_result;
      v.term = r.varint();
      const auto granted = r.varint();
      const auto pre_vote = r.varint();
      if (granted > 1 || pre_vote > raft_tribool_false) return std::nullopt;
      v.vote_granted = granted == 1;
      v.pre_vote = static_cast<raft_tribool>(pre_vote);
      break;
    }
    case RAFT_IO_APPEND_ENTRIES: {
      auto& a = m.append_entries;
      a.term = r.varint();
      a.prev_log_index = r.varint();
      a.prev_log_term = r.varint();
      a.leader_commit = r.varint();
      const auto n = r.varint();
      if (!r.ok || n > max_entries || n > in.size()) return std::nullopt;  // each entry takes 3 bytes at least
      if (n == 0) break;
      // First pass: where each entry's data is, and the batch's size.
      struct span {
        std::uint64_t term, type;
        std::string_view data;
      };
      std::vector<span> spans;
      spans.reserve(n);
      std::size_t total = 0;
      for (std::uint64_t i = 0; i < n && r.ok; ++i) {
        span s;
        s.term = r.varint();
        s.type = r.varint();
        s.data = r.bytes();
        if (s.type < RAFT_COMMAND || s.type > RAFT_CHANGE) r.ok = false;
        total += s.data.size();
        spans.push_back(s);
      }
      if (!r.ok) return std::nullopt;
      auto* batch = static_cast<char*>(raft_malloc(total > 0 ? total : 1));
      auto* entries = static_cast<raft_entry*>(raft_malloc(n * sizeof(raft_entry)));
      if (!batch || !entries) {
        raft_free(batch);
        raft_free(entries);
        return std::nullopt;
      }
      char* cursor = batch;
      for (std::size_t i = 0; i < spans.size(); ++i) {
        entries[i].term = spans[i].term;
        entries[i].type = static_cast<unsigned short>(spans[i].type);
        entries[i].buf.base = cursor;
        entries[i].buf.len = spans[i].data.size();
        entries[i].batch = batch;
        if (!spans[i].data.empty()) std::memcpy(cursor, spans[i].data.data(), spans[i].data.size());
        cursor += spans[i].data.size();
      }
      a.entries = entries;
      a.n_entries = static_cast<unsigned>(n);
      d.owns_ = true;
      break;
    }
    case RAFT_IO_APPEND_ENTRIES_RESULT: {
      auto& a = m.append_entries_result;
      a.term = r.varint();
      a.rejected = r.varint();
      a.last_log_index = r.varint();
      break;
    }
    case RAFT_IO_INSTALL_SNAPSHOT: {
      auto& s = m.install_snapshot;
      s.term = r.varint();
      s.last_index = r.varint();
      s.last_term = r.varint();
      if (!r.ok || !read_configuration(r, s.conf)) return std::nullopt;
      d.owns_ = true;  // the configuration, from here on
      s.conf_index = r.varint();
      const auto data = r.bytes();
      if (!r.ok) return std::nullopt;
      s.data.base = raft_malloc(data.size() > 0 ? data.size() : 1);
      if (!s.data.base) return std::nullopt;
      s.data.len = data.size();
      if (!data.empty()) std::memcpy(s.data.base, data.data(), data.size());
      break;
    }
    case RAFT_IO_TIMEOUT_NOW: {
      auto& t = m.timeout_now;
      t.term = r.varint();
      t.last_log_index = r.varint();
      t.last_log_term = r.varint();
      break;
    }
  }
  if (!r.ok || r.pos != in.size()) return std::nullopt;
  return d;
}

}  // namespace flock::controller
