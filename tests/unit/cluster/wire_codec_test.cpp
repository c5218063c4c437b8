#include "cluster/wire_codec.hpp"

#include <gtest/gtest.h>

using namespace flock;

namespace {
ports::time_point t0() { return ports::time_point{} + std::chrono::hours(5); }

// Each peer gets the protocol it reads: the current one, or the first for a
// node from before (a rolling upgrade). Both must carry the same.
struct wire_codec : ::testing::TestWithParam<std::uint32_t> {
  std::uint32_t protocol() const { return GetParam(); }
};
}  // namespace

INSTANTIATE_TEST_SUITE_P(protocols, wire_codec,
                         ::testing::Values(cluster::protocol_first, cluster::protocol_message_codec),
                         [](const auto& info) { return "protocol_" + std::to_string(info.param); });

TEST_P(wire_codec, a_message_keeps_its_properties_stamp_and_remaining_expiry) {
  core::message m;
  m.topic = "a/b";
  m.payload = std::string("\0x\xff", 3);
  m.qos = 2;
  m.retain = true;
  m.publisher = "pub-1";
  m.expires_at = t0() + std::chrono::seconds(30);
  m.props.content_type = "text/plain";
  m.props.user_properties.push_back({"k", "v"});
  m.props.payload_format_indicator = 1;
  m.written = core::stamp{77, 9};
  wire::Message w;
  cluster::encode_message(m, t0(), protocol(), w);
  EXPECT_EQ(!w.encoded().empty(), protocol() >= cluster::protocol_message_codec);
  // Another node, another monotonic clock: the expiry is relative.
  auto later = t0() + std::chrono::hours(100);
  auto d = cluster::decode_message(w, later);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->topic, m.topic);
  EXPECT_EQ(d->payload, m.payload);
  EXPECT_EQ(d->qos, 2);
  EXPECT_TRUE(d->retain);
  EXPECT_EQ(d->publisher, "pub-1");
  EXPECT_EQ(*d->expires_at, later + std::chrono::seconds(30));
  EXPECT_EQ(d->props.content_type, m.props.content_type);
  EXPECT_EQ(d->props.user_properties, m.props.user_properties);
  EXPECT_EQ(d->written, m.written);
  EXPECT_EQ(d->id, 0u);  // the receiver gives it its own store id
}

TEST(wire_codec_v1, a_malformed_message_is_rejected) {
  wire::Message w;
  w.set_topic("a/+");  // a filter is no topic name
  EXPECT_FALSE(cluster::decode_message(w, t0()));
  w.set_topic("a");
  w.set_qos(3);
  EXPECT_FALSE(cluster::decode_message(w, t0()));
  w.set_qos(1);
  EXPECT_TRUE(cluster::decode_message(w, t0()));
}

TEST(wire_codec_v2, a_malformed_or_trailing_encoding_is_rejected) {
  core::message m;
  m.topic = "a";
  wire::Message w;
  cluster::encode_message(m, t0(), cluster::protocol_message_codec, w);
  ASSERT_TRUE(cluster::decode_message(w, t0()));
  wire::Message trailing = w;
  trailing.mutable_encoded()->push_back('x');
  EXPECT_FALSE(cluster::decode_message(trailing, t0()));
  wire::Message cut = w;
  cut.mutable_encoded()->pop_back();
  EXPECT_FALSE(cluster::decode_message(cut, t0()));
  core::message filter;
  filter.topic = "a/+";  // a filter is no topic name
  wire::Message bad;
  cluster::encode_message(filter, t0(), cluster::protocol_message_codec, bad);
  EXPECT_FALSE(cluster::decode_message(bad, t0()));
}

TEST_P(wire_codec, a_session_round_trips_with_queue_inflight_and_incoming_ids) {
  ports::moved_session s;
  s.claimed = core::stamp{5, 6};
  s.expiry_interval = 300;
  core::subscription_options o;
  o.qos = 1;
  o.identifier = 42;
  s.subscriptions.emplace_back("a/#", o);
  auto msg = std::make_shared<core::message>();
  msg->topic = "a/1";
  msg->payload = "p";
  msg->qos = 1;
  s.queue.push_back({msg, 1, false, {42}});
  s.inflight.push_back({7, core::outgoing_state::awaiting_puback, {msg, 1, false, {}}});
  s.inflight.push_back({8, core::outgoing_state::awaiting_pubcomp, {nullptr, 2, false, {}}});
  s.incoming_qos2 = {3, 4};
  wire::SessionState w;
  cluster::encode_session(s, t0(), protocol(), w);
  auto d = cluster::decode_session(w, t0());
  ASSERT_TRUE(d);
  EXPECT_EQ(d->claimed, s.claimed);
  EXPECT_EQ(d->expiry_interval, 300u);
  ASSERT_EQ(d->subscriptions.size(), 1u);
  EXPECT_EQ(d->subscriptions[0].second, o);
  ASSERT_EQ(d->queue.size(), 1u);
  EXPECT_EQ(d->queue[0].msg->payload, "p");
  EXPECT_EQ(d->queue[0].subscription_ids, std::vector<std::uint32_t>{42});
  ASSERT_EQ(d->inflight.size(), 2u);
  EXPECT_EQ(d->inflight[0].packet_id, 7);
  EXPECT_EQ(d->inflight[1].state, core::outgoing_state::awaiting_pubcomp);
  EXPECT_FALSE(d->inflight[1].d.msg);
  EXPECT_EQ(d->incoming_qos2, (std::vector<std::uint16_t>{3, 4}));
}

TEST_P(wire_codec, a_malformed_session_is_rejected_whole) {
  ports::moved_session s;
  s.inflight.push_back({0, core::outgoing_state::awaiting_pubcomp, {}});  // packet id 0
  wire::SessionState w;
  cluster::encode_session(s, t0(), protocol(), w);
  EXPECT_FALSE(cluster::decode_session(w, t0()));
  wire::SessionState bad_filter;
  bad_filter.add_subscriptions()->set_filter("a/#/b");
  EXPECT_FALSE(cluster::decode_session(bad_filter, t0()));
  wire::SessionState missing_message;
  auto* f = missing_message.add_inflight();
  f->set_packet_id(1);
  f->set_state(0);  // awaiting PUBACK needs the message
  EXPECT_FALSE(cluster::decode_session(missing_message, t0()));
}
