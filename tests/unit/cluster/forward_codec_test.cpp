#include "cluster/forward_codec.hpp"

#include <gtest/gtest.h>

using namespace flock;

namespace {
ports::time_point t0() { return ports::time_point{} + std::chrono::hours(3); }
}  // namespace

TEST(forward_codec, records_round_trip_back_to_back) {
  std::string buf;
  core::message plain;
  plain.topic = "a/b";
  plain.payload = std::string("\0\1\2", 3);
  plain.qos = 1;
  plain.publisher = "p";
  cluster::encode_forward(buf, 7, plain, {}, t0());
  core::message rich;
  rich.topic = "r";
  rich.payload = "x";
  rich.qos = 2;
  rich.retain = true;
  rich.expires_at = t0() + std::chrono::seconds(9);
  rich.props.content_type = "text/plain";
  rich.props.user_properties.push_back({"k", "v"});
  rich.written = core::stamp{11, 12};
  cluster::encode_forward(buf, 8, rich, {{"g", "r"}, {"$queue", "r"}}, t0());
  std::vector<cluster::decoded_forward> out;
  auto later = t0() + std::chrono::hours(1);
  ASSERT_TRUE(cluster::decode_forwards(buf, later, out));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].seq, 7u);
  EXPECT_EQ(out[0].publish.msg->payload, plain.payload);
  EXPECT_EQ(out[0].publish.msg->qos, 1);
  EXPECT_FALSE(out[0].publish.msg->expires_at);
  EXPECT_TRUE(out[0].publish.picks.empty());
  const auto& m = *out[1].publish.msg;
  EXPECT_EQ(out[1].seq, 8u);
  EXPECT_EQ(m.topic, "r");
  EXPECT_TRUE(m.retain);
  EXPECT_EQ(m.qos, 2);
  EXPECT_EQ(*m.expires_at, later + std::chrono::seconds(9));
  EXPECT_EQ(m.props.content_type, rich.props.content_type);
  EXPECT_EQ(m.props.user_properties, rich.props.user_properties);
  EXPECT_EQ(m.written, rich.written);
  ASSERT_EQ(out[1].publish.picks.size(), 2u);
  EXPECT_EQ(out[1].publish.picks[1].group, "$queue");
}

TEST(forward_codec, a_cut_buffer_is_reported_and_what_came_before_kept) {
  std::string buf;
  core::message m;
  m.topic = "t";
  m.payload = "0123456789";
  cluster::encode_forward(buf, 1, m, {}, t0());
  cluster::encode_forward(buf, 2, m, {}, t0());
  std::vector<cluster::decoded_forward> out;
  EXPECT_FALSE(cluster::decode_forwards(std::string_view(buf).substr(0, buf.size() - 3), t0(), out));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].seq, 1u);
}

TEST(forward_codec, an_invalid_record_is_skipped_not_trusted) {
  std::string buf;
  core::message bad;
  bad.topic = "a/#";  // a filter is no topic name
  cluster::encode_forward(buf, 1, bad, {}, t0());
  core::message good;
  good.topic = "ok";
  cluster::encode_forward(buf, 2, good, {}, t0());
  std::vector<cluster::decoded_forward> out;
  ASSERT_TRUE(cluster::decode_forwards(buf, t0(), out));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_FALSE(out[0].publish.msg);  // counted and dropped, but its seq is still acknowledged
  EXPECT_TRUE(out[1].publish.msg);
}

TEST(forward_codec, garbage_never_crashes) {
  std::string junk;
  for (int i = 0; i < 2000; ++i) {
    junk.push_back(static_cast<char>((i * 131 + 7) & 0xFF));
    std::vector<cluster::decoded_forward> out;
    cluster::decode_forwards(junk, t0(), out);  // any result, no crash, no huge allocation
  }
  std::string huge_length = "\x01\x00\xff\xff\xff\xff\x0f";
  std::vector<cluster::decoded_forward> out;
  EXPECT_FALSE(cluster::decode_forwards(huge_length, t0(), out));
}
