#pragma once
// Internal to the codec: per-packet body decoders shared by decode.cpp and
// decode_connect.cpp. Each reads the body (everything after the fixed header)
// into `out`, or fills `err` and returns false.
#include <cstdint>

#include "broker/codec/byte_io.hpp"
#include "broker/codec/codec.hpp"
#include "broker/codec/packet.hpp"

namespace flock::codec::detail {

inline bool fail(codec_error& err, std::uint8_t reason, const char* message) {
  err = codec_error{reason, message};
  return false;
}

// Fails unless the whole body was consumed.
inline bool expect_end(const byte_reader& r, codec_error& err) {
  return r.empty() || fail(err, 0x81, "trailing bytes after packet body");
}

bool decode_connect(byte_reader& r, connect& out, codec_error& err);
bool decode_connack(byte_reader& r, protocol_version v, connack& out, codec_error& err);

}  // namespace flock::codec::detail
