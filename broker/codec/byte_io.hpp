#pragma once
// Internal to the codec: bounds-checked big-endian reader over a byte span and
// an unchecked writer into a buffer whose size was computed beforehand.
// Everything is inline so the hot path (PUBLISH) compiles to plain loads and
// stores; the reader never touches memory outside [p_, end_).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace flock::codec::detail {

// Largest value a 4-byte variable byte integer can carry (spec 1.5.5).
inline constexpr std::uint32_t max_varint = 268'435'455;
// Two-byte length prefix of strings and binary data.
inline constexpr std::size_t max_prefixed = 65'535;

class byte_reader {
 public:
  byte_reader(const std::uint8_t* begin, const std::uint8_t* end) : p_(begin), end_(end) {}

  std::size_t remaining() const { return static_cast<std::size_t>(end_ - p_); }
  bool empty() const { return p_ == end_; }

  bool read_u8(std::uint8_t& v) {
    if (p_ == end_) return false;
    v = *p_++;
    return true;
  }

  bool read_u16(std::uint16_t& v) {
    if (remaining() < 2) return false;
    v = static_cast<std::uint16_t>((p_[0] << 8) | p_[1]);
    p_ += 2;
    return true;
  }

  bool read_u32(std::uint32_t& v) {
    if (remaining() < 4) return false;
    v = (std::uint32_t{p_[0]} << 24) | (std::uint32_t{p_[1]} << 16) | (std::uint32_t{p_[2]} << 8) | p_[3];
    p_ += 4;
    return true;
  }

  // Variable byte integer: at most 4 bytes; a fifth continuation is malformed.
  // Non-minimal encodings are accepted (as most brokers do).
  bool read_varint(std::uint32_t& v) {
    std::uint32_t value = 0;
    for (int i = 0; i < 4; ++i) {
      if (p_ == end_) return false;
      std::uint8_t b = *p_++;
      value |= std::uint32_t{b & 0x7Fu} << (7 * i);
      if ((b & 0x80) == 0) {
        v = value;
        return true;
      }
    }
    return false;
  }

  bool read_bytes(std::size_t n, std::string_view& out) {
    if (remaining() < n) return false;
    out = std::string_view(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return true;
  }

  // Two-byte length followed by that many bytes (UTF-8 string or binary data).
  bool read_prefixed(std::string_view& out) {
    std::uint16_t n;
    return read_u16(n) && read_bytes(n, out);
  }

  // Splits off the next `n` bytes as their own reader (e.g. a property block).
  bool take(std::size_t n, byte_reader& out) {
    if (remaining() < n) return false;
    out = byte_reader(p_, p_ + n);
    p_ += n;
    return true;
  }

  std::string_view rest() {
    std::string_view s(reinterpret_cast<const char*>(p_), remaining());
    p_ = end_;
    return s;
  }

 private:
  const std::uint8_t* p_;
  const std::uint8_t* end_;
};

inline constexpr std::size_t varint_size(std::size_t v) {
  std::size_t n = 1;
  while (v >= 128) {
    v >>= 7;
    ++n;
  }
  return n;
}

// Strings longer than the two-byte prefix allows are truncated by the writer,
// so the frame stays well formed; the size function agrees with the writer.
inline constexpr std::size_t prefixed_size(std::string_view s) { return 2 + std::min(s.size(), max_prefixed); }

// Writes into memory the caller has already sized exactly (see encode.cpp).
class byte_writer {
 public:
  explicit byte_writer(char* p) : p_(p) {}
  char* position() const { return p_; }

  void u8(std::uint8_t v) { *p_++ = static_cast<char>(v); }
  void u16(std::uint16_t v) {
    p_[0] = static_cast<char>(v >> 8);
    p_[1] = static_cast<char>(v);
    p_ += 2;
  }
  void u32(std::uint32_t v) {
    p_[0] = static_cast<char>(v >> 24);
    p_[1] = static_cast<char>(v >> 16);
    p_[2] = static_cast<char>(v >> 8);
    p_[3] = static_cast<char>(v);
    p_ += 4;
  }
  void varint(std::size_t v) {
    do {
      std::uint8_t b = v & 0x7F;
      v >>= 7;
      if (v != 0) b |= 0x80;
      *p_++ = static_cast<char>(b);
    } while (v != 0);
  }
  void raw(std::string_view s) {
    if (!s.empty()) std::memcpy(p_, s.data(), s.size());
    p_ += s.size();
  }
  void prefixed(std::string_view s) {
    s = s.substr(0, max_prefixed);
    u16(static_cast<std::uint16_t>(s.size()));
    raw(s);
  }

 private:
  char* p_;
};

}  // namespace flock::codec::detail
