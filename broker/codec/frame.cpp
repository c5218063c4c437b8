#include "broker/codec/codec.hpp"
#include "broker/codec/reason_code.hpp"

namespace flock::codec {

frame peek_frame(std::span<const std::uint8_t> buffer, std::uint32_t max_packet_size) {
  frame f;
  std::size_t length = 0;
  // Remaining length starts at byte 1 and takes at most 4 bytes.
  for (std::size_t i = 0; i < 4; ++i) {
    if (buffer.size() < i + 2) return f;  // incomplete
    std::uint8_t b = buffer[i + 1];
    length |= std::size_t{b & 0x7Fu} << (7 * i);
    if ((b & 0x80) == 0) {
      std::size_t total = 1 + (i + 1) + length;
      // Rejected before the body arrives, so a peer cannot make us buffer it.
      if (total > max_packet_size) {
        f.state = frame::status::error;
        f.error = codec_error{rc::packet_too_large, "packet exceeds maximum packet size"};
        return f;
      }
      if (buffer.size() >= total) {
        f.state = frame::status::complete;
        f.size = total;
      }
      return f;
    }
  }
  f.state = frame::status::error;
  f.error = codec_error{rc::malformed_packet, "remaining length longer than 4 bytes"};
  return f;
}

}  // namespace flock::codec
