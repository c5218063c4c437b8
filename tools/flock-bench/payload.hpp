#pragma once
// The first 32 bytes of every payload flock-bench publishes, little-endian:
//   0  "FLB1"     magic, to tell our messages from anyone else's
//   4  run id     random per run: messages left in persistent sessions by an
//                 earlier run are counted as stale, not as received
//   8  publisher  publisher index (0..P-1)
//   12 topic      topic index the publisher sent it to (0..T-1)
//   16 sequence   per publisher, from 0, no gaps
//   24 sent       steady_clock nanoseconds at send (same process => comparable)
// The rest of the payload is filler up to --payload bytes. Pure std.
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace flock::bench {

struct payload_header {
  std::uint32_t run_id = 0;
  std::uint32_t publisher = 0;
  std::uint32_t topic = 0;
  std::uint64_t sequence = 0;
  std::int64_t sent_ns = 0;
  bool operator==(const payload_header&) const = default;
};

inline constexpr std::size_t payload_header_size = 32;
inline constexpr char payload_magic[4] = {'F', 'L', 'B', '1'};

namespace detail {
template <typename T>
void put_le(char* out, T v) {
  auto u = static_cast<std::uint64_t>(v);
  for (std::size_t i = 0; i < sizeof(T); ++i) out[i] = static_cast<char>((u >> (8 * i)) & 0xFF);
}
template <typename T>
T get_le(const char* in) {
  std::uint64_t u = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) u |= std::uint64_t{static_cast<unsigned char>(in[i])} << (8 * i);
  return static_cast<T>(u);
}
}  // namespace detail

// Writes the header over the first 32 bytes of `payload` (size >= 32).
inline void write_payload_header(std::string& payload, const payload_header& h) {
  char* p = payload.data();
  std::memcpy(p, payload_magic, 4);
  detail::put_le<std::uint32_t>(p + 4, h.run_id);
  detail::put_le<std::uint32_t>(p + 8, h.publisher);
  detail::put_le<std::uint32_t>(p + 12, h.topic);
  detail::put_le<std::uint64_t>(p + 16, h.sequence);
  detail::put_le<std::int64_t>(p + 24, h.sent_ns);
}

// A payload of `size` bytes (>= 32): header space, then printable filler.
inline std::string make_payload(std::size_t size) {
  std::string p(size < payload_header_size ? payload_header_size : size, '\0');
  for (std::size_t i = payload_header_size; i < p.size(); ++i) p[i] = static_cast<char>('a' + i % 26);
  return p;
}

inline std::optional<payload_header> read_payload_header(std::string_view payload) {
  if (payload.size() < payload_header_size || std::memcmp(payload.data(), payload_magic, 4) != 0) return std::nullopt;
  const char* p = payload.data();
  payload_header h;
  h.run_id = detail::get_le<std::uint32_t>(p + 4);
  h.publisher = detail::get_le<std::uint32_t>(p + 8);
  h.topic = detail::get_le<std::uint32_t>(p + 12);
  h.sequence = detail::get_le<std::uint64_t>(p + 16);
  h.sent_ns = detail::get_le<std::int64_t>(p + 24);
  return h;
}

}  // namespace flock::bench
