// core/message_codec: the one encoding of an application message.
#include "broker/core/message_codec.hpp"

#include <gtest/gtest.h>

#include <random>

using namespace flock;
using namespace std::chrono_literals;

namespace {

const core::wall_instant at{ports::time_point{} + 1000h, 1'800'000'000'000};

core::message full() {
  core::message m;
  m.topic = "plant/7/temp";
  m.payload = std::string("21.5\0C", 6);
  m.qos = 2;
  m.retain = true;
  m.publisher = "sensor-7";
  m.expires_at = at.now + 90s;
  m.written = core::stamp{123456789, 42};
  m.props.payload_format_indicator = 1;
  m.props.content_type = "text/plain";
  m.props.response_topic = "plant/7/reply";
  m.props.correlation_data = std::string("\x01\x00\x02", 3);
  m.props.user_properties = {{"unit", "C"}, {"unit", "K"}, {"site", "north"}};
  return m;
}

std::string encoded(const core::message& m) {
  std::string out;
  core::encode_message(m, at, out);
  return out;
}

std::shared_ptr<core::message> decoded(std::string_view in) {
  std::size_t pos = 0;
  auto m = core::decode_message(in, pos, at);
  if (m) {
    EXPECT_EQ(pos, in.size());
  }
  return m;
}

}  // namespace

TEST(message_codec, every_field_a_message_keeps_comes_back) {
  const auto m = full();
  auto d = decoded(encoded(m));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->topic, m.topic);
  EXPECT_EQ(d->payload, m.payload);
  EXPECT_EQ(d->qos, 2);
  EXPECT_TRUE(d->retain);
  EXPECT_EQ(d->publisher, "sensor-7");
  ASSERT_TRUE(d->expires_at);
  EXPECT_EQ(*d->expires_at, m.expires_at);
  EXPECT_EQ(d->written.time, 123456789u);
  EXPECT_EQ(d->written.node, 42u);
  EXPECT_EQ(d->props, m.props);
}

TEST(message_codec, a_plain_message_costs_a_few_bytes_beyond_topic_and_payload) {
  core::message m;
  m.topic = "a/b";
  m.payload = "hello";
  const auto e = encoded(m);
  EXPECT_EQ(e.size(), 1u + 1u + 1u + 3u + 1u + 5u);  // magic, flags, lengths, topic, payload
  auto d = decoded(e);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->qos, 0);
  EXPECT_FALSE(d->retain);
  EXPECT_FALSE(d->expires_at);
  EXPECT_TRUE(d->written.empty());
  EXPECT_EQ(d->props, codec::properties{});
}

TEST(message_codec, a_deadline_is_wall_clock_time_so_it_keeps_running_across_a_restart) {
  const auto e = encoded(full());
  // Read back by a process whose steady clock started elsewhere, 30 s later.
  const core::wall_instant later{ports::time_point{} + 5h, at.unix_ms + 30'000};
  std::size_t pos = 0;
  auto d = core::decode_message(e, pos, later);
  ASSERT_TRUE(d && d->expires_at);
  EXPECT_EQ(*d->expires_at, later.now + 60s);
}

TEST(message_codec, a_will_keeps_its_message_expiry_interval) {
  auto m = full();
  m.props.message_expiry_interval = 3600;
  auto d = decoded(encoded(m));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->props.message_expiry_interval, 3600u);
}

TEST(message_codec, messages_back_to_back_are_read_one_after_the_other) {
  auto a = full();
  core::message b;
  b.topic = "x";
  b.qos = 1;
  std::string both = encoded(a) + encoded(b);
  std::size_t pos = 0;
  auto first = core::decode_message(both, pos, at);
  auto second = core::decode_message(both, pos, at);
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->topic, "plant/7/temp");
  EXPECT_EQ(second->topic, "x");
  EXPECT_EQ(pos, both.size());
  EXPECT_FALSE(core::decode_message(both, pos, at));
}

TEST(message_codec, a_record_cut_short_anywhere_is_malformed) {
  const auto e = encoded(full());
  for (std::size_t n = 0; n < e.size(); ++n) {
    std::size_t pos = 0;
    EXPECT_FALSE(core::decode_message(std::string_view(e).substr(0, n), pos, at)) << "cut at " << n;
  }
}

TEST(message_codec, what_this_version_cannot_mean_is_refused) {
  auto with_flags = [](std::string flags) {  // the flags varint's bytes
    std::string e;
    e.push_back(static_cast<char>(core::message_codec_magic));
    e += flags;
    e += std::string("\x01t\x00", 3);  // topic "t", empty payload
    return e;
  };
  EXPECT_TRUE(decoded(with_flags("\x01")));
  EXPECT_FALSE(decoded(with_flags("\x03"))) << "QoS 3";
  EXPECT_FALSE(decoded(with_flags("\x81\x01"))) << "a flag of a newer format (bit 7)";

  core::message m;
  m.topic = "a/+";  // a filter, not a topic name
  EXPECT_FALSE(decoded(encoded(m)));
  m.topic = "a";
  m.props.will_delay_interval = 5;  // a will's, not a message's: the encoder leaves it out
  m.props.content_type = "text/plain";
  auto d = decoded(encoded(m));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->props.will_delay_interval, std::nullopt);
  EXPECT_EQ(d->props.content_type, "text/plain");
}

TEST(message_codec, it_is_told_apart_from_older_store_records) {
  EXPECT_TRUE(core::is_encoded_message(encoded(full())));
  // A protobuf MessageRecord starts with field 1 (the topic): 0x0A.
  EXPECT_FALSE(core::is_encoded_message(std::string("\x0a\x03" "a/b", 5)));
  EXPECT_FALSE(core::is_encoded_message(""));
}

TEST(message_codec, garbled_bytes_never_crash_the_decoder) {
  const auto e = encoded(full());
  std::mt19937 rng(12345);
  for (int i = 0; i < 5000; ++i) {
    std::string g = e;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) g[1 + rng() % (g.size() - 1)] = static_cast<char>(rng());
    std::size_t pos = 0;
    auto d = core::decode_message(g, pos, at);
    EXPECT_LE(pos, g.size());
    if (d) {
      EXPECT_LE(d->qos, 2);
    }
  }
}
