// Fixed headers and packet bodies (other than CONNECT/CONNACK and property
// blocks) that the decoder must refuse, and the reason it gives.
#include <gtest/gtest.h>

#include "broker/codec/codec.hpp"
#include "tests/unit/codec/codec_test_util.hpp"

namespace flock::codec::test {
namespace {

// --- fixed header

TEST(decode_header, reserved_packet_type_0_is_malformed) {
  EXPECT_EQ(decode_error(bytes{0x00, 0x00}, v311), 0x81);
}

TEST(decode_header, pubrel_without_flags_0010_is_malformed) {
  EXPECT_EQ(decode_error(bytes{0x60, 0x02, 0x00, 0x01}, v311), 0x81);
  EXPECT_EQ(decode_error(bytes{0x60, 0x02, 0x00, 0x01}, v5), 0x81);
}

TEST(decode_header, subscribe_without_flags_0010_is_malformed) {
  EXPECT_EQ(decode_error(framed(0x80, cat({{0x00, 0x01}, str("t"), {0x00}})), v311), 0x81);
}

TEST(decode_header, unsubscribe_without_flags_0010_is_malformed) {
  EXPECT_EQ(decode_error(framed(0xA0, cat({{0x00, 0x01}, str("t")})), v5), 0x81);
}

TEST(decode_header, puback_with_flags_is_malformed) {
  EXPECT_EQ(decode_error(bytes{0x42, 0x02, 0x00, 0x01}, v311), 0x81);
}

TEST(decode_header, pingreq_with_flags_is_malformed) {
  EXPECT_EQ(decode_error(bytes{0xC1, 0x00}, v5), 0x81);
}

TEST(decode_header, auth_before_mqtt5_is_malformed) {
  EXPECT_EQ(decode_error(bytes{0xF0, 0x00}, v311), 0x81);
}

TEST(decode_header, bytes_beyond_remaining_length_are_malformed) {
  EXPECT_EQ(decode_error(bytes{0xC0, 0x00, 0x00}, v311), 0x81);
}

TEST(decode_header, remaining_length_beyond_bytes_is_malformed) {
  EXPECT_EQ(decode_error(bytes{0x40, 0x02, 0x00}, v311), 0x81);
}

TEST(decode_header, five_byte_remaining_length_is_malformed) {
  EXPECT_EQ(decode_error(bytes{0xC0, 0x80, 0x80, 0x80, 0x80, 0x00}, v311), 0x81);
}

TEST(decode_header, single_byte_is_malformed) {
  EXPECT_EQ(decode_error(bytes{0xC0}, v311), 0x81);
}

// --- PUBLISH

TEST(decode_publish, qos_3_is_malformed) {
  EXPECT_EQ(decode_error(framed(0x36, cat({str("t"), {0x00, 0x01}})), v311), 0x81);
  EXPECT_EQ(decode_error(framed(0x36, cat({str("t"), {0x00, 0x01}, {0x00}})), v5), 0x81);
}

TEST(decode_publish, dup_on_qos_0_is_protocol_error) {
  EXPECT_EQ(decode_error(framed(0x38, cat({str("t"), raw("x")})), v311), 0x82);
  EXPECT_EQ(decode_error(framed(0x38, cat({str("t"), {0x00}})), v5), 0x82);
}

TEST(decode_publish, packet_id_0_on_qos_1_is_protocol_error) {
  EXPECT_EQ(decode_error(framed(0x32, cat({str("t"), {0x00, 0x00}})), v311), 0x82);
}

TEST(decode_publish, missing_packet_id_is_malformed) {
  EXPECT_EQ(decode_error(framed(0x34, cat({str("t"), {0x01}})), v311), 0x81);
}

TEST(decode_publish, topic_length_overrunning_packet_is_malformed) {
  EXPECT_EQ(decode_error(bytes{0x30, 0x03, 0x00, 0x05, 'a'}, v311), 0x81);
}

TEST(decode_publish, invalid_utf8_topic_is_malformed) {
  EXPECT_EQ(decode_error(framed(0x30, cat({str("a\xFF"sv), raw("x")})), v311), 0x81);
}

TEST(decode_publish, overlong_utf8_topic_is_malformed) {
  EXPECT_EQ(decode_error(framed(0x30, cat({str("\xC0\xAF"sv)})), v311), 0x81);  // overlong '/'
}

TEST(decode_publish, v5_empty_topic_without_alias_is_protocol_error) {
  EXPECT_EQ(decode_error(framed(0x30, cat({str(""), {0x00}})), v5), 0x82);
}

TEST(decode_publish, v5_topic_alias_0_is_topic_alias_invalid) {
  EXPECT_EQ(decode_error(framed(0x30, cat({str("t"), {0x03, 0x23, 0x00, 0x00}})), v5), 0x94);
}

TEST(decode_publish, v5_missing_property_length_is_malformed) {
  EXPECT_EQ(decode_error(framed(0x30, str("t")), v5), 0x81);
}

// --- PUBACK / PUBREC / PUBREL / PUBCOMP

TEST(decode_pub_response, packet_id_0_is_protocol_error) {
  EXPECT_EQ(decode_error(bytes{0x40, 0x02, 0x00, 0x00}, v311), 0x82);
  EXPECT_EQ(decode_error(bytes{0x62, 0x02, 0x00, 0x00}, v5), 0x82);
}

TEST(decode_pub_response, v311_with_reason_byte_is_malformed) {
  EXPECT_EQ(decode_error(bytes{0x40, 0x03, 0x00, 0x01, 0x00}, v311), 0x81);
}

TEST(decode_pub_response, v5_puback_reason_not_allowed_is_protocol_error) {
  EXPECT_EQ(decode_error(bytes{0x40, 0x03, 0x00, 0x01, 0x92}, v5), 0x82);
}

TEST(decode_pub_response, v5_pubrel_reason_not_allowed_is_protocol_error) {
  EXPECT_EQ(decode_error(bytes{0x62, 0x03, 0x00, 0x01, 0x10}, v5), 0x82);
}

TEST(decode_pub_response, v5_property_length_overrunning_is_malformed) {
  EXPECT_EQ(decode_error(bytes{0x40, 0x05, 0x00, 0x01, 0x00, 0x05, 0x1F}, v5), 0x81);
}

TEST(decode_pub_response, too_short_is_malformed) {
  EXPECT_EQ(decode_error(bytes{0x40, 0x01, 0x01}, v5), 0x81);
}

// --- SUBSCRIBE

TEST(decode_subscribe, empty_payload_is_protocol_error) {
  EXPECT_EQ(decode_error(bytes{0x82, 0x02, 0x00, 0x01}, v311), 0x82);
  EXPECT_EQ(decode_error(bytes{0x82, 0x03, 0x00, 0x01, 0x00}, v5), 0x82);
}

TEST(decode_subscribe, packet_id_0_is_protocol_error) {
  EXPECT_EQ(decode_error(framed(0x82, cat({{0x00, 0x00}, str("t"), {0x00}})), v311), 0x82);
}

TEST(decode_subscribe, v311_qos_3_is_malformed) {
  EXPECT_EQ(decode_error(framed(0x82, cat({{0x00, 0x01}, str("t"), {0x03}})), v311), 0x81);
}

TEST(decode_subscribe, v311_requested_qos_upper_bits_are_malformed) {
  EXPECT_EQ(decode_error(framed(0x82, cat({{0x00, 0x01}, str("t"), {0x04}})), v311), 0x81);
  EXPECT_EQ(decode_error(framed(0x82, cat({{0x00, 0x01}, str("t"), {0x81}})), v31), 0x81);
}

TEST(decode_subscribe, v5_reserved_option_bits_are_malformed) {
  EXPECT_EQ(decode_error(framed(0x82, cat({{0x00, 0x01}, {0x00}, str("t"), {0x40}})), v5), 0x81);
  EXPECT_EQ(decode_error(framed(0x82, cat({{0x00, 0x01}, {0x00}, str("t"), {0x80}})), v5), 0x81);
}

TEST(decode_subscribe, v5_retain_handling_3_is_protocol_error) {
  EXPECT_EQ(decode_error(framed(0x82, cat({{0x00, 0x01}, {0x00}, str("t"), {0x30}})), v5), 0x82);
}

TEST(decode_subscribe, v5_qos_3_is_protocol_error) {
  EXPECT_EQ(decode_error(framed(0x82, cat({{0x00, 0x01}, {0x00}, str("t"), {0x03}})), v5), 0x82);
}

TEST(decode_subscribe, v5_no_local_on_shared_subscription_is_protocol_error) {
  EXPECT_EQ(decode_error(framed(0x82, cat({{0x00, 0x01}, {0x00}, str("$share/g/t"), {0x04}})), v5), 0x82);
  // The same filter without No Local is fine.
  decode_as<subscribe>(framed(0x82, cat({{0x00, 0x01}, {0x00}, str("$share/g/t"), {0x00}})), v5);
}

TEST(decode_subscribe, filter_without_options_byte_is_malformed) {
  EXPECT_EQ(decode_error(framed(0x82, cat({{0x00, 0x01}, str("a"), {0x00}, str("b")})), v311), 0x81);
}

TEST(decode_subscribe, invalid_utf8_filter_is_malformed) {
  EXPECT_EQ(decode_error(framed(0x82, cat({{0x00, 0x01}, str("\x80"sv), {0x00}})), v311), 0x81);
}

// --- SUBACK / UNSUBSCRIBE / UNSUBACK

TEST(decode_suback, v311_reserved_return_code_is_protocol_error) {
  EXPECT_EQ(decode_error(bytes{0x90, 0x03, 0x00, 0x01, 0x03}, v311), 0x82);
}

TEST(decode_suback, v5_reason_not_allowed_is_protocol_error) {
  EXPECT_EQ(decode_error(bytes{0x90, 0x04, 0x00, 0x01, 0x00, 0x10}, v5), 0x82);
}

TEST(decode_suback, empty_payload_is_protocol_error) {
  EXPECT_EQ(decode_error(bytes{0x90, 0x02, 0x00, 0x01}, v311), 0x82);
}

TEST(decode_unsubscribe, empty_payload_is_protocol_error) {
  EXPECT_EQ(decode_error(bytes{0xA2, 0x02, 0x00, 0x01}, v311), 0x82);
  EXPECT_EQ(decode_error(bytes{0xA2, 0x03, 0x00, 0x01, 0x00}, v5), 0x82);
}

TEST(decode_unsubscribe, filter_length_overrunning_is_malformed) {
  EXPECT_EQ(decode_error(bytes{0xA2, 0x05, 0x00, 0x01, 0x00, 0x04, 'a'}, v311), 0x81);
}

TEST(decode_unsubscribe, packet_id_0_is_protocol_error) {
  EXPECT_EQ(decode_error(framed(0xA2, cat({{0x00, 0x00}, str("t")})), v311), 0x82);
}

TEST(decode_unsuback, v311_payload_is_malformed) {
  EXPECT_EQ(decode_error(bytes{0xB0, 0x03, 0x00, 0x01, 0x00}, v311), 0x81);
}

TEST(decode_unsuback, v5_reason_not_allowed_is_protocol_error) {
  EXPECT_EQ(decode_error(bytes{0xB0, 0x04, 0x00, 0x01, 0x00, 0x02}, v5), 0x82);
}

// --- PINGREQ / PINGRESP / DISCONNECT / AUTH

TEST(decode_ping, pingreq_with_body_is_malformed) {
  EXPECT_EQ(decode_error(bytes{0xC0, 0x01, 0x00}, v311), 0x81);
  EXPECT_EQ(decode_error(bytes{0xD0, 0x01, 0x00}, v5), 0x81);
}

TEST(decode_disconnect, v311_with_body_is_malformed) {
  EXPECT_EQ(decode_error(bytes{0xE0, 0x01, 0x00}, v311), 0x81);
}

TEST(decode_disconnect, v5_reason_not_allowed_is_protocol_error) {
  EXPECT_EQ(decode_error(bytes{0xE0, 0x01, 0x01}, v5), 0x82);
}

TEST(decode_disconnect, v5_trailing_bytes_after_properties_are_malformed) {
  EXPECT_EQ(decode_error(bytes{0xE0, 0x03, 0x00, 0x00, 0x00}, v5), 0x81);
}

TEST(decode_auth, reason_not_allowed_is_protocol_error) {
  EXPECT_EQ(decode_error(bytes{0xF0, 0x02, 0x87, 0x00}, v5), 0x82);
}

}  // namespace
}  // namespace flock::codec::test
