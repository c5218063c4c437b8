#pragma once
// Helpers shared by the codec tests: byte vectors, decode-and-expect, encode.
#include <gtest/gtest.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "broker/codec/codec.hpp"

namespace flock::codec::test {

using namespace std::string_view_literals;
using bytes = std::vector<std::uint8_t>;
inline constexpr auto v31 = protocol_version::v31;
inline constexpr auto v311 = protocol_version::v311;
inline constexpr auto v5 = protocol_version::v5;

// Concatenates byte groups, so vectors can be written one labelled field per line.
inline bytes cat(std::initializer_list<bytes> parts) {
  bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// Two-byte length + characters.
inline bytes str(std::string_view s) {
  // Built byte by byte: vector::insert here trips a GCC 12 -Warray-bounds false positive.
  bytes out;
  out.reserve(2 + s.size());
  out.push_back(static_cast<std::uint8_t>(s.size() >> 8));
  out.push_back(static_cast<std::uint8_t>(s.size()));
  for (char c : s) out.push_back(static_cast<std::uint8_t>(c));
  return out;
}

inline bytes raw(std::string_view s) { return bytes(s.begin(), s.end()); }

// Fixed header byte + minimal remaining length + body.
inline bytes framed(std::uint8_t header, const bytes& body) {
  bytes out{header};
  std::size_t n = body.size();
  do {
    std::uint8_t b = n & 0x7F;
    n >>= 7;
    out.push_back(n ? (b | 0x80) : b);
  } while (n);
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

inline bytes to_bytes(const std::string& s) { return bytes(s.begin(), s.end()); }

inline bytes encode_bytes(const packet& p, protocol_version v) {
  std::string out;
  encode(p, v, out);
  return to_bytes(out);
}

// Decodes `b` and returns the packet as T, recording a test failure otherwise.
template <class T>
T decode_as(const bytes& b, protocol_version v) {
  auto r = decode(b, v);
  if (auto* e = std::get_if<codec_error>(&r)) {
    ADD_FAILURE() << "decode failed: reason 0x" << std::hex << int(e->reason) << " (" << e->message << ")";
    return T{};
  }
  const packet& p = std::get<packet>(r);
  if (auto* t = std::get_if<T>(&p)) return *t;
  ADD_FAILURE() << "decoded a different packet type (variant index " << p.index() << ")";
  return T{};
}

// Decodes `b` expecting failure; returns the reason (0 and a test failure if it decoded).
inline std::uint8_t decode_error(const bytes& b, protocol_version v) {
  auto r = decode(b, v);
  if (auto* e = std::get_if<codec_error>(&r)) return e->reason;
  ADD_FAILURE() << "expected a decode error, got packet index " << std::get<packet>(r).index();
  return 0;
}

}  // namespace flock::codec::test
