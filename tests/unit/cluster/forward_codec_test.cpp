#include "cluster/forward_codec.hpp"

#include "broker/core/message_codec.hpp"

#include <gtest/gtest.h>

using namespace flock;

namespace {
ports::time_point t0() { return ports::time_point{} + std::chrono::hours(3); }

// Protocol 2 (core::message_codec records) and protocol 1, kept for peers
// from before a rolling upgrade: both must carry the same.
struct codec_pair {
  const char* name;
  void (*encode)(std::string&, std::uint64_t, const core::message&, const std::vector<ports::shared_pick>&,
                 ports::time_point);
  bool (*decode)(std::string_view, ports::time_point, std::vector<cluster::decoded_forward>&);
};
struct forward_codec : ::testing::TestWithParam<codec_pair> {
  void encode(std::string& out, std::uint64_t seq, const core::message& m,
              const std::vector<ports::shared_pick>& picks, ports::time_point now) {
    GetParam().encode(out, seq, m, picks, now);
  }
  bool decode(std::string_view in, ports::time_point now, std::vector<cluster::decoded_forward>& out) {
    return GetParam().decode(in, now, out);
  }
};
}  // namespace

INSTANTIATE_TEST_SUITE_P(protocols, forward_codec,
                         ::testing::Values(codec_pair{"records", cluster::encode_forward, cluster::decode_forwards},
                                           codec_pair{"packed_v1", cluster::encode_forward_v1,
                                                      cluster::decode_forwards_v1}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST_P(forward_codec, records_round_trip_back_to_back) {
  std::string buf;
  core::message plain;
  plain.topic = "a/b";
  plain.payload = std::string("\0\1\2", 3);
  plain.qos = 1;
  plain.publisher = "p";
  encode(buf, 7, plain, {}, t0());
  core::message rich;
  rich.topic = "r";
  rich.payload = "x";
  rich.qos = 2;
  rich.retain = true;
  rich.expires_at = t0() + std::chrono::seconds(9);
  rich.props.content_type = "text/plain";
  rich.props.user_properties.push_back({"k", "v"});
  rich.written = core::stamp{11, 12};
  encode(buf, 8, rich, {{"g", "r"}, {"$queue", "r"}}, t0());
  std::vector<cluster::decoded_forward> out;
  auto later = t0() + std::chrono::hours(1);
  ASSERT_TRUE(decode(buf, later, out));
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

TEST_P(forward_codec, a_cut_buffer_is_reported_and_what_came_before_kept) {
  std::string buf;
  core::message m;
  m.topic = "t";
  m.payload = "0123456789";
  encode(buf, 1, m, {}, t0());
  encode(buf, 2, m, {}, t0());
  std::vector<cluster::decoded_forward> out;
  EXPECT_FALSE(decode(std::string_view(buf).substr(0, buf.size() - 3), t0(), out));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].seq, 1u);
}

TEST_P(forward_codec, an_invalid_record_is_skipped_not_trusted) {
  std::string buf;
  core::message bad;
  bad.topic = "a/#";  // a filter is no topic name
  encode(buf, 1, bad, {}, t0());
  core::message good;
  good.topic = "ok";
  encode(buf, 2, good, {}, t0());
  std::vector<cluster::decoded_forward> out;
  ASSERT_TRUE(decode(buf, t0(), out));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_FALSE(out[0].publish.msg);  // counted and dropped, but its seq is still acknowledged
  EXPECT_TRUE(out[1].publish.msg);
}

TEST_P(forward_codec, garbage_never_crashes) {
  std::string junk;
  for (int i = 0; i < 2000; ++i) {
    junk.push_back(static_cast<char>((i * 131 + 7) & 0xFF));
    std::vector<cluster::decoded_forward> out;
    decode(junk, t0(), out);  // any result, no crash, no huge allocation
  }
  std::string huge_length = "\x01\x00\xff\xff\xff\xff\x0f";
  std::vector<cluster::decoded_forward> out;
  EXPECT_FALSE(decode(huge_length, t0(), out));
}

TEST(forward_codec_records, a_record_with_unknown_message_flags_is_skipped_and_its_seq_kept) {
  // A newer node's message this version cannot read is dropped, never
  // misread, and what follows it still arrives.
  core::message m;
  m.topic = "t";
  std::string newer;
  newer.push_back(1);  // seq
  std::string message;
  message.push_back(static_cast<char>(core::message_codec_magic));
  message.push_back(static_cast<char>(0x80));  // flags 128 (varint 0x80 0x01): a bit this version
  message.push_back(0x01);                     // does not know
  message.push_back(1);
  message.push_back('t');
  message.push_back(0);
  newer.push_back(static_cast<char>(message.size()));
  newer += message;
  newer.push_back(0);  // no picks
  cluster::encode_forward(newer, 2, m, {}, t0());
  std::vector<cluster::decoded_forward> out;
  ASSERT_TRUE(cluster::decode_forwards(newer, t0(), out));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].seq, 1u);
  EXPECT_FALSE(out[0].publish.msg);
  EXPECT_EQ(out[1].seq, 2u);
  ASSERT_TRUE(out[1].publish.msg);
  EXPECT_EQ(out[1].publish.msg->topic, "t");
}
