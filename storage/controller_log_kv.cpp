#include "storage/controller_log_kv.hpp"

#include "broker/core/varint_io.hpp"
#include "storage/errors.hpp"
#include "storage/keys.hpp"

namespace flock::storage {

namespace {

using core::put_bytes;
using core::put_varint;

constexpr std::string_view prefix = "controller/";
constexpr std::string_view term_key = "controller/term";
constexpr std::string_view snapshot_key = "controller/snapshot";
constexpr std::string_view entry_prefix = "controller/entry/";
// Just past every entry key: '0' follows '/'.
constexpr std::string_view entries_end = "controller/entry0";

std::string entry_key(std::uint64_t index) {
  std::string k(entry_prefix);
  keys::put_be64(k, index);
  return k;
}

}  // namespace

bool controller_log_kv::write(kv_batch batch) { return b_.write(batch, true).ok(); }

ports::controller_log_state controller_log_kv::load() {
  ports::controller_log_state out;
  bool have_entries = false;
  auto bad = [&](std::string_view key, std::string_view what) {
    throw_corrupt(b_.location(), "column family default, key " + hex(key) + ": " + std::string(what));
  };
  b_.scan(column::meta, [&](std::string_view key, std::string_view value) {
    if (!key.starts_with(prefix)) return;
    core::varint_reader r{value};
    if (key == term_key) {
      out.term = r.varint();
      out.vote = r.varint();
    } else if (key == snapshot_key) {
      ports::controller_snapshot s;
      s.index = r.varint();
      s.term = r.varint();
      s.configuration = std::string(r.bytes());
      s.configuration_index = r.varint();
      s.data = std::string(r.bytes());
      out.snapshot = std::move(s);
    } else if (key.starts_with(entry_prefix) && key.size() == entry_prefix.size() + 8) {
      const auto index = keys::get_be64(key.substr(entry_prefix.size()));
      if (!have_entries) {
        out.first_index = index;
        have_entries = true;
      } else if (index != out.first_index + out.entries.size()) {
        bad(key, "a gap in the controller's log");
      }
      ports::controller_entry e;
      e.term = r.varint();
      const auto type = r.varint();
      if (type > 0xFFFF) r.ok = false;
      e.type = static_cast<std::uint16_t>(type);
      e.data = std::string(r.bytes());
      out.entries.push_back(std::move(e));
    } else {
      bad(key, "not a key of the controller's log");
    }
    if (!r.ok || r.pos != value.size()) bad(key, "record does not decode");
  });
  if (!have_entries && out.snapshot) out.first_index = out.snapshot->index + 1;
  return out;
}

bool controller_log_kv::save_term_vote(std::uint64_t term, std::uint64_t vote) {
  std::string v;
  put_varint(v, term);
  put_varint(v, vote);
  return write({{kv_write::kind::put, column::meta, std::string(term_key), std::move(v)}});
}

bool controller_log_kv::append(std::uint64_t first, std::span<const ports::controller_entry> entries) {
  kv_batch batch;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    std::string v;
    put_varint(v, entries[i].term);
    put_varint(v, entries[i].type);
    put_bytes(v, entries[i].data);
    batch.push_back({kv_write::kind::put, column::meta, entry_key(first + i), std::move(v)});
  }
  return write(std::move(batch));
}

bool controller_log_kv::truncate(std::uint64_t index) {
  return write({{kv_write::kind::del_range, column::meta, entry_key(index), std::string(entries_end)}});
}

bool controller_log_kv::save_snapshot(const ports::controller_snapshot& s, std::uint64_t keep_from) {
  std::string v;
  put_varint(v, s.index);
  put_varint(v, s.term);
  put_bytes(v, s.configuration);
  put_varint(v, s.configuration_index);
  put_bytes(v, s.data);
  return write({{kv_write::kind::put, column::meta, std::string(snapshot_key), std::move(v)},
                {kv_write::kind::del_range, column::meta, entry_key(0), entry_key(keep_from)}});
}

}  // namespace flock::storage
