// See partition_writes.hpp.
#include "storage/partition_writes.hpp"

#include "proto/records.pb.h"
#include "storage/keys.hpp"

namespace flock::storage {
namespace {

bool partitioned(column c) {
  switch (c) {
    case column::sessions:
    case column::subscriptions:
    case column::messages:
    case column::queue:
    case column::inflight:
    case column::incoming: return true;
    case column::meta:
    case column::retained: return false;
  }
  return false;
}

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7F) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}

class reader {
 public:
  explicit reader(std::string_view in) : in_(in) {}
  bool done() const { return in_.empty(); }
  std::optional<std::uint8_t> byte() {
    if (in_.empty()) return std::nullopt;
    auto b = static_cast<std::uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return b;
  }
  std::optional<std::string_view> bytes() {
    std::uint64_t n = 0;
    for (int shift = 0;; shift += 7) {
      auto b = byte();
      if (!b || shift > 63) return std::nullopt;
      n |= std::uint64_t{*b & 0x7Fu} << shift;
      if (!(*b & 0x80)) break;
    }
    if (n > in_.size()) return std::nullopt;
    auto out = in_.substr(0, n);
    in_.remove_prefix(n);
    return out;
  }

 private:
  std::string_view in_;
};

bool in_partition(std::string_view key, replication::partition_id p) {
  return key.size() >= 2 && keys::get_be16(key) == p;
}

}  // namespace

std::optional<replication::partition_id> partition_of_write(const kv_write& w) {
  if (!partitioned(w.col) || w.key.size() < 2) return std::nullopt;
  return keys::get_be16(w.key);
}

kv_write position_write(replication::partition_id p, const ports::partition_position& pos) {
  flock::records::PartitionRecord r;
  r.set_epoch(pos.epoch);
  r.set_lsn(pos.lsn);
  kv_write w{kv_write::kind::put, column::sessions, {}, r.SerializeAsString()};
  keys::put_be16(w.key, p);
  return w;
}

std::optional<ports::partition_position> decode_position(std::string_view value) {
  flock::records::PartitionRecord r;
  if (!r.ParseFromArray(value.data(), static_cast<int>(value.size()))) return std::nullopt;
  return ports::partition_position{r.epoch(), r.lsn()};
}

void drop_partition(replication::partition_id p, kv_batch& out) {
  auto [begin, end] = keys::partition_range(p);
  for (column c : partition_columns) out.push_back(kv_write{kv_write::kind::del_range, c, begin, end});
}

std::string read_partition_chunk(const kv_view& view, replication::partition_id p, partition_cursor& cursor,
                                 std::size_t max_bytes) {
  const auto [begin, end] = keys::partition_range(p);
  std::string out;
  while (!cursor.done && out.size() < max_bytes) {
    const column c = partition_columns[cursor.column_index];
    const std::string from = cursor.next_key.empty() ? begin : cursor.next_key;
    bool more = false;  // stopped before the column's end
    view.scan_range(c, from, end, [&](std::string_view key, std::string_view value) {
      if (out.size() >= max_bytes) {
        cursor.next_key.assign(key);
        more = true;
        return false;
      }
      if (c == column::sessions && is_position_key(key)) return true;
      encode_writes(kv_write{kv_write::kind::put, c, std::string(key), std::string(value)}, out);
      return true;
    });
    if (more) break;
    cursor.next_key.clear();
    if (++cursor.column_index == std::size(partition_columns)) cursor.done = true;
  }
  return out;
}

void encode_writes(const kv_write& w, std::string& out) {
  out += static_cast<char>(w.op);
  out += static_cast<char>(w.col);
  put_varint(out, w.key.size());
  out += w.key;
  put_varint(out, w.value.size());
  out += w.value;
}

std::optional<kv_batch> decode_writes(std::string_view bytes, replication::partition_id p) {
  const auto end = keys::partition_range(p).second;
  kv_batch out;
  reader r(bytes);
  while (!r.done()) {
    auto kind = r.byte();
    auto col = r.byte();
    if (!kind || !col || *kind > static_cast<std::uint8_t>(kv_write::kind::del_range) || *col >= column_count)
      return std::nullopt;
    auto key = r.bytes();
    auto value = r.bytes();
    if (!key || !value) return std::nullopt;
    kv_write w{static_cast<kv_write::kind>(*kind), static_cast<column>(*col), std::string(*key), std::string(*value)};
    if (!partitioned(w.col) || !in_partition(w.key, p)) return std::nullopt;
    // A range delete ends at most at the partition's end.
    if (w.op == kv_write::kind::del_range && (w.value < w.key || w.value > end)) return std::nullopt;
    out.push_back(std::move(w));
  }
  return out;
}

}  // namespace flock::storage
