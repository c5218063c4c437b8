#include "cluster/peer.hpp"

#include "cluster/forward_codec.hpp"
#include "cluster/wire_codec.hpp"

#include <gtest/gtest.h>

using namespace flock;

namespace {

struct fake_link final : cluster::outbound_link {
  std::vector<wire::Batch> writes;
  bool closed = false;
  void write(wire::Batch b) override { writes.push_back(std::move(b)); }
  void close() override { closed = true; }
};

core::message_ptr msg(std::uint8_t qos, std::string payload = "x", bool retain = false) {
  auto m = std::make_shared<core::message>();
  m->topic = "t";
  m->payload = std::move(payload);
  m->qos = qos;
  m->retain = retain;
  return m;
}

std::vector<cluster::decoded_forward> forwards(const wire::Batch& b) {
  std::vector<cluster::decoded_forward> out;
  for (const auto& f : b.frames()) {
    if (f.has_forwards()) {
      EXPECT_TRUE(f.forwards().packed().empty());  // a peer of the current protocol
      EXPECT_TRUE(cluster::decode_forwards(f.forwards().records(), {}, out));
    }
  }
  return out;
}

std::vector<std::uint64_t> seqs(const wire::Batch& b) {
  std::vector<std::uint64_t> out;
  for (const auto& f : forwards(b)) out.push_back(f.seq);
  return out;
}

struct outbox : ::testing::Test {
  cluster::options opts;
  std::unique_ptr<cluster::peer> p;
  std::shared_ptr<fake_link> link = std::make_shared<fake_link>();
  void SetUp() override { p = std::make_unique<cluster::peer>(0, "b", opts); }
};

}  // namespace

TEST_F(outbox, a_qos1_copy_holds_the_publisher_until_the_peer_acknowledges) {
  p->connected(link, 0, cluster::protocol_current);
  auto ack = std::make_shared<core::remote_ack>();
  p->forward(msg(1), {}, ack);
  ASSERT_EQ(link->writes.size(), 1u);
  EXPECT_EQ(seqs(link->writes[0]), std::vector<std::uint64_t>{1});
  EXPECT_FALSE(ack->done());
  p->on_ack(1);
  EXPECT_TRUE(ack->done());
  EXPECT_EQ(p->outbox_size(), 0u);
}

TEST_F(outbox, one_write_at_a_time_and_what_waits_goes_in_one_batch_in_order) {
  p->connected(link, 0, cluster::protocol_current);
  p->forward(msg(1), {}, nullptr);
  p->forward(msg(0), {}, nullptr);  // QoS 0 and 1 from one publisher stay in order
  p->forward(msg(1), {}, nullptr);
  ASSERT_EQ(link->writes.size(), 1u);
  p->on_written();
  ASSERT_EQ(link->writes.size(), 2u);
  EXPECT_EQ(seqs(link->writes[1]), (std::vector<std::uint64_t>{2, 3}));
}

TEST_F(outbox, qos0_without_a_stream_is_dropped_and_counted) {
  p->forward(msg(0), {}, nullptr);
  EXPECT_EQ(p->outbox_size(), 0u);
  EXPECT_EQ(p->stats.dropped_qos0.load(), 1u);
}

TEST_F(outbox, a_broken_stream_releases_publishers_and_resends_what_was_not_applied) {
  p->connected(link, 0, cluster::protocol_current);
  auto a1 = std::make_shared<core::remote_ack>();
  auto a2 = std::make_shared<core::remote_ack>();
  p->forward(msg(1, "one"), {}, a1);
  p->on_written();
  p->forward(msg(1, "two"), {}, a2);
  p->disconnected();
  EXPECT_TRUE(a1->done());  // nobody waits for a peer we cannot reach
  EXPECT_TRUE(a2->done());
  EXPECT_EQ(p->stats.unconfirmed_acks.load(), 2u);
  EXPECT_EQ(p->outbox_size(), 2u);
  // The peer says it applied seq 1 before the break: only seq 2 goes again.
  auto again = std::make_shared<fake_link>();
  p->connected(again, 1, cluster::protocol_current);
  ASSERT_EQ(again->writes.size(), 1u);
  EXPECT_EQ(seqs(again->writes[0]), std::vector<std::uint64_t>{2});
  EXPECT_EQ(forwards(again->writes[0]).at(0).publish.msg->payload, "two");
}

TEST_F(outbox, a_full_outbox_refuses_new_copies_without_holding_the_publisher) {
  opts.max_outbox_messages = 2;
  p = std::make_unique<cluster::peer>(0, "b", opts);
  p->connected(link, 0, cluster::protocol_current);
  p->forward(msg(1), {}, nullptr);
  p->forward(msg(1), {}, nullptr);
  auto ack = std::make_shared<core::remote_ack>();
  p->forward(msg(1), {}, ack);
  EXPECT_TRUE(ack->done());
  EXPECT_EQ(p->stats.dropped_full.load(), 1u);
  EXPECT_EQ(p->outbox_size(), 2u);
}

TEST_F(outbox, a_slow_peer_holds_an_ack_no_longer_than_ack_timeout) {
  opts.ack_timeout = std::chrono::milliseconds(50);
  p = std::make_unique<cluster::peer>(0, "b", opts);
  p->connected(link, 0, cluster::protocol_current);
  auto ack = std::make_shared<core::remote_ack>();
  p->forward(msg(1), {}, ack);
  auto now = std::chrono::steady_clock::now();
  p->expire_acks(now);
  EXPECT_FALSE(ack->done());
  p->expire_acks(now + std::chrono::milliseconds(60));
  EXPECT_TRUE(ack->done());
  EXPECT_EQ(p->outbox_size(), 1u);  // still resent if the stream breaks
}

TEST_F(outbox, control_frames_need_a_stream_and_go_before_publishes) {
  wire::Frame f;
  f.mutable_leave();
  p->send(f);  // no stream: dropped (what it said is said again on connect)
  p->connected(link, 0, cluster::protocol_current);
  EXPECT_TRUE(link->writes.empty());
  p->forward(msg(1), {}, nullptr);
  p->send(f);  // queued behind the write in flight
  p->forward(msg(1), {}, nullptr);
  p->on_written();
  ASSERT_EQ(link->writes.size(), 2u);
  EXPECT_TRUE(link->writes[1].frames(0).has_leave());
  EXPECT_EQ(seqs(link->writes[1]), std::vector<std::uint64_t>{2});
}

TEST_F(outbox, duplicates_from_a_resend_are_recognised_per_incarnation) {
  EXPECT_TRUE(p->accept_forward(10, 1));
  EXPECT_TRUE(p->accept_forward(10, 2));
  EXPECT_FALSE(p->accept_forward(10, 2));
  EXPECT_FALSE(p->accept_forward(10, 1));
  EXPECT_EQ(p->applied_seq(10), 2u);
  EXPECT_TRUE(p->accept_forward(11, 1));  // restarted: a new sequence
  EXPECT_EQ(p->applied_seq(10), 0u);
}

TEST_F(outbox, an_ack_timeout_of_zero_holds_no_publisher) {
  opts.ack_timeout = std::chrono::milliseconds(0);
  p = std::make_unique<cluster::peer>(0, "b", opts);
  p->connected(link, 0, cluster::protocol_current);
  auto ack = std::make_shared<core::remote_ack>();
  p->forward(msg(1), {}, ack);
  EXPECT_TRUE(ack->done());
  EXPECT_EQ(p->outbox_size(), 1u);  // still kept until the peer has it, and resent if need be
  p->on_ack(1);
  EXPECT_EQ(p->outbox_size(), 0u);
}

TEST_F(outbox, a_peer_from_before_gets_the_first_protocol) {
  // A rolling upgrade: the peer's HelloReply named no protocol (0), so it
  // reads only protocol 1's packed records.
  p->connected(link, 0, 0);
  EXPECT_EQ(p->protocol(), cluster::protocol_first);
  p->forward(msg(1, "old"), {}, std::make_shared<core::remote_ack>());
  ASSERT_EQ(link->writes.size(), 1u);
  const auto& f = link->writes[0].frames(0).forwards();
  EXPECT_TRUE(f.records().empty());
  std::vector<cluster::decoded_forward> out;
  ASSERT_TRUE(cluster::decode_forwards_v1(f.packed(), {}, out));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].publish.msg->payload, "old");
}

namespace {

wire::Frame heartbeat() {
  wire::Frame f;
  f.mutable_heartbeat()->set_route_seq(7);
  return f;
}

std::vector<core::message_ptr> retained(std::size_t n, std::size_t payload) {
  std::vector<core::message_ptr> out;
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(msg(0, std::string(payload, 'r'), true));
  }
  return out;
}

std::size_t count_retained(const wire::Batch& b) {
  std::size_t n = 0;
  for (const auto& f : b.frames()) n += f.has_retained();
  return n;
}

}  // namespace

TEST_F(outbox, heartbeats_never_wait_behind_64_MiB_of_forwards_nor_a_large_snapshot) {
  p->connected(link, 0, cluster::protocol_current);
  const std::string big(64u << 10, 'p');
  while (p->stats.dropped_full.load() == 0) p->forward(msg(1, big), {}, nullptr);  // until the outbox is full
  ASSERT_GE(p->outbox_size() * big.size(), opts.max_outbox_bytes - 2 * big.size());
  p->send_retained(retained(256, 64u << 10));  // 16 MiB of retained messages
  ASSERT_EQ(link->writes.size(), 1u);             // one write in flight: the first forward
  p->send(heartbeat());
  p->on_written();
  ASSERT_EQ(link->writes.size(), 2u);
  const auto& next = link->writes[1];
  ASSERT_GT(next.frames_size(), 0);
  EXPECT_TRUE(next.frames(0).has_heartbeat());  // first in the very next write
  EXPECT_LE(next.ByteSizeLong(), opts.batch_bytes + 2 * big.size());
}

TEST_F(outbox, a_snapshot_moves_on_under_full_forwarding_load_and_takes_idle_batches_whole) {
  p->connected(link, 0, cluster::protocol_current);
  const std::string big(16u << 10, 'p');
  p->forward(msg(0, big), {}, nullptr);  // the write in flight
  p->send_retained(retained(64, 16u << 10));  // 1 MiB
  for (int i = 0; i < 64; ++i) p->forward(msg(0, big), {}, nullptr);
  p->on_written();
  ASSERT_EQ(link->writes.size(), 2u);
  // A quarter of the batch for the snapshot, the rest for forwards.
  const auto shared = count_retained(link->writes[1]);
  EXPECT_GE(shared, 3u);
  EXPECT_LE(shared, 5u);
  EXPECT_GE(seqs(link->writes[1]).size(), 10u);
  EXPECT_TRUE(p->bulk_pending());
  for (const auto& f : link->writes[1].frames()) {
    if (!f.has_retained()) continue;
    auto m = cluster::decode_message(f.retained().message(), std::chrono::steady_clock::now());
    ASSERT_TRUE(m);
    EXPECT_TRUE(m->retain);
    EXPECT_EQ(m->payload.size(), 16u << 10);
  }
  // Forwards drained: what is left of the snapshot fills whole batches.
  while (!forwards(link->writes.back()).empty()) p->on_written();
  EXPECT_GE(count_retained(link->writes.back()), 12u);
}

TEST_F(outbox, retained_snapshots_need_a_stream_and_go_with_it) {
  p->send_retained(retained(2, 10));
  EXPECT_FALSE(p->bulk_pending());  // no stream: dropped (a snapshot is sent again on connect)
  p->connected(link, 0, cluster::protocol_current);
  p->forward(msg(1), {}, nullptr);  // in flight
  p->send_retained(retained(2, 10));
  EXPECT_TRUE(p->bulk_pending());
  p->disconnected();
  EXPECT_FALSE(p->bulk_pending());
}

// A snapshot's chunks (bulk frames) follow its snapshot part (a replication
// group queued before them) in the stream, whichever write they share.
TEST_F(outbox, bulk_frames_are_written_after_the_replication_groups_queued_before_them) {
  p->connected(link, 0, cluster::protocol_current);
  p->forward(msg(1), {}, std::make_shared<core::remote_ack>());  // a write in flight: the rest waits
  auto marker = std::make_shared<ports::replicated_part>();
  marker->partition = 3;
  marker->snapshot = true;
  ASSERT_TRUE(p->replicate(7, {marker}));
  wire::Frame chunk;
  chunk.mutable_snapshot_chunk()->set_partition(3);
  p->send_bulk(chunk);
  ASSERT_EQ(link->writes.size(), 1u);
  p->on_written();
  ASSERT_EQ(link->writes.size(), 2u);
  std::vector<wire::Frame::KindCase> kinds;
  for (const auto& f : link->writes[1].frames()) kinds.push_back(f.kind_case());
  EXPECT_EQ(kinds, (std::vector<wire::Frame::KindCase>{wire::Frame::kReplicate, wire::Frame::kSnapshotChunk}));
  EXPECT_TRUE(link->writes[1].frames(0).replicate().parts(0).snapshot());
}
