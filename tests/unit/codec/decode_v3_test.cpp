// Decoding valid MQTT 3.1 / 3.1.1 packets, field by field.
#include <gtest/gtest.h>

#include "broker/codec/codec.hpp"
#include "tests/unit/codec/codec_test_util.hpp"

namespace flock::codec::test {
namespace {

TEST(decode, connect_v311_with_will_spec_example) {
  // Variable header from MQTT 3.1.1 section 3.1.2.10 (non-normative example).
  bytes b = framed(0x10, cat({
                             str("MQTT"),   // protocol name
                             {0x04},        // protocol level 4
                             {0xCE},        // user name, password, will QoS 1, will flag, clean session
                             {0x00, 0x0A},  // keep alive 10
                             str("client-1"),
                             str("last/will"),  // will topic
                             str("gone"),       // will message
                             str("alice"),
                             str("s3cret"),
                         }));
  auto c = decode_as<connect>(b, v311);
  EXPECT_EQ(c.version, v311);
  EXPECT_TRUE(c.clean_start);
  EXPECT_EQ(c.keep_alive, 10);
  EXPECT_EQ(c.client_id, "client-1");
  ASSERT_TRUE(c.will.has_value());
  EXPECT_EQ(c.will->topic, "last/will");
  EXPECT_EQ(c.will->payload, "gone");
  EXPECT_EQ(c.will->qos, 1);
  EXPECT_FALSE(c.will->retain);
  EXPECT_EQ(c.username, "alice");
  EXPECT_EQ(c.password, "s3cret");
}

TEST(decode, connect_v31_mqisdp_level_3) {
  bytes b = framed(0x10, cat({
                             str("MQIsdp"),  // 3.1 protocol name
                             {0x03},         // level 3
                             {0x00},         // no flags: persistent session
                             {0x00, 0x3C},   // keep alive 60
                             str("old-client"),
                         }));
  auto c = decode_as<connect>(b, v311);  // the packet's own level wins
  EXPECT_EQ(c.version, v31);
  EXPECT_FALSE(c.clean_start);
  EXPECT_EQ(c.keep_alive, 60);
  EXPECT_EQ(c.client_id, "old-client");
  EXPECT_FALSE(c.will.has_value());
  EXPECT_FALSE(c.username.has_value());
  EXPECT_FALSE(c.password.has_value());
}

TEST(decode, connect_v311_empty_client_id_and_retained_will) {
  bytes b = framed(0x10, cat({str("MQTT"), {0x04}, {0x36 /* will retain, will QoS 2, will, clean */}, {0x00, 0x00},
                              str(""), str("w"), str("")}));
  auto c = decode_as<connect>(b, v5);
  EXPECT_EQ(c.version, v311);
  EXPECT_EQ(c.client_id, "");
  ASSERT_TRUE(c.will);
  EXPECT_EQ(c.will->qos, 2);
  EXPECT_TRUE(c.will->retain);
  EXPECT_EQ(c.will->payload, "");
}

TEST(decode, connack_v311_session_present_and_return_code) {
  auto c = decode_as<connack>(bytes{0x20, 0x02, 0x01 /* session present */, 0x05 /* not authorized */}, v311);
  EXPECT_TRUE(c.session_present);
  EXPECT_EQ(c.reason_code, 5);
}

TEST(decode, publish_v311_qos1_retain) {
  bytes b = framed(0x33, cat({
                             str("a/b"),    // topic
                             {0x00, 0x0A},  // packet id 10
                             raw("hello"),  // payload
                         }));
  auto p = decode_as<publish>(b, v311);
  EXPECT_EQ(p.qos, 1);
  EXPECT_TRUE(p.retain);
  EXPECT_FALSE(p.dup);
  EXPECT_EQ(p.topic, "a/b");
  EXPECT_EQ(p.packet_id, 10);
  EXPECT_EQ(p.payload, "hello");
}

TEST(decode, publish_v311_qos0_has_no_packet_id) {
  auto p = decode_as<publish>(framed(0x30, cat({str("t"), raw("\x00\x01"sv)})), v311);
  EXPECT_EQ(p.qos, 0);
  EXPECT_EQ(p.packet_id, 0);
  EXPECT_EQ(p.payload, std::string("\x00\x01", 2));
}

TEST(decode, publish_v311_dup_qos2_empty_payload) {
  auto p = decode_as<publish>(framed(0x3C, cat({str("x/y"), {0xFF, 0xFF}})), v311);
  EXPECT_TRUE(p.dup);
  EXPECT_EQ(p.qos, 2);
  EXPECT_EQ(p.packet_id, 0xFFFF);
  EXPECT_TRUE(p.payload.empty());
}

TEST(decode, pub_responses_v311) {
  auto a = decode_as<pub_response>(bytes{0x40, 0x02, 0x12, 0x34}, v311);
  EXPECT_EQ(a.type, packet_type::puback);
  EXPECT_EQ(a.packet_id, 0x1234);
  EXPECT_EQ(decode_as<pub_response>(bytes{0x50, 0x02, 0x00, 0x01}, v311).type, packet_type::pubrec);
  EXPECT_EQ(decode_as<pub_response>(bytes{0x62, 0x02, 0x00, 0x01}, v311).type, packet_type::pubrel);
  EXPECT_EQ(decode_as<pub_response>(bytes{0x70, 0x02, 0x00, 0x01}, v311).type, packet_type::pubcomp);
}

TEST(decode, subscribe_v311_two_filters) {
  bytes b = framed(0x82, cat({
                             {0x00, 0x0A},  // packet id
                             str("a/+"), {0x01},
                             str("b/#"), {0x02},
                         }));
  auto s = decode_as<subscribe>(b, v311);
  EXPECT_EQ(s.packet_id, 10);
  ASSERT_EQ(s.topics.size(), 2u);
  EXPECT_EQ(s.topics[0].filter, "a/+");
  EXPECT_EQ(s.topics[0].qos, 1);
  EXPECT_EQ(s.topics[1].filter, "b/#");
  EXPECT_EQ(s.topics[1].qos, 2);
}

TEST(decode, subscribe_v31_accepts_dup_flag) {
  bytes b = framed(0x8A, cat({{0x00, 0x01}, str("t"), {0x00}}));
  EXPECT_EQ(decode_as<subscribe>(b, v31).topics.size(), 1u);
  EXPECT_EQ(decode_error(b, v311), 0x81);
}

TEST(decode, suback_v311_granted_and_failure) {
  auto s = decode_as<suback>(bytes{0x90, 0x05, 0x00, 0x0A, 0x00, 0x02, 0x80}, v311);
  EXPECT_EQ(s.packet_id, 10);
  EXPECT_EQ(s.reason_codes, (std::vector<std::uint8_t>{0x00, 0x02, 0x80}));
}

TEST(decode, unsubscribe_and_unsuback_v311) {
  auto u = decode_as<unsubscribe>(framed(0xA2, cat({{0x00, 0x07}, str("a/b"), str("c")})), v311);
  EXPECT_EQ(u.packet_id, 7);
  EXPECT_EQ(u.filters, (std::vector<std::string>{"a/b", "c"}));
  auto ua = decode_as<unsuback>(bytes{0xB0, 0x02, 0x00, 0x07}, v311);
  EXPECT_EQ(ua.packet_id, 7);
  EXPECT_TRUE(ua.reason_codes.empty());
}

TEST(decode, ping_and_disconnect_v311) {
  decode_as<pingreq>(bytes{0xC0, 0x00}, v311);
  decode_as<pingresp>(bytes{0xD0, 0x00}, v311);
  EXPECT_EQ(decode_as<disconnect>(bytes{0xE0, 0x00}, v311).reason_code, 0);
}

}  // namespace
}  // namespace flock::codec::test
