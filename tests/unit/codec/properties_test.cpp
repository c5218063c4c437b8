// MQTT 5 property blocks: validation on decode, order and filtering on encode.
// Most cases wrap the block in a QoS 0 PUBLISH (topic "t") or a PUBACK.
#include <gtest/gtest.h>

#include "broker/codec/codec.hpp"
#include "tests/unit/codec/codec_test_util.hpp"

namespace flock::codec::test {
namespace {

// QoS 0 PUBLISH to "t" whose property block (length included) is `block`.
bytes publish_with(const bytes& block) { return framed(0x30, cat({str("t"), block, raw("p")})); }

// CONNECT v5 (client id "c") whose property block is `block`.
bytes connect_with(const bytes& block) {
  return framed(0x10, cat({str("MQTT"), {0x05}, {0x02}, {0x00, 0x00}, block, str("c")}));
}

TEST(properties, property_length_longer_than_four_bytes_is_malformed) {
  EXPECT_EQ(decode_error(publish_with({0x80, 0x80, 0x80, 0x80, 0x01}), v5), 0x81);
}

TEST(properties, property_length_overrunning_packet_is_malformed) {
  EXPECT_EQ(decode_error(framed(0x30, cat({str("t"), {0x09, 0x01, 0x01}})), v5), 0x81);
}

TEST(properties, value_overrunning_property_length_is_malformed) {
  // Length says 3 bytes but message expiry needs 1 + 4.
  EXPECT_EQ(decode_error(publish_with({0x03, 0x02, 0x00, 0x00, 0x00, 0x01}), v5), 0x81);
}

TEST(properties, unknown_identifier_is_malformed) {
  EXPECT_EQ(decode_error(publish_with({0x02, 0x05, 0x00}), v5), 0x81);
  EXPECT_EQ(decode_error(publish_with({0x02, 0x80, 0x01}), v5), 0x81);  // multi-byte identifier
}

TEST(properties, property_not_allowed_for_packet_type_is_malformed) {
  EXPECT_EQ(decode_error(publish_with({0x05, 0x11, 0x00, 0x00, 0x00, 0x01}), v5), 0x81);  // session expiry
  EXPECT_EQ(decode_error(connect_with({0x03, 0x23, 0x00, 0x01}), v5), 0x81);              // topic alias
  EXPECT_EQ(decode_error(connect_with({0x05, 0x18, 0x00, 0x00, 0x00, 0x01}), v5), 0x81);  // will delay
  EXPECT_EQ(decode_error(bytes{0x40, 0x05, 0x00, 0x01, 0x00, 0x01, 0x01 /* payload format */}, v5), 0x81);
}

TEST(properties, will_properties_reject_connect_only_property) {
  bytes b = framed(0x10, cat({str("MQTT"), {0x05}, {0x06}, {0x00, 0x00}, {0x00}, str("c"),
                              {0x02, 0x17, 0x01} /* request problem info in will */, str("w"), str("p")}));
  EXPECT_EQ(decode_error(b, v5), 0x81);
}

TEST(properties, duplicate_single_valued_property_is_protocol_error) {
  EXPECT_EQ(decode_error(publish_with({0x0A, 0x02, 0, 0, 0, 1, 0x02, 0, 0, 0, 2}), v5), 0x82);
  EXPECT_EQ(decode_error(publish_with({0x06, 0x03, 0x00, 0x00, 0x03, 0x00, 0x00}), v5), 0x82);  // content type
}

TEST(properties, two_subscription_identifiers_in_subscribe_is_protocol_error) {
  EXPECT_EQ(decode_error(framed(0x82, cat({{0x00, 0x01}, {0x04, 0x0B, 0x01, 0x0B, 0x02}, str("t"), {0x00}})), v5),
            0x82);
}

TEST(properties, subscription_identifier_0_is_protocol_error) {
  EXPECT_EQ(decode_error(publish_with({0x02, 0x0B, 0x00}), v5), 0x82);
  EXPECT_EQ(decode_error(framed(0x82, cat({{0x00, 0x01}, {0x02, 0x0B, 0x00}, str("t"), {0x00}})), v5), 0x82);
}

TEST(properties, subscription_identifier_longer_than_four_bytes_is_malformed) {
  EXPECT_EQ(decode_error(publish_with({0x06, 0x0B, 0x80, 0x80, 0x80, 0x80, 0x01}), v5), 0x81);
}

TEST(properties, receive_maximum_0_is_protocol_error) {
  EXPECT_EQ(decode_error(connect_with({0x03, 0x21, 0x00, 0x00}), v5), 0x82);
}

TEST(properties, maximum_packet_size_0_is_protocol_error) {
  EXPECT_EQ(decode_error(connect_with({0x05, 0x27, 0x00, 0x00, 0x00, 0x00}), v5), 0x82);
}

TEST(properties, request_problem_information_above_1_is_protocol_error) {
  EXPECT_EQ(decode_error(connect_with({0x02, 0x17, 0x02}), v5), 0x82);
}

TEST(properties, request_response_information_above_1_is_protocol_error) {
  EXPECT_EQ(decode_error(connect_with({0x02, 0x19, 0x02}), v5), 0x82);
}

TEST(properties, payload_format_indicator_above_1_is_protocol_error) {
  EXPECT_EQ(decode_error(publish_with({0x02, 0x01, 0x02}), v5), 0x82);
}

TEST(properties, maximum_qos_above_1_is_protocol_error) {
  EXPECT_EQ(decode_error(bytes{0x20, 0x05, 0x00, 0x00, 0x02, 0x24, 0x02}, v5), 0x82);
}

TEST(properties, invalid_utf8_in_user_property_is_malformed) {
  EXPECT_EQ(decode_error(publish_with(cat({{0x08, 0x26}, str("k"), str("\xF8\x88"sv)})), v5), 0x81);
}

TEST(properties, invalid_utf8_in_reason_string_is_malformed) {
  EXPECT_EQ(decode_error(framed(0x40, cat({{0x00, 0x01}, {0x00}, {0x04, 0x1F}, str("\xFF"sv)})), v5), 0x81);
}

TEST(properties, binary_correlation_data_is_not_utf8_checked) {
  auto p = decode_as<publish>(publish_with(cat({{0x05, 0x09}, str("\x00\xFF"sv)})), v5);
  EXPECT_EQ(p.props.correlation_data, std::string("\x00\xFF", 2));
}

TEST(properties, authentication_data_without_method_is_protocol_error) {
  EXPECT_EQ(decode_error(connect_with(cat({{0x04, 0x16}, str("x")})), v5), 0x82);
}

TEST(properties, user_properties_keep_their_order_and_repeats) {
  auto p = decode_as<publish>(
      publish_with(cat({{0x15}, {0x26}, str("b"), str("1"), {0x26}, str("a"), str("2"), {0x26}, str("b"), str("3")})),
      v5);
  EXPECT_EQ(p.props.user_properties, (std::vector<user_property>{{"b", "1"}, {"a", "2"}, {"b", "3"}}));
}

TEST(properties, encoder_writes_properties_in_identifier_order) {
  publish p;
  p.topic = "t";
  p.props.user_properties = {{"k", "v"}};
  p.props.topic_alias = 3;
  p.props.subscription_identifiers = {5, 200};
  p.props.payload_format_indicator = 1;
  bytes expected = framed(0x30, cat({
                                    str("t"),
                                    {0x11},             // property length 17
                                    {0x01, 0x01},       // payload format indicator
                                    {0x0B, 0x05},       // subscription identifier 5
                                    {0x0B, 0xC8, 0x01}, // subscription identifier 200
                                    {0x23, 0x00, 0x03}, // topic alias
                                    {0x26}, str("k"), str("v"),
                                }));
  EXPECT_EQ(encode_bytes(p, v5), expected);
}

TEST(properties, encoder_leaves_out_properties_not_allowed_in_packet) {
  pub_response a;
  a.packet_id = 1;
  a.props.topic_alias = 9;           // not allowed in PUBACK
  a.props.session_expiry_interval = 1;  // not allowed in PUBACK
  EXPECT_EQ(encode_bytes(a, v5), (bytes{0x40, 0x02, 0x00, 0x01}));
}

TEST(properties, encoder_writes_one_subscription_identifier_in_subscribe) {
  subscribe s;
  s.packet_id = 1;
  s.props.subscription_identifiers = {4, 5};
  s.topics = {{"t"}};
  EXPECT_EQ(encode_bytes(s, v5), framed(0x82, cat({{0x00, 0x01}, {0x02, 0x0B, 0x04}, str("t"), {0x00}})));
}

TEST(properties, v3_encoding_drops_properties) {
  publish p;
  p.topic = "t";
  p.payload = "x";
  p.props.message_expiry_interval = 10;
  EXPECT_EQ(encode_bytes(p, v311), framed(0x30, cat({str("t"), raw("x")})));
}

}  // namespace
}  // namespace flock::codec::test
