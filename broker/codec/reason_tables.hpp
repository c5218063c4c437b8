#pragma once
// Internal to the codec: which MQTT 5 reason codes each packet may carry
// (spec 3.2.2.2, 3.4.2.1, 3.5.2.1, 3.6.2.1, 3.7.2.1, 3.9.3, 3.11.3, 3.14.2.1,
// 3.15.2.1). A code outside its packet's list is treated as a protocol error.
#include <array>
#include <cstdint>
#include <initializer_list>

namespace flock::codec::detail {

class reason_set {
 public:
  constexpr reason_set(std::initializer_list<std::uint8_t> codes) {
    for (auto c : codes) bits_[c >> 6] |= std::uint64_t{1} << (c & 63);
  }
  constexpr bool contains(std::uint8_t c) const { return (bits_[c >> 6] >> (c & 63)) & 1; }

 private:
  std::array<std::uint64_t, 4> bits_{};
};

inline constexpr reason_set connack_reasons{0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
                                            0x8A, 0x8C, 0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F};
inline constexpr reason_set puback_reasons{0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99};  // and PUBREC
inline constexpr reason_set pubrel_reasons{0x00, 0x92};                                              // and PUBCOMP
inline constexpr reason_set suback_reasons{0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2};
inline constexpr reason_set unsuback_reasons{0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91};
inline constexpr reason_set disconnect_reasons{0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D,
                                               0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
                                               0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2};
inline constexpr reason_set auth_reasons{0x00, 0x18, 0x19};
// MQTT 3.1.1 SUBACK return codes (3.9.3); 3.1 had no 0x80 but it is harmless.
inline constexpr reason_set v3_suback_codes{0x00, 0x01, 0x02, 0x80};

}  // namespace flock::codec::detail
