// The core and protocol machine against a store: what is written, and which
// answers wait until it is durable (ports/store.hpp).
#include <gtest/gtest.h>

#include "broker/codec/reason_code.hpp"
#include "broker/replication/partition.hpp"
#include "tests/unit/protocol/fake_store.hpp"
#include "tests/unit/protocol/harness.hpp"

using namespace flock;
using namespace flock::testing;
using v = codec::protocol_version;

namespace {

struct durability_test : ::testing::Test {
  manual_executor ex{2};
  manual_clock clk;
  fake_store store{ex};
  core::broker_config cfg = [] {
    core::broker_config c;
    c.sys_interval = std::chrono::seconds(0);
    return c;
  }();
  std::unique_ptr<core::broker> broker = [&] {
    auto b = std::make_unique<core::broker>(cfg, ex, clk);
    b->set_store(&store);
    return b;
  }();

  // Connects and commits, so CONNACK (held for persistent sessions) arrives.
  std::unique_ptr<client> connect(const std::string& id, v ver, ports::worker_id w, std::uint32_t expiry,
                                  bool clean = true, bool* present = nullptr) {
    auto c = std::make_unique<client>(*broker, ex, w, ver);
    auto pkt = connect_packet(id, ver, clean);
    if (ver == v::v5 && expiry) pkt.props.session_expiry_interval = expiry;
    c->send(pkt);
    store.commit();
    auto acks = c->received_of<codec::connack>();
    EXPECT_EQ(acks.size(), 1u);
    if (!acks.empty() && present) *present = acks[0].session_present;
    return c;
  }
  void subscribe(client& c, const std::string& filter, std::uint8_t qos) {
    codec::subscribe s;
    s.packet_id = 1;
    s.topics.push_back({filter, qos, false, false, 0});
    c.send(s);
    store.commit();
    ASSERT_EQ(c.received_of<codec::suback>().size(), 1u);
  }
  static codec::publish pub(std::string topic, std::uint8_t qos, std::uint16_t id, bool retain = false) {
    codec::publish p;
    p.topic = std::move(topic);
    p.payload = "payload";
    p.qos = qos;
    p.packet_id = id;
    p.retain = retain;
    return p;
  }
  static codec::pub_response ack(codec::packet_type t, std::uint16_t id) { return {t, id, 0, {}}; }
};

TEST_F(durability_test, connack_of_a_persistent_session_waits_for_its_record) {
  auto c = std::make_unique<client>(*broker, ex, 0, v::v5);
  auto pkt = connect_packet("p", v::v5, true);
  pkt.props.session_expiry_interval = 60;
  c->send(pkt);
  EXPECT_TRUE(c->received_of<codec::connack>().empty());
  auto puts = store.ops<ports::session_put>();
  ASSERT_EQ(puts.size(), 1u);
  EXPECT_EQ(puts[0].client_id, "p");
  EXPECT_EQ(puts[0].expiry_interval, 60u);
  EXPECT_TRUE(puts[0].online);
  store.commit();
  EXPECT_EQ(c->received_of<codec::connack>().size(), 1u);
}

TEST_F(durability_test, a_clean_session_writes_nothing_and_waits_for_nothing) {
  auto sub = std::make_unique<client>(*broker, ex, 1, v::v311);
  sub->send(connect_packet("s", v::v311, true));
  ASSERT_EQ(sub->received_of<codec::connack>().size(), 1u);
  codec::subscribe s;
  s.packet_id = 1;
  s.topics.push_back({"t", 1, false, false, 0});
  sub->send(s);
  ASSERT_EQ(sub->received_of<codec::suback>().size(), 1u);
  auto p = std::make_unique<client>(*broker, ex, 0, v::v311);
  p->send(connect_packet("p", v::v311, true));
  p->send(pub("t", 1, 5));
  EXPECT_EQ(p->received_of<codec::pub_response>().size(), 1u);
  EXPECT_EQ(sub->received_of<codec::publish>().size(), 1u);
  EXPECT_TRUE(store.log.empty());
}

TEST_F(durability_test, puback_waits_until_the_message_is_stored_for_persistent_subscribers) {
  auto s1 = connect("s1", v::v311, 1, 0, false);  // 3.1.1 clean session 0: persistent
  auto s2 = connect("s2", v::v5, 0, 300);
  subscribe(*s1, "t", 1);
  subscribe(*s2, "t", 2);
  auto p = connect("p", v::v311, 0, 0, true);
  store.log.clear();

  p->send(pub("t", 1, 9));
  EXPECT_TRUE(p->received_of<codec::pub_response>().empty()) << "PUBACK before the message is durable";
  auto msgs = store.ops<ports::message_put>();
  ASSERT_EQ(msgs.size(), 1u) << "the payload is stored once";
  EXPECT_EQ(msgs[0].msg->payload, "payload");
  auto queued = store.ops<ports::queued_put>();
  ASSERT_EQ(queued.size(), 2u);
  EXPECT_EQ(queued[0].message_id, msgs[0].msg->id);
  EXPECT_EQ(msgs[0].msg->refs.value.load(), 2u);
  // Session ids name their client's partition, and the message is stored in
  // each partition it is queued in.
  replication::partition_set queued_in;
  for (const auto& q : queued) queued_in.add(replication::partition_of_session(q.session_id));
  replication::partition_set expected;
  expected.add(replication::partition_of("s1"));
  expected.add(replication::partition_of("s2"));
  EXPECT_EQ(queued_in, expected);
  EXPECT_EQ(msgs[0].msg->partitions, expected);

  store.commit();
  auto acks = p->received_of<codec::pub_response>();
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].packet_id, 9);

  // QoS 1 goes out at once; each ack deletes that session's record, the last the message.
  auto g1 = s1->received_of<codec::publish>();
  ASSERT_EQ(g1.size(), 1u);
  s1->send(ack(codec::packet_type::puback, g1[0].packet_id));
  EXPECT_TRUE(store.ops<ports::message_delete>().empty());
  auto g2 = s2->received_of<codec::publish>();  // QoS 1 (the message's QoS), stored sends are not held
  ASSERT_EQ(g2.size(), 1u);
  s2->send(ack(codec::packet_type::puback, g2[0].packet_id));
  auto deletes = store.ops<ports::message_delete>();
  ASSERT_EQ(deletes.size(), 1u);
  EXPECT_EQ(deletes[0].message_id, msgs[0].msg->id);
  EXPECT_EQ(deletes[0].partitions, expected) << "every copy goes";
  EXPECT_EQ(store.ops<ports::inflight_delete>().size(), 2u);
}

TEST_F(durability_test, qos2_publish_to_a_persistent_subscriber_waits_for_its_inflight_record) {
  auto s = connect("s", v::v5, 1, 300);
  subscribe(*s, "t", 2);
  auto p = connect("p", v::v5, 0, 0);
  store.one_group_per_append = true;
  p->send(pub("t", 2, 3));
  store.commit_through(store.log.back().group - 1);  // the message and its queued record, not the inflight record
  ASSERT_EQ(p->received_of<codec::pub_response>().size(), 1u);  // PUBREC

  EXPECT_TRUE(s->received_of<codec::publish>().empty()) << "QoS 2 PUBLISH before its packet id is durable";
  auto inflight = store.ops<ports::inflight_put>();
  ASSERT_EQ(inflight.size(), 1u);
  EXPECT_EQ(inflight[0].state, core::outgoing_state::awaiting_pubrec);
  store.commit();
  auto got = s->received_of<codec::publish>();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].packet_id, inflight[0].packet_id);

  s->send(ack(codec::packet_type::pubrec, got[0].packet_id));
  EXPECT_TRUE(s->received_of<codec::pub_response>().empty()) << "PUBREL before the state change is durable";
  inflight = store.ops<ports::inflight_put>();
  ASSERT_EQ(inflight.size(), 2u);
  EXPECT_EQ(inflight[1].state, core::outgoing_state::awaiting_pubcomp);
  EXPECT_EQ(store.ops<ports::message_delete>().size(), 1u) << "the payload goes once the receiver has it";
  store.commit();
  auto rel = s->received_of<codec::pub_response>();
  ASSERT_EQ(rel.size(), 1u);
  EXPECT_EQ(rel[0].type, codec::packet_type::pubrel);
  s->send(ack(codec::packet_type::pubcomp, got[0].packet_id));
  EXPECT_EQ(store.ops<ports::inflight_delete>().size(), 1u);
}

TEST_F(durability_test, incoming_qos2_ids_of_a_persistent_publisher_are_stored) {
  auto p = connect("p", v::v5, 0, 300);
  store.log.clear();
  p->send(pub("nobody/listens", 2, 77));
  EXPECT_TRUE(p->received_of<codec::pub_response>().empty());
  auto in = store.ops<ports::incoming_put>();
  ASSERT_EQ(in.size(), 1u);
  EXPECT_EQ(in[0].packet_id, 77);
  store.commit();
  ASSERT_EQ(p->received_of<codec::pub_response>().size(), 1u);
  p->send(ack(codec::packet_type::pubrel, 77));
  EXPECT_TRUE(p->received_of<codec::pub_response>().empty()) << "PUBCOMP before the id is gone from disk";
  EXPECT_EQ(store.ops<ports::incoming_delete>().size(), 1u);
  store.commit();
  auto comp = p->received_of<codec::pub_response>();
  ASSERT_EQ(comp.size(), 1u);
  EXPECT_EQ(comp[0].type, codec::packet_type::pubcomp);
}

TEST_F(durability_test, output_after_a_held_answer_keeps_its_order) {
  auto p = connect("p", v::v5, 0, 300);
  p->send(pub("a", 2, 1));   // PUBREC held
  codec::pingreq ping;
  p->send(ping);             // PINGRESP must not overtake it
  EXPECT_TRUE(p->received().empty());
  store.commit();
  auto got = p->received();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_TRUE(std::holds_alternative<codec::pub_response>(got[0]));
  EXPECT_TRUE(std::holds_alternative<codec::pingresp>(got[1]));
}

TEST_F(durability_test, retained_messages_are_stored_and_cleared) {
  auto p = connect("p", v::v311, 0, 0);
  p->send(pub("r", 0, 0, true));
  auto puts = store.ops<ports::retained_put>();
  ASSERT_EQ(puts.size(), 1u);
  EXPECT_EQ(puts[0].msg->topic, "r");
  auto clear = pub("r", 0, 0, true);
  clear.payload.clear();
  p->send(clear);
  auto dels = store.ops<ports::retained_delete>();
  ASSERT_EQ(dels.size(), 1u);
  EXPECT_EQ(dels[0].topic, "r");
}

TEST_F(durability_test, while_the_store_fails_qos1_publishes_are_refused) {
  auto p5 = connect("p5", v::v5, 0, 0);
  auto p3 = connect("p3", v::v311, 1, 0);
  store.set_healthy(false);
  p5->send(pub("t", 1, 4));
  auto acks = p5->received_of<codec::pub_response>();
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].reason_code, codec::rc::quota_exceeded);
  p5->send(pub("t", 0, 0));  // QoS 0 is not refused
  EXPECT_FALSE(p5->io.closed());
  p3->send(pub("t", 1, 4));
  EXPECT_TRUE(p3->io.closed()) << "3.1.1 has no negative PUBACK: the connection closes";
  store.set_healthy(true);
  p5->send(pub("t", 1, 5));
  acks = p5->received_of<codec::pub_response>();
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_NE(acks[0].reason_code, codec::rc::quota_exceeded);
}

TEST_F(durability_test, a_clean_start_deletes_the_old_session_and_releases_its_messages) {
  auto s = connect("s", v::v5, 1, 300);
  subscribe(*s, "t", 1);
  s->drop();
  auto p = connect("p", v::v5, 0, 0);
  p->send(pub("t", 1, 1));
  store.commit();
  auto msg = store.ops<ports::message_put>().at(0).msg;
  auto old_id = store.ops<ports::session_put>().at(0).session_id;
  auto again = connect("s", v::v5, 0, 300, true);  // clean start
  auto deletes = store.ops<ports::session_delete>();
  ASSERT_EQ(deletes.size(), 1u);
  EXPECT_EQ(deletes[0].session_id, old_id);
  ASSERT_EQ(store.ops<ports::message_delete>().size(), 1u);
  EXPECT_EQ(store.ops<ports::message_delete>()[0].message_id, msg->id);
  EXPECT_NE(store.ops<ports::session_put>().back().session_id, old_id) << "a new incarnation, a new id";
}

TEST_F(durability_test, restored_sessions_resume_with_queue_and_inflight) {
  auto m1 = std::make_shared<core::message>();
  m1->topic = "t";
  m1->payload = "in flight";
  m1->qos = 1;
  m1->id = 10;
  auto m2 = std::make_shared<core::message>(*m1);
  m2->payload = "queued";
  m2->id = 11;
  ports::restored_state st;
  ports::restored_session r;
  r.session_id = 5;
  r.client_id = "s";
  r.expiry_interval = 300;
  r.expires_at = clk.now() + std::chrono::seconds(300);
  r.subscriptions.push_back({"t", core::subscription_options{1}});
  r.inflight.push_back({{10, m1, {1, false, {}}}, 42, core::outgoing_state::awaiting_puback});
  r.queue.push_back({11, m2, {1, false, {}}});
  st.sessions.push_back(r);
  st.next_id = 12;
  broker->restore(std::move(st));

  bool present = false;
  auto s = connect("s", v::v5, 1, 300, false, &present);
  EXPECT_TRUE(present);
  auto got = s->received_of<codec::publish>();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].payload, "in flight");
  EXPECT_TRUE(got[0].dup);
  EXPECT_EQ(got[0].packet_id, 42);
  EXPECT_EQ(got[1].payload, "queued");
  EXPECT_NE(got[1].packet_id, 42);
  s->send(ack(codec::packet_type::puback, 42));
  s->send(ack(codec::packet_type::puback, got[1].packet_id));
  auto deletes = store.ops<ports::message_delete>();
  ASSERT_EQ(deletes.size(), 2u);

  // The restored subscription routes new messages, stored under new ids.
  auto p = connect("p", v::v5, 0, 0);
  p->send(pub("t", 1, 1));
  auto msgs = store.ops<ports::message_put>();
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_GE(msgs[0].msg->id, 12u);
}

TEST_F(durability_test, a_session_that_expired_while_the_broker_was_down_is_not_resumed) {
  ports::restored_state st;
  ports::restored_session r;
  r.session_id = 5;
  r.client_id = "gone";
  r.expiry_interval = 10;
  r.expires_at = clk.now() - std::chrono::seconds(1);
  r.subscriptions.push_back({"t", core::subscription_options{1}});
  st.sessions.push_back(r);
  st.next_id = 6;
  broker->restore(std::move(st));
  bool present = true;
  auto s = connect("gone", v::v5, 0, 300, false, &present);
  EXPECT_FALSE(present);
  auto deletes = store.ops<ports::session_delete>();
  ASSERT_EQ(deletes.size(), 1u);
  EXPECT_EQ(deletes[0].session_id, 5u);
}

}  // namespace
