// Byte-exact encodings: version differences, short forms, minimal lengths.
#include <gtest/gtest.h>

#include "broker/codec/codec.hpp"
#include "tests/unit/codec/codec_test_util.hpp"

namespace flock::codec::test {
namespace {

TEST(encode, connect_v311_with_will_matches_spec_layout) {
  connect c;
  c.version = v311;
  c.clean_start = true;
  c.keep_alive = 10;
  c.client_id = "client-1";
  c.will = will_message{"last/will", "gone", 1, false, {}};
  c.username = "alice";
  c.password = "s3cret";
  bytes expected = framed(0x10, cat({
                                    str("MQTT"), {0x04}, {0xCE}, {0x00, 0x0A},
                                    str("client-1"), str("last/will"), str("gone"), str("alice"), str("s3cret"),
                                }));
  EXPECT_EQ(encode_bytes(c, v311), expected);
}

TEST(encode, connect_v31_uses_mqisdp_level_3) {
  connect c;
  c.version = v31;
  c.clean_start = true;
  c.client_id = "c";
  EXPECT_EQ(encode_bytes(c, v31), framed(0x10, cat({str("MQIsdp"), {0x03}, {0x02}, {0x00, 0x00}, str("c")})));
}

TEST(encode, connect_v5_has_property_lengths_for_connect_and_will) {
  connect c;
  c.version = v5;
  c.client_id = "c";
  c.will = will_message{"w", "p", 0, false, {}};
  EXPECT_EQ(encode_bytes(c, v5), framed(0x10, cat({str("MQTT"), {0x05}, {0x06}, {0x00, 0x00}, {0x00}, str("c"),
                                                   {0x00}, str("w"), str("p")})));
}

TEST(encode, connack_v311_carries_return_code_as_given) {
  EXPECT_EQ(encode_bytes(connack{true, 0x00, {}}, v311), (bytes{0x20, 0x02, 0x01, 0x00}));
  EXPECT_EQ(encode_bytes(connack{false, 0x04, {}}, v311), (bytes{0x20, 0x02, 0x00, 0x04}));
}

TEST(encode, connack_v31_has_no_session_present_flag) {
  EXPECT_EQ(encode_bytes(connack{true, 0x00, {}}, v31), (bytes{0x20, 0x02, 0x00, 0x00}));
}

TEST(encode, connack_v5_always_has_property_length) {
  EXPECT_EQ(encode_bytes(connack{false, 0x00, {}}, v5), (bytes{0x20, 0x03, 0x00, 0x00, 0x00}));
}

TEST(encode, publish_v5_with_topic_alias_matches_decoded_vector) {
  publish p;
  p.qos = 1;
  p.packet_id = 10;
  p.topic = "a/b";
  p.props.topic_alias = 5;
  p.payload = "hi";
  EXPECT_EQ(encode_bytes(p, v5),
            (bytes{0x32, 0x0D, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x0A, 0x03, 0x23, 0x00, 0x05, 'h', 'i'}));
}

TEST(encode, publish_flags_in_fixed_header) {
  publish p;
  p.dup = true;
  p.qos = 2;
  p.retain = true;
  p.packet_id = 1;
  p.topic = "t";
  EXPECT_EQ(encode_bytes(p, v311)[0], 0x3D);
}

TEST(encode, remaining_length_uses_minimal_variable_byte_integer) {
  publish p;
  p.topic = "t";  // 3 bytes
  p.payload = std::string(124, 'x');
  EXPECT_EQ(encode_bytes(p, v311)[1], 127);  // one byte
  p.payload.push_back('x');
  bytes b = encode_bytes(p, v311);  // 128 = 0x80 0x01
  EXPECT_EQ(b[1], 0x80);
  EXPECT_EQ(b[2], 0x01);
  EXPECT_EQ(b.size(), 3u + 128u);
  p.payload.assign(16384 - 3, 'x');  // 16384 = 0x80 0x80 0x01
  b = encode_bytes(p, v311);
  EXPECT_EQ((bytes{b[1], b[2], b[3]}), (bytes{0x80, 0x80, 0x01}));
}

TEST(encode, v5_ack_with_success_and_no_properties_uses_short_form) {
  EXPECT_EQ(encode_bytes(pub_response{packet_type::puback, 42, 0, {}}, v5), (bytes{0x40, 0x02, 0x00, 0x2A}));
}

TEST(encode, v5_ack_with_reason_and_no_properties_omits_property_length) {
  EXPECT_EQ(encode_bytes(pub_response{packet_type::pubrec, 42, 0x10, {}}, v5), (bytes{0x50, 0x03, 0x00, 0x2A, 0x10}));
}

TEST(encode, v5_ack_with_properties_has_reason_and_property_length) {
  properties p;
  p.reason_string = "x";
  EXPECT_EQ(encode_bytes(pub_response{packet_type::pubcomp, 1, 0, p}, v5),
            (bytes{0x70, 0x08, 0x00, 0x01, 0x00, 0x04, 0x1F, 0x00, 0x01, 'x'}));
}

TEST(encode, pubrel_has_flags_0010) {
  EXPECT_EQ(encode_bytes(pub_response{packet_type::pubrel, 1, 0, {}}, v311), (bytes{0x62, 0x02, 0x00, 0x01}));
}

TEST(encode, v3_ack_drops_reason_code) {
  EXPECT_EQ(encode_bytes(pub_response{packet_type::puback, 1, 0x80, {}}, v311), (bytes{0x40, 0x02, 0x00, 0x01}));
}

TEST(encode, subscribe_v5_options_byte) {
  subscribe s;
  s.packet_id = 1;
  s.props.subscription_identifiers = {7};
  s.topics.push_back({"a/#", 1, true, true, 2});
  EXPECT_EQ(encode_bytes(s, v5), (bytes{0x82, 0x0B, 0x00, 0x01, 0x02, 0x0B, 0x07, 0x00, 0x03, 'a', '/', '#', 0x2D}));
}

TEST(encode, subscribe_v311_options_byte_is_only_qos) {
  subscribe s;
  s.packet_id = 1;
  s.topics.push_back({"a", 2, true, true, 2});
  EXPECT_EQ(encode_bytes(s, v311), (bytes{0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x02}));
}

TEST(encode, suback_v3_maps_every_failure_to_0x80) {
  suback s;
  s.packet_id = 5;
  s.reason_codes = {0x00, 0x01, 0x02, 0x80, 0x87, 0x9E, 0xA2};
  EXPECT_EQ(encode_bytes(s, v311), (bytes{0x90, 0x09, 0x00, 0x05, 0x00, 0x01, 0x02, 0x80, 0x80, 0x80, 0x80}));
  EXPECT_EQ(encode_bytes(s, v5), (bytes{0x90, 0x0A, 0x00, 0x05, 0x00, 0x00, 0x01, 0x02, 0x80, 0x87, 0x9E, 0xA2}));
}

TEST(encode, unsuback_v3_has_no_payload) {
  unsuback u;
  u.packet_id = 5;
  u.reason_codes = {0x00, 0x11};
  EXPECT_EQ(encode_bytes(u, v311), (bytes{0xB0, 0x02, 0x00, 0x05}));
  EXPECT_EQ(encode_bytes(u, v5), (bytes{0xB0, 0x05, 0x00, 0x05, 0x00, 0x00, 0x11}));
}

TEST(encode, unsubscribe_has_flags_0010) {
  unsubscribe u;
  u.packet_id = 2;
  u.filters = {"a"};
  EXPECT_EQ(encode_bytes(u, v311), (bytes{0xA2, 0x05, 0x00, 0x02, 0x00, 0x01, 'a'}));
}

TEST(encode, ping_packets) {
  EXPECT_EQ(encode_bytes(pingreq{}, v5), (bytes{0xC0, 0x00}));
  EXPECT_EQ(encode_bytes(pingresp{}, v311), (bytes{0xD0, 0x00}));
}

TEST(encode, disconnect_short_forms) {
  EXPECT_EQ(encode_bytes(disconnect{}, v5), (bytes{0xE0, 0x00}));
  EXPECT_EQ(encode_bytes(disconnect{0x04, {}}, v5), (bytes{0xE0, 0x01, 0x04}));
  EXPECT_EQ(encode_bytes(disconnect{0x8E, {}}, v311), (bytes{0xE0, 0x00}));  // v3 has no reason code
}

TEST(encode, auth_success_without_properties_is_empty) {
  EXPECT_EQ(encode_bytes(auth{}, v5), (bytes{0xF0, 0x00}));
  EXPECT_EQ(encode_bytes(auth{0x18, {}}, v5), (bytes{0xF0, 0x02, 0x18, 0x00}));
}

TEST(encode, auth_does_not_exist_before_v5) {
  EXPECT_TRUE(encode_bytes(auth{0x18, {}}, v311).empty());
  EXPECT_EQ(encoded_size(auth{0x18, {}}, v311), 0u);
}

TEST(encode, appends_to_existing_output) {
  std::string out = "ab";
  encode(pingreq{}, v311, out);
  EXPECT_EQ(out, std::string("ab\xC0\x00", 4));
}

TEST(encode, string_longer_than_65535_is_truncated_and_frame_stays_valid) {
  unsubscribe u;
  u.packet_id = 1;
  u.filters = {std::string(70000, 'f')};
  bytes b = encode_bytes(u, v311);
  EXPECT_EQ(b.size(), encoded_size(u, v311));
  auto d = decode_as<unsubscribe>(b, v311);
  ASSERT_EQ(d.filters.size(), 1u);
  EXPECT_EQ(d.filters[0].size(), 65535u);
}

}  // namespace
}  // namespace flock::codec::test
