#pragma once
// Internal to the codec: MQTT 5 property blocks (spec 2.2.2). Which property
// may appear where is one table (properties_codec.cpp), shared by the decoder
// (which rejects strays) and the encoder (which silently leaves them out, so it
// never emits a packet the decoder would refuse).
#include <cstddef>
#include <cstdint>

#include "broker/codec/byte_io.hpp"
#include "broker/codec/codec.hpp"
#include "broker/codec/packet.hpp"

namespace flock::codec::detail {

// Where a property block sits. pub_response covers PUBACK/PUBREC/PUBREL/PUBCOMP.
enum class prop_context : std::uint8_t {
  connect,
  connack,
  publish,
  will,
  pub_response,
  subscribe,
  suback,
  unsubscribe,
  unsuback,
  disconnect,
  auth,
};

// Reads the property length and the properties that follow from `r`.
// On failure fills `err` and returns false.
bool decode_properties(byte_reader& r, prop_context ctx, properties& out, codec_error& err);

// Size of the properties themselves, without the length prefix.
std::size_t properties_size(const properties& p, prop_context ctx);

// Writes the length prefix (`size` from properties_size) and the properties.
void write_properties(byte_writer& w, const properties& p, prop_context ctx, std::size_t size);

// Property length prefix + properties.
inline std::size_t properties_block_size(std::size_t size) { return varint_size(size) + size; }

}  // namespace flock::codec::detail
