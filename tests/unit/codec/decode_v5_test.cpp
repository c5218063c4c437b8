// Decoding valid MQTT 5 packets, field by field, including short forms.
#include <gtest/gtest.h>

#include "broker/codec/codec.hpp"
#include "tests/unit/codec/codec_test_util.hpp"

namespace flock::codec::test {
namespace {

TEST(decode, connect_v5_with_properties_and_will) {
  bytes b = {
      0x10, 0x3A,                          // CONNECT, remaining length 58
      0x00, 0x04, 'M', 'Q', 'T', 'T',      // protocol name
      0x05,                                // protocol level 5
      0xEE,                                // user, password, will retain, will QoS 1, will, clean start
      0x00, 0x3C,                          // keep alive 60
      0x0E,                                // property length 14
      0x11, 0x00, 0x00, 0x00, 0x78,        //   session expiry interval 120
      0x21, 0x00, 0x0A,                    //   receive maximum 10
      0x26, 0x00, 0x01, 'k', 0x00, 0x00,   //   user property k=""
      0x00, 0x03, 'c', 'i', 'd',           // client id
      0x07,                                // will property length 7
      0x18, 0x00, 0x00, 0x00, 0x05,        //   will delay interval 5
      0x01, 0x01,                          //   payload format indicator: UTF-8
      0x00, 0x03, 'w', '/', 't',           // will topic
      0x00, 0x03, 'b', 'y', 'e',           // will payload
      0x00, 0x04, 'u', 's', 'e', 'r',      // user name
      0x00, 0x02, 'p', 'w',                // password
  };
  auto c = decode_as<connect>(b, v311);
  EXPECT_EQ(c.version, v5);
  EXPECT_TRUE(c.clean_start);
  EXPECT_EQ(c.keep_alive, 60);
  EXPECT_EQ(c.props.session_expiry_interval, 120u);
  EXPECT_EQ(c.props.receive_maximum, 10);
  ASSERT_EQ(c.props.user_properties.size(), 1u);
  EXPECT_EQ(c.props.user_properties[0], (user_property{"k", ""}));
  EXPECT_EQ(c.client_id, "cid");
  ASSERT_TRUE(c.will);
  EXPECT_EQ(c.will->qos, 1);
  EXPECT_TRUE(c.will->retain);
  EXPECT_EQ(c.will->props.will_delay_interval, 5u);
  EXPECT_EQ(c.will->props.payload_format_indicator, 1);
  EXPECT_EQ(c.will->topic, "w/t");
  EXPECT_EQ(c.will->payload, "bye");
  EXPECT_EQ(c.username, "user");
  EXPECT_EQ(c.password, "pw");
}

TEST(decode, connect_v5_password_without_user_name_is_allowed) {
  bytes b = framed(0x10, cat({str("MQTT"), {0x05}, {0x42 /* password, clean */}, {0x00, 0x00}, {0x00}, str("c"),
                              str("token")}));
  auto c = decode_as<connect>(b, v5);
  EXPECT_FALSE(c.username);
  EXPECT_EQ(c.password, "token");
}

TEST(decode, connack_v5_with_server_properties) {
  bytes b = framed(0x20, cat({
                             {0x01},  // session present
                             {0x00},  // success
                             {0x0F},  // property length
                             {0x12}, str("gen-1"),    // assigned client identifier (8)
                             {0x13, 0x00, 0x1E},      // server keep alive 30 (3)
                             {0x24, 0x01},            // maximum QoS 1 (2)
                             {0x2A, 0x00},            // shared subscriptions unavailable (2)
                         }));
  auto c = decode_as<connack>(b, v5);
  EXPECT_TRUE(c.session_present);
  EXPECT_EQ(c.reason_code, 0);
  EXPECT_EQ(c.props.assigned_client_identifier, "gen-1");
  EXPECT_EQ(c.props.server_keep_alive, 30);
  EXPECT_EQ(c.props.maximum_qos, 1);
  EXPECT_EQ(c.props.shared_subscription_available, 0);
}

TEST(decode, publish_v5_with_topic_alias) {
  bytes b = {
      0x32, 0x0D,                // PUBLISH QoS 1, remaining length 13
      0x00, 0x03, 'a', '/', 'b', // topic
      0x00, 0x0A,                // packet id 10
      0x03,                      // property length
      0x23, 0x00, 0x05,          //   topic alias 5
      'h', 'i',                  // payload
  };
  auto p = decode_as<publish>(b, v5);
  EXPECT_EQ(p.topic, "a/b");
  EXPECT_EQ(p.qos, 1);
  EXPECT_EQ(p.packet_id, 10);
  EXPECT_EQ(p.props.topic_alias, 5);
  EXPECT_EQ(p.payload, "hi");
}

TEST(decode, publish_v5_empty_topic_with_alias) {
  auto p = decode_as<publish>(framed(0x30, cat({str(""), {0x03, 0x23, 0x00, 0x01}, raw("x")})), v5);
  EXPECT_EQ(p.topic, "");
  EXPECT_EQ(p.props.topic_alias, 1);
}

TEST(decode, publish_v5_repeated_subscription_identifiers_and_request_response) {
  bytes b = framed(0x30, cat({
                             str("t"),
                             {0x17},                   // property length 23
                             {0x0B, 0x01},             //   subscription identifier 1
                             {0x0B, 0x80, 0x01},       //   subscription identifier 128
                             {0x08}, str("reply"),     //   response topic (8)
                             {0x09}, str("\x01\x02"sv),  //   correlation data (5)
                             {0x02, 0x00, 0x00, 0x00, 0x3C},  // message expiry 60 (5) -> 23 total
                             raw("payload"),
                         }));
  auto p = decode_as<publish>(b, v5);
  EXPECT_EQ(p.props.subscription_identifiers, (std::vector<std::uint32_t>{1, 128}));
  EXPECT_EQ(p.props.response_topic, "reply");
  EXPECT_EQ(p.props.correlation_data, std::string("\x01\x02", 2));
  EXPECT_EQ(p.props.message_expiry_interval, 60u);
  EXPECT_EQ(p.payload, "payload");
}

TEST(decode, subscribe_v5_with_options_and_identifier) {
  bytes b = {
      0x82, 0x0B,                // SUBSCRIBE, remaining length 11
      0x00, 0x01,                // packet id 1
      0x02,                      // property length
      0x0B, 0x07,                //   subscription identifier 7
      0x00, 0x03, 'a', '/', '#', // filter
      0x2D,                      // options: retain handling 2, retain as published, no local, QoS 1
  };
  auto s = decode_as<subscribe>(b, v5);
  EXPECT_EQ(s.packet_id, 1);
  EXPECT_EQ(s.props.subscription_identifiers, (std::vector<std::uint32_t>{7}));
  ASSERT_EQ(s.topics.size(), 1u);
  EXPECT_EQ(s.topics[0].filter, "a/#");
  EXPECT_EQ(s.topics[0].qos, 1);
  EXPECT_TRUE(s.topics[0].no_local);
  EXPECT_TRUE(s.topics[0].retain_as_published);
  EXPECT_EQ(s.topics[0].retain_handling, 2);
}

TEST(decode, puback_v5_remaining_length_2_means_success_without_properties) {
  auto a = decode_as<pub_response>(bytes{0x40, 0x02, 0x00, 0x2A}, v5);
  EXPECT_EQ(a.packet_id, 42);
  EXPECT_EQ(a.reason_code, 0);
  EXPECT_EQ(a.props, properties{});
}

TEST(decode, pubrec_v5_remaining_length_3_means_no_properties) {
  auto a = decode_as<pub_response>(bytes{0x50, 0x03, 0x00, 0x2A, 0x10 /* no matching subscribers */}, v5);
  EXPECT_EQ(a.type, packet_type::pubrec);
  EXPECT_EQ(a.reason_code, 0x10);
}

TEST(decode, pubcomp_v5_with_reason_string) {
  auto a = decode_as<pub_response>(framed(0x70, cat({{0x00, 0x01}, {0x92}, {0x07, 0x1F}, str("gone")})), v5);
  EXPECT_EQ(a.type, packet_type::pubcomp);
  EXPECT_EQ(a.reason_code, 0x92);
  EXPECT_EQ(a.props.reason_string, "gone");
}

TEST(decode, suback_and_unsuback_v5) {
  auto s = decode_as<suback>(bytes{0x90, 0x05, 0x00, 0x01, 0x00, 0x01, 0xA2}, v5);
  EXPECT_EQ(s.reason_codes, (std::vector<std::uint8_t>{0x01, 0xA2}));
  auto u = decode_as<unsuback>(bytes{0xB0, 0x05, 0x00, 0x01, 0x00, 0x00, 0x11}, v5);
  EXPECT_EQ(u.reason_codes, (std::vector<std::uint8_t>{0x00, 0x11}));
}

TEST(decode, unsubscribe_v5_with_user_property) {
  auto u = decode_as<unsubscribe>(framed(0xA2, cat({{0x00, 0x02}, {0x07, 0x26}, str("a"), str("b"), str("t/#")})), v5);
  EXPECT_EQ(u.props.user_properties, (std::vector<user_property>{{"a", "b"}}));
  EXPECT_EQ(u.filters, (std::vector<std::string>{"t/#"}));
}

TEST(decode, disconnect_v5_short_forms) {
  EXPECT_EQ(decode_as<disconnect>(bytes{0xE0, 0x00}, v5).reason_code, 0);
  EXPECT_EQ(decode_as<disconnect>(bytes{0xE0, 0x01, 0x04}, v5).reason_code, 0x04);
  auto d = decode_as<disconnect>(bytes{0xE0, 0x07, 0x8B, 0x05, 0x11, 0x00, 0x00, 0x00, 0x00}, v5);
  EXPECT_EQ(d.reason_code, 0x8B);
  EXPECT_EQ(d.props.session_expiry_interval, 0u);
}

TEST(decode, auth_v5_continue_with_method_and_data) {
  auto a = decode_as<auth>(framed(0xF0, cat({{0x18}, {0x0E, 0x15}, str("SCRAM"), {0x16}, str("abc")})), v5);
  EXPECT_EQ(a.reason_code, 0x18);
  EXPECT_EQ(a.props.authentication_method, "SCRAM");
  EXPECT_EQ(a.props.authentication_data, "abc");
  EXPECT_EQ(decode_as<auth>(bytes{0xF0, 0x00}, v5).reason_code, 0);
}

}  // namespace
}  // namespace flock::codec::test
