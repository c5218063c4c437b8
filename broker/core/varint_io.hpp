#pragma once
// LEB128 varints and length-prefixed bytes, for flock's own flat encodings
// (core/message_codec.hpp, cluster/forward_codec.hpp). The reader never
// reads past its input: a cut or garbled buffer clears `ok`.
#include <cstdint>
#include <string>
#include <string_view>

namespace flock::core {

inline void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

inline void put_bytes(std::string& out, std::string_view b) {
  put_varint(out, b.size());
  out.append(b);
}

struct varint_reader {
  std::string_view in;
  std::size_t pos = 0;
  bool ok = true;

  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64 && pos < in.size(); shift += 7) {
      const auto b = static_cast<std::uint8_t>(in[pos++]);
      v |= std::uint64_t{b & 0x7Fu} << shift;
      if (!(b & 0x80)) return v;
    }
    ok = false;
    return 0;
  }
  std::string_view bytes() {
    const std::uint64_t n = varint();
    if (!ok || n > in.size() - pos) {
      ok = false;
      return {};
    }
    auto b = in.substr(pos, n);
    pos += n;
    return b;
  }
  std::uint8_t byte() {
    if (pos >= in.size()) {
      ok = false;
      return 0;
    }
    return static_cast<std::uint8_t>(in[pos++]);
  }
};

}  // namespace flock::core
