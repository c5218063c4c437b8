#pragma once
// Packet identifiers of one connection (MQTT 2.2.1): 1..65535, an id is in use
// from the PUBLISH/SUBSCRIBE that takes it until the flow ends (PUBACK,
// PUBCOMP, SUBACK). acquire() hands out the next free id after the last one,
// so ids are not reused sooner than necessary. The bitmap (8 KiB) is allocated
// on first use, so idle connections cost nothing. Pure std.
#include <cstdint>
#include <optional>
#include <vector>

namespace flock::bench {

class packet_id_pool {
 public:
  std::optional<std::uint16_t> acquire() {
    if (used_ == 65535) return std::nullopt;
    if (bits_.empty()) bits_.assign(1024, 0);
    std::uint16_t id = last_;
    for (;;) {
      id = static_cast<std::uint16_t>(id == 65535 ? 1 : id + 1);
      if (!in_use(id)) break;
    }
    bits_[id >> 6] |= std::uint64_t{1} << (id & 63);
    ++used_;
    last_ = id;
    return id;
  }

  // False when `id` was not in use (a peer acknowledging an id we never sent).
  bool release(std::uint16_t id) {
    if (!in_use(id)) return false;
    bits_[id >> 6] &= ~(std::uint64_t{1} << (id & 63));
    --used_;
    return true;
  }

  bool in_use(std::uint16_t id) const {
    return id != 0 && !bits_.empty() && (bits_[id >> 6] >> (id & 63)) & 1;
  }
  std::size_t size() const { return used_; }
  void clear() {
    bits_.clear();
    used_ = 0;
  }

 private:
  std::vector<std::uint64_t> bits_;
  std::uint16_t last_ = 0;
  std::size_t used_ = 0;
};

}  // namespace flock::bench
