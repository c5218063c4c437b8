// CONNECT / CONNACK inputs the decoder must refuse, and the reason it gives.
#include <gtest/gtest.h>

#include "broker/codec/codec.hpp"
#include "tests/unit/codec/codec_test_util.hpp"

namespace flock::codec::test {
namespace {

// CONNECT with the given name, level and flags; body fields follow.
bytes connect_with(std::string_view name, std::uint8_t level, std::uint8_t flags, const bytes& rest) {
  return framed(0x10, cat({str(name), {level}, {flags}, {0x00, 0x3C}, rest}));
}

TEST(decode_connect, unknown_protocol_name_is_protocol_error) {
  EXPECT_EQ(decode_error(connect_with("HTTP", 4, 0x02, str("c")), v311), 0x82);
}

TEST(decode_connect, mqtt_level_3_is_unsupported_version) {
  EXPECT_EQ(decode_error(connect_with("MQTT", 3, 0x02, str("c")), v311), 0x84);
}

TEST(decode_connect, mqtt_level_6_is_unsupported_version) {
  EXPECT_EQ(decode_error(connect_with("MQTT", 6, 0x02, str("c")), v5), 0x84);
}

TEST(decode_connect, mqisdp_with_level_4_is_unsupported_version) {
  EXPECT_EQ(decode_error(connect_with("MQIsdp", 4, 0x02, str("c")), v311), 0x84);
}

TEST(decode_connect, truncated_protocol_name_is_malformed) {
  EXPECT_EQ(decode_error(bytes{0x10, 0x03, 0x00, 0x04, 'M'}, v311), 0x81);
}

TEST(decode_connect, reserved_flag_bit_is_malformed) {
  EXPECT_EQ(decode_error(connect_with("MQTT", 4, 0x03, str("c")), v311), 0x81);
  EXPECT_EQ(decode_error(connect_with("MQTT", 5, 0x03, cat({{0x00}, str("c")})), v5), 0x81);
}

TEST(decode_connect, will_qos_without_will_flag_is_malformed) {
  EXPECT_EQ(decode_error(connect_with("MQTT", 4, 0x0A /* will QoS 1, clean */, str("c")), v311), 0x81);
}

TEST(decode_connect, will_retain_without_will_flag_is_malformed) {
  EXPECT_EQ(decode_error(connect_with("MQTT", 4, 0x22 /* will retain, clean */, str("c")), v311), 0x81);
}

TEST(decode_connect, will_qos_3_is_malformed) {
  EXPECT_EQ(decode_error(connect_with("MQTT", 4, 0x1E /* will QoS 3, will, clean */, cat({str("c"), str("w"), str("p")})),
                         v311),
            0x81);
}

TEST(decode_connect, password_without_user_name_is_malformed_in_v311) {
  EXPECT_EQ(decode_error(connect_with("MQTT", 4, 0x42, cat({str("c"), str("pw")})), v311), 0x81);
  EXPECT_EQ(decode_error(connect_with("MQIsdp", 3, 0x42, cat({str("c"), str("pw")})), v311), 0x81);
}

TEST(decode_connect, will_flag_without_will_fields_is_malformed) {
  EXPECT_EQ(decode_error(connect_with("MQTT", 4, 0x06, str("c")), v311), 0x81);
}

TEST(decode_connect, user_name_flag_without_user_name_is_malformed) {
  EXPECT_EQ(decode_error(connect_with("MQTT", 4, 0x82, str("c")), v311), 0x81);
}

TEST(decode_connect, trailing_bytes_after_payload_are_malformed) {
  EXPECT_EQ(decode_error(connect_with("MQTT", 4, 0x02, cat({str("c"), {0x00}})), v311), 0x81);
}

TEST(decode_connect, client_id_length_overrunning_packet_is_malformed) {
  EXPECT_EQ(decode_error(connect_with("MQTT", 4, 0x02, {0x00, 0x09, 'c'}), v311), 0x81);
}

TEST(decode_connect, invalid_utf8_client_id_is_malformed) {
  EXPECT_EQ(decode_error(connect_with("MQTT", 4, 0x02, str("\xC3\x28"sv)), v311), 0x81);
}

TEST(decode_connect, null_character_in_user_name_is_malformed) {
  EXPECT_EQ(decode_error(connect_with("MQTT", 4, 0x82, cat({str("c"), str("a\0b"sv)})), v311), 0x81);
}

TEST(decode_connect, surrogate_in_will_topic_is_malformed) {
  // U+D800 encoded as ED A0 80.
  EXPECT_EQ(decode_error(connect_with("MQTT", 4, 0x06, cat({str("c"), str("\xED\xA0\x80"sv), str("p")})), v311), 0x81);
}

TEST(decode_connect, missing_keep_alive_is_malformed) {
  EXPECT_EQ(decode_error(framed(0x10, cat({str("MQTT"), {0x04}, {0x02}, {0x00}})), v311), 0x81);
}

TEST(decode_connect, v5_missing_property_length_is_malformed) {
  EXPECT_EQ(decode_error(connect_with("MQTT", 5, 0x02, {}), v5), 0x81);
}

TEST(decode_connect, connect_flags_in_fixed_header_are_malformed) {
  bytes b = connect_with("MQTT", 4, 0x02, str("c"));
  b[0] = 0x11;
  EXPECT_EQ(decode_error(b, v311), 0x81);
}

TEST(decode_connack, reserved_acknowledge_flags_are_malformed) {
  EXPECT_EQ(decode_error(bytes{0x20, 0x02, 0x02, 0x00}, v311), 0x81);
  EXPECT_EQ(decode_error(bytes{0x20, 0x03, 0x80, 0x00, 0x00}, v5), 0x81);
}

TEST(decode_connack, v311_reserved_return_code_is_protocol_error) {
  EXPECT_EQ(decode_error(bytes{0x20, 0x02, 0x00, 0x06}, v311), 0x82);
}

TEST(decode_connack, v5_reason_code_not_allowed_in_connack_is_protocol_error) {
  EXPECT_EQ(decode_error(bytes{0x20, 0x03, 0x00, 0x10, 0x00}, v5), 0x82);
}

TEST(decode_connack, v311_extra_byte_is_malformed) {
  EXPECT_EQ(decode_error(bytes{0x20, 0x03, 0x00, 0x00, 0x00}, v311), 0x81);
}

TEST(decode_connack, v5_without_property_length_is_malformed) {
  EXPECT_EQ(decode_error(bytes{0x20, 0x02, 0x00, 0x00}, v5), 0x81);
}

}  // namespace
}  // namespace flock::codec::test
