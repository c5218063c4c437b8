// Protocol flows driven through connection machines with fake transports,
// a manual executor (2 workers) and a manual clock.
#include <gtest/gtest.h>

#include <set>

#include "broker/codec/reason_code.hpp"
#include "tests/unit/protocol/harness.hpp"

using namespace flock;
using namespace flock::testing;
using codec::protocol_version;
using v = codec::protocol_version;

namespace {

struct machine_test : ::testing::Test {
  manual_executor ex{2};
  manual_clock clk;
  core::broker_config cfg = [] {
    core::broker_config c;
    c.sys_interval = std::chrono::seconds(0);
    return c;
  }();
  std::unique_ptr<core::broker> broker = std::make_unique<core::broker>(cfg, ex, clk);

  std::unique_ptr<client> connect(const std::string& id, protocol_version ver, ports::worker_id w = 0,
                                  bool clean = true, std::uint32_t expiry = 0, bool* present = nullptr) {
    auto c = std::make_unique<client>(*broker, ex, w, ver);
    auto pkt = connect_packet(id, ver, clean);
    if (expiry) pkt.props.session_expiry_interval = expiry;
    c->send(pkt);
    auto acks = c->received_of<codec::connack>();
    EXPECT_EQ(acks.size(), 1u);
    if (!acks.empty()) {
      EXPECT_EQ(acks[0].reason_code, 0);
      if (present) *present = acks[0].session_present;
    }
    return c;
  }
  void subscribe(client& c, const std::string& filter, std::uint8_t qos, std::uint32_t id = 0) {
    codec::subscribe s;
    s.packet_id = 1;
    s.topics.push_back({filter, qos, false, false, 0});
    if (id) s.props.subscription_identifiers.push_back(id);
    c.send(s);
    auto acks = c.received_of<codec::suback>();
    ASSERT_EQ(acks.size(), 1u);
    ASSERT_EQ(acks[0].reason_codes.size(), 1u);
    ASSERT_EQ(acks[0].reason_codes[0], qos);
  }
  static codec::publish pub(std::string topic, std::string payload, std::uint8_t qos = 0, std::uint16_t id = 0,
                            bool retain = false) {
    codec::publish p;
    p.topic = std::move(topic);
    p.payload = std::move(payload);
    p.qos = qos;
    p.packet_id = id;
    p.retain = retain;
    return p;
  }
};

TEST_F(machine_test, qos0_publish_reaches_subscriber_on_another_worker) {
  auto sub = connect("sub", v::v311, 1);
  subscribe(*sub, "a/+", 0);
  auto pubc = connect("pub", v::v311, 0);
  pubc->send(pub("a/b", "hello"));
  auto got = sub->received_of<codec::publish>();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].topic, "a/b");
  EXPECT_EQ(got[0].payload, "hello");
  EXPECT_FALSE(got[0].retain);
}

TEST_F(machine_test, qos1_publish_is_acked_and_delivered_with_packet_id) {
  auto sub = connect("sub", v::v5, 1);
  subscribe(*sub, "t", 1);
  auto pubc = connect("pub", v::v5, 0);
  pubc->send(pub("t", "x", 1, 7));
  auto acks = pubc->received_of<codec::pub_response>();
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].type, codec::packet_type::puback);
  EXPECT_EQ(acks[0].packet_id, 7);
  EXPECT_EQ(acks[0].reason_code, 0);
  auto got = sub->received_of<codec::publish>();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].qos, 1);
  EXPECT_NE(got[0].packet_id, 0);
}

TEST_F(machine_test, qos1_with_no_subscribers_answers_0x10_in_v5) {
  auto pubc = connect("pub", v::v5);
  pubc->send(pub("nobody", "x", 1, 3));
  auto acks = pubc->received_of<codec::pub_response>();
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].reason_code, codec::rc::no_matching_subscribers);
}

TEST_F(machine_test, qos2_duplicate_before_pubrel_is_delivered_once) {
  auto sub = connect("sub", v::v311, 1);
  subscribe(*sub, "t", 2);
  auto pubc = connect("pub", v::v311);
  pubc->send(pub("t", "once", 2, 9));
  auto dup = pub("t", "once", 2, 9);
  dup.dup = true;
  pubc->send(dup);
  auto recs = pubc->received_of<codec::pub_response>();
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[1].type, codec::packet_type::pubrec);
  pubc->send(codec::pub_response{codec::packet_type::pubrel, 9, 0, {}});
  auto comps = pubc->received_of<codec::pub_response>();
  ASSERT_EQ(comps.size(), 1u);
  EXPECT_EQ(comps[0].type, codec::packet_type::pubcomp);
  EXPECT_EQ(sub->received_of<codec::publish>().size(), 1u);
}

TEST_F(machine_test, qos2_outgoing_flow_sends_pubrel_after_pubrec) {
  auto sub = connect("sub", v::v311, 1);
  subscribe(*sub, "t", 2);
  auto pubc = connect("pub", v::v311);
  pubc->send(pub("t", "m", 2, 1));
  auto got = sub->received_of<codec::publish>();
  ASSERT_EQ(got.size(), 1u);
  sub->send(codec::pub_response{codec::packet_type::pubrec, got[0].packet_id, 0, {}});
  auto rels = sub->received_of<codec::pub_response>();
  ASSERT_EQ(rels.size(), 1u);
  EXPECT_EQ(rels[0].type, codec::packet_type::pubrel);
  EXPECT_EQ(rels[0].packet_id, got[0].packet_id);
}

TEST_F(machine_test, persistent_session_resumes_with_dup_and_queued_messages) {
  auto sub = connect("s", v::v311, 0, false);
  subscribe(*sub, "q", 1);
  auto pubc = connect("pub", v::v311, 1);
  pubc->send(pub("q", "1", 1, 1));
  auto first = sub->received_of<codec::publish>();
  ASSERT_EQ(first.size(), 1u);
  sub->drop();  // unacknowledged: must come back with DUP
  pubc->send(pub("q", "2", 1, 2));  // queued while offline

  bool present = false;
  auto again = connect("s", v::v311, 1, false, 0, &present);
  EXPECT_TRUE(present);
  auto got = again->received_of<codec::publish>();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].payload, "1");
  EXPECT_TRUE(got[0].dup);
  EXPECT_EQ(got[0].packet_id, first[0].packet_id);
  EXPECT_EQ(got[1].payload, "2");
  EXPECT_FALSE(got[1].dup);
}

TEST_F(machine_test, no_redelivery_on_the_same_connection) {
  auto sub = connect("s", v::v311, 0, false);
  subscribe(*sub, "q", 1);
  auto pubc = connect("pub", v::v311, 1);
  pubc->send(pub("q", "1", 1, 1));
  EXPECT_EQ(sub->received_of<codec::publish>().size(), 1u);
  clk.advance(std::chrono::seconds(30));
  sub->tick(clk.now());
  EXPECT_TRUE(sub->received_of<codec::publish>().empty());
}

TEST_F(machine_test, second_connection_with_same_id_kicks_the_first_with_0x8e) {
  auto first = connect("dup", v::v5, 0);
  auto second = connect("dup", v::v5, 1);
  auto discs = first->received_of<codec::disconnect>();
  ASSERT_EQ(discs.size(), 1u);
  EXPECT_EQ(discs[0].reason_code, codec::rc::session_taken_over);
  EXPECT_TRUE(first->io.closed());
  EXPECT_FALSE(second->io.closed());
}

TEST_F(machine_test, retained_message_is_sent_on_subscribe_and_cleared_by_empty_payload) {
  auto pubc = connect("pub", v::v311);
  pubc->send(pub("r", "keep", 0, 0, true));
  auto sub = connect("sub", v::v311, 1);
  subscribe(*sub, "r", 0);
  auto got = sub->received_of<codec::publish>();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].retain);
  EXPECT_EQ(got[0].payload, "keep");

  pubc->send(pub("r", "", 0, 0, true));
  auto late = connect("late", v::v311, 1);
  subscribe(*late, "r", 0);
  EXPECT_TRUE(late->received_of<codec::publish>().empty());
}

TEST_F(machine_test, will_is_published_on_abrupt_close_but_not_after_disconnect) {
  auto sub = connect("sub", v::v311, 1);
  subscribe(*sub, "will/#", 0);
  for (bool graceful : {false, true}) {
    auto c = std::make_unique<client>(*broker, ex, 0, v::v311);
    auto pkt = connect_packet(graceful ? "g" : "a", v::v311);
    pkt.will = codec::will_message{"will/x", graceful ? "graceful" : "abrupt", 0, false, {}};
    c->send(pkt);
    if (graceful) c->send(codec::disconnect{});
    c->drop();
  }
  auto got = sub->received_of<codec::publish>();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload, "abrupt");
}

TEST_F(machine_test, keepalive_timeout_closes_and_publishes_will) {
  auto sub = connect("sub", v::v311, 1);
  subscribe(*sub, "w", 0);
  auto c = std::make_unique<client>(*broker, ex, 0, v::v5);
  auto pkt = connect_packet("ka", v::v5, true, 2);
  pkt.will = codec::will_message{"w", "gone", 0, false, {}};
  c->send(pkt);
  clk.advance(std::chrono::milliseconds(2900));
  c->tick(clk.now());
  EXPECT_FALSE(c->io.closed());
  clk.advance(std::chrono::milliseconds(200));
  c->tick(clk.now());
  EXPECT_TRUE(c->io.closed());
  auto discs = c->received_of<codec::disconnect>();
  ASSERT_EQ(discs.size(), 1u);
  EXPECT_EQ(discs[0].reason_code, codec::rc::keep_alive_timeout);
  EXPECT_EQ(sub->received_of<codec::publish>().size(), 1u);
}

TEST_F(machine_test, overlapping_subscriptions_give_one_copy_with_all_identifiers) {
  auto sub = connect("sub", v::v5, 1);
  subscribe(*sub, "a/+", 1, 11);
  subscribe(*sub, "a/#", 0, 22);
  auto pubc = connect("pub", v::v5);
  pubc->send(pub("a/b", "x", 1, 1));
  auto got = sub->received_of<codec::publish>();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].qos, 1);
  auto ids = got[0].props.subscription_identifiers;
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<std::uint32_t>{11, 22}));
}

TEST_F(machine_test, receive_maximum_exceeded_gets_disconnect_0x93) {
  cfg.receive_maximum = 2;
  broker = std::make_unique<core::broker>(cfg, ex, clk);
  auto c = connect("p", v::v5);
  c->send(pub("t", "1", 2, 1));
  c->send(pub("t", "2", 2, 2));
  EXPECT_FALSE(c->io.closed());
  c->send(pub("t", "3", 2, 3));
  EXPECT_TRUE(c->io.closed());
  auto discs = c->received_of<codec::disconnect>();
  ASSERT_EQ(discs.size(), 1u);
  EXPECT_EQ(discs[0].reason_code, codec::rc::receive_maximum_exceeded);
}

TEST_F(machine_test, broker_assigns_outgoing_topic_aliases_when_allowed) {
  auto sub = std::make_unique<client>(*broker, ex, 1, v::v5);
  auto pkt = connect_packet("sub", v::v5);
  pkt.props.topic_alias_maximum = 5;
  sub->send(pkt);
  sub->received();
  subscribe(*sub, "long/topic/name", 0);
  auto pubc = connect("pub", v::v5);
  pubc->send(pub("long/topic/name", "1"));
  pubc->send(pub("long/topic/name", "2"));
  auto got = sub->received_of<codec::publish>();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].topic, "long/topic/name");
  ASSERT_TRUE(got[0].props.topic_alias);
  EXPECT_TRUE(got[1].topic.empty());
  EXPECT_EQ(got[1].props.topic_alias, got[0].props.topic_alias);
}

TEST_F(machine_test, client_receive_maximum_bounds_messages_in_flight) {
  auto sub = std::make_unique<client>(*broker, ex, 1, v::v5);
  auto pkt = connect_packet("sub", v::v5);
  pkt.props.receive_maximum = 2;
  sub->send(pkt);
  sub->received();
  subscribe(*sub, "t", 1);
  auto pubc = connect("pub", v::v5);
  for (std::uint16_t i = 1; i <= 5; ++i) pubc->send(pub("t", std::to_string(i), 1, i));
  auto got = sub->received_of<codec::publish>();
  ASSERT_EQ(got.size(), 2u);
  sub->send(codec::pub_response{codec::packet_type::puback, got[0].packet_id, 0, {}});
  auto more = sub->received_of<codec::publish>();
  ASSERT_EQ(more.size(), 1u);
  EXPECT_EQ(more[0].payload, "3");
}

TEST_F(machine_test, messages_above_client_maximum_packet_size_are_not_sent) {
  auto sub = std::make_unique<client>(*broker, ex, 1, v::v5);
  auto pkt = connect_packet("sub", v::v5);
  pkt.props.maximum_packet_size = 64;
  sub->send(pkt);
  sub->received();
  subscribe(*sub, "t", 0);
  auto pubc = connect("pub", v::v5);
  pubc->send(pub("t", std::string(100, 'x')));
  pubc->send(pub("t", "small"));
  auto got = sub->received_of<codec::publish>();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload, "small");
}

TEST_F(machine_test, shared_subscription_delivers_each_message_to_one_member) {
  auto a = connect("a", v::v5, 0);
  auto b = connect("b", v::v5, 1);
  subscribe(*a, "$share/g/t", 0);
  subscribe(*b, "$share/g/t", 0);
  auto pubc = connect("pub", v::v5);
  for (int i = 0; i < 10; ++i) pubc->send(pub("t", std::to_string(i)));
  auto na = a->received_of<codec::publish>().size();
  auto nb = b->received_of<codec::publish>().size();
  EXPECT_EQ(na + nb, 10u);
  EXPECT_EQ(na, 5u);
}

TEST_F(machine_test, packet_before_connect_closes_without_answer) {
  client c(*broker, ex, 0, v::v311);
  c.send(codec::pingreq{});
  EXPECT_TRUE(c.io.closed());
  EXPECT_TRUE(c.received().empty());
}

TEST_F(machine_test, session_expiry_ends_an_offline_session) {
  auto s = connect("e", v::v5, 0, false, 10);
  subscribe(*s, "t", 1);
  s->drop();
  clk.advance(std::chrono::seconds(11));
  ex.set_current(0);
  broker->on_tick(0);
  bool present = true;
  auto again = connect("e", v::v5, 0, false, 10, &present);
  EXPECT_FALSE(present);
}

TEST_F(machine_test, delayed_will_is_cancelled_by_a_timely_reconnect) {
  auto sub = connect("sub", v::v5, 1);
  subscribe(*sub, "w", 0);
  auto c = std::make_unique<client>(*broker, ex, 0, v::v5);
  auto pkt = connect_packet("d", v::v5, false);
  pkt.props.session_expiry_interval = 100;
  pkt.will = codec::will_message{"w", "late", 0, false, {}};
  pkt.will->props.will_delay_interval = 5;
  c->send(pkt);
  c->drop();
  clk.advance(std::chrono::seconds(2));
  broker->on_tick(0);
  auto again = connect("d", v::v5, 1, false, 100);
  clk.advance(std::chrono::seconds(10));
  broker->on_tick(0);
  broker->on_tick(1);
  EXPECT_TRUE(sub->received_of<codec::publish>().empty());
}

}  // namespace

namespace {

struct one_user final : flock::ports::authenticator {
  bool check(std::string_view u, std::optional<std::string_view> p) const override {
    return u == "alice" && p && *p == "secret";
  }
};

TEST_F(machine_test, password_and_anonymous_rules_give_the_right_connack) {
  one_user users;
  broker->set_authenticator(&users);
  core::listener_settings closed{"public", false};
  struct attempt {
    std::optional<std::string> user, password;
    protocol_version version;
    std::uint8_t expected;
  };
  for (const auto& a : std::vector<attempt>{{"alice", "secret", v::v5, 0},
                                            {"alice", "wrong", v::v5, codec::rc::bad_user_name_or_password},
                                            {"alice", "wrong", v::v311, codec::rc::v3::bad_user_name_or_password},
                                            {std::nullopt, std::nullopt, v::v5, codec::rc::not_authorized},
                                            {std::nullopt, std::nullopt, v::v311, codec::rc::v3::not_authorized}}) {
    client c(*broker, ex, 0, a.version, closed);
    auto pkt = connect_packet("u", a.version);
    pkt.username = a.user;
    pkt.password = a.password;
    c.send(pkt);
    auto acks = c.received_of<codec::connack>();
    ASSERT_EQ(acks.size(), 1u);
    EXPECT_EQ(acks[0].reason_code, a.expected);
    EXPECT_EQ(c.io.closed(), a.expected != 0);
  }
}

}  // namespace

namespace {

TEST_F(machine_test, wildcard_subscribe_gets_every_retained_message_paced_by_flow_control) {
  auto pubc = connect("pub", v::v311);
  const int n = 3000;  // more than max_queued_messages (1000)
  for (int i = 0; i < n; ++i) pubc->send(pub("r/" + std::to_string(i), "v", 1, static_cast<std::uint16_t>(i % 60000 + 1), true));
  auto sub = std::make_unique<client>(*broker, ex, 1, v::v5);
  auto pkt = connect_packet("sub", v::v5);
  pkt.props.receive_maximum = 10;
  sub->send(pkt);
  sub->received();
  subscribe(*sub, "r/#", 1);
  std::set<std::string> topics;
  for (int round = 0; round < n; ++round) {
    auto got = sub->received_of<codec::publish>();
    if (got.empty()) break;
    EXPECT_LE(got.size(), 10u);
    for (auto& p : got) {
      topics.insert(p.topic);
      sub->send(codec::pub_response{codec::packet_type::puback, p.packet_id, 0, {}});
    }
  }
  EXPECT_EQ(topics.size(), static_cast<std::size_t>(n));
}

}  // namespace

namespace {

TEST_F(machine_test, each_subscriber_gets_its_own_subscription_identifier) {
  std::vector<std::unique_ptr<client>> subs;
  for (std::uint32_t k = 0; k < 4; ++k) {
    subs.push_back(connect("s" + std::to_string(k), v::v5, k % 2));
    subscribe(*subs.back(), "ids/t", 0, 100 + k);
  }
  auto pubc = connect("pub", v::v5);
  pubc->send(pub("ids/t", "x"));
  for (std::uint32_t k = 0; k < 4; ++k) {
    auto got = subs[k]->received_of<codec::publish>();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].props.subscription_identifiers, (std::vector<std::uint32_t>{100 + k})) << "subscriber " << k;
  }
}

}  // namespace

namespace {

// Topic access rules without a file: publishing to secret/... is refused;
// reading a/secret and wildcard filters under hidden/ are refused (single
// hidden/ topics are readable); user alice may read alice/#. Records the
// user names it is asked about.
struct fake_acl final : flock::ports::authorizer {
  bool can_publish(std::string_view, std::optional<std::string_view> user, std::string_view topic) const override {
    users.emplace_back(user);
    return topic.rfind("secret/", 0) != 0;
  }
  bool can_subscribe(std::string_view, std::optional<std::string_view> user, std::string_view filter) const override {
    users.emplace_back(user);
    if (filter.rfind("alice/", 0) == 0) return user && *user == "alice";
    bool hidden_wildcard = filter.rfind("hidden/", 0) == 0 && filter.find_first_of("+#") != std::string_view::npos;
    return filter != "a/secret" && !hidden_wildcard;
  }
  mutable std::vector<std::optional<std::string>> users;
};

struct acl_test : machine_test {
  fake_acl acl;
  acl_test() { broker->set_authorizer(&acl); }

  std::vector<std::uint8_t> suback_codes(client& c, std::vector<std::string> filters) {
    codec::subscribe s;
    s.packet_id = 9;
    for (auto& f : filters) s.topics.push_back({f, 1, false, false, 0});
    c.send(s);
    auto acks = c.received_of<codec::suback>();
    EXPECT_EQ(acks.size(), 1u);
    return acks.empty() ? std::vector<std::uint8_t>{} : acks[0].reason_codes;
  }
};

TEST_F(acl_test, subscribe_to_a_filter_not_allowed_gets_0x87_in_v5_and_0x80_in_v311) {
  auto c5 = connect("s5", v::v5);
  EXPECT_EQ(suback_codes(*c5, {"ok/#", "hidden/+", "a/secret"}), (std::vector<std::uint8_t>{1, 0x87, 0x87}));
  auto c3 = connect("s3", v::v311);
  EXPECT_EQ(suback_codes(*c3, {"hidden/#", "ok/+"}), (std::vector<std::uint8_t>{0x80, 1}));
  // The refused subscription does not exist: hidden/x, which c3 may read,
  // does not arrive.
  auto pubc = connect("p", v::v5);
  pubc->send(pub("hidden/x", "h", 0));
  pubc->send(pub("ok/y", "y", 0));
  auto got = c3->received_of<codec::publish>();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].topic, "ok/y");
}

TEST_F(acl_test, user_name_from_connect_reaches_the_authorizer) {
  client alice(*broker, ex, 0, v::v5);
  auto pkt = connect_packet("alice-dev", v::v5);
  pkt.username = "alice";
  alice.send(pkt);
  ASSERT_EQ(alice.received_of<codec::connack>().size(), 1u);
  EXPECT_EQ(suback_codes(alice, {"alice/#"}), (std::vector<std::uint8_t>{1}));
  auto anon = connect("anon", v::v5);
  EXPECT_EQ(suback_codes(*anon, {"alice/#"}), (std::vector<std::uint8_t>{0x87}));
  ASSERT_GE(acl.users.size(), 2u);
  EXPECT_EQ(acl.users.back(), std::nullopt);
}

TEST_F(acl_test, publish_not_allowed_is_not_routed_v5_acks_0x87_v3_acks_normally) {
  auto sub = connect("sub", v::v5, 1);
  subscribe(*sub, "secret/#", 2);
  auto p5 = connect("p5", v::v5);
  p5->send(pub("secret/a", "x", 1, 1));
  p5->send(pub("secret/a", "x", 2, 2));
  p5->send(pub("secret/a", "x", 0));
  auto acks5 = p5->received_of<codec::pub_response>();
  ASSERT_EQ(acks5.size(), 2u);
  EXPECT_EQ(acks5[0].type, codec::packet_type::puback);
  EXPECT_EQ(acks5[0].reason_code, codec::rc::not_authorized);
  EXPECT_EQ(acks5[1].type, codec::packet_type::pubrec);
  EXPECT_EQ(acks5[1].reason_code, codec::rc::not_authorized);

  auto p3 = connect("p3", v::v311);
  p3->send(pub("secret/b", "y", 1, 1));
  p3->send(pub("secret/b", "y", 2, 2, true));
  auto acks3 = p3->received_of<codec::pub_response>();
  ASSERT_EQ(acks3.size(), 2u);
  EXPECT_EQ(acks3[0].type, codec::packet_type::puback);
  EXPECT_EQ(acks3[0].reason_code, 0);
  EXPECT_EQ(acks3[1].type, codec::packet_type::pubrec);
  EXPECT_EQ(acks3[1].reason_code, 0);
  p3->send(codec::pub_response{codec::packet_type::pubrel, 2, 0, {}});
  auto comp = p3->received_of<codec::pub_response>();
  ASSERT_EQ(comp.size(), 1u);
  EXPECT_EQ(comp[0].type, codec::packet_type::pubcomp);

  EXPECT_TRUE(sub->received_of<codec::publish>().empty());
  // Not retained either.
  auto late = connect("late", v::v5);
  subscribe(*late, "secret/#", 0);
  EXPECT_TRUE(late->received_of<codec::publish>().empty());
}

TEST_F(acl_test, deny_on_read_stops_delivery_through_a_wildcard_subscription) {
  // Receive Maximum 1: a refused message must not hold the only in-flight slot.
  auto sub = std::make_unique<client>(*broker, ex, 1, v::v5);
  auto pkt = connect_packet("sub", v::v5);
  pkt.props.receive_maximum = 1;
  sub->send(pkt);
  ASSERT_EQ(sub->received_of<codec::connack>().size(), 1u);
  subscribe(*sub, "a/#", 1);
  auto pubc = connect("pub", v::v5);
  pubc->send(pub("a/secret", "s", 1, 1, true));
  pubc->send(pub("a/public", "p", 1, 2));
  pubc->send(pub("a/secret", "s", 0));
  auto got = sub->received_of<codec::publish>();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].topic, "a/public");
  // Retained messages sent on subscribe are checked the same way.
  auto late = connect("late", v::v311);
  subscribe(*late, "a/#", 1);
  EXPECT_TRUE(late->received_of<codec::publish>().empty());
}

TEST_F(acl_test, will_on_a_topic_not_allowed_is_never_published) {
  auto sub = connect("sub", v::v5, 1);
  subscribe(*sub, "secret/will", 0);
  subscribe(*sub, "ok/will", 0);
  for (const char* topic : {"secret/will", "ok/will"}) {
    client c(*broker, ex, 0, v::v5);
    auto pkt = connect_packet(std::string("w-") + topic, v::v5);
    pkt.will = codec::will_message{topic, "gone", 0, false, {}};
    c.send(pkt);
    auto acks = c.received_of<codec::connack>();
    ASSERT_EQ(acks.size(), 1u);
    EXPECT_EQ(acks[0].reason_code, 0);  // the client still connects
    c.drop();
  }
  auto got = sub->received_of<codec::publish>();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].topic, "ok/will");
}

}  // namespace

namespace {

TEST_F(machine_test, will_message_expiry_counts_from_publication_not_connect) {
  auto sub = connect("sub", v::v5, 1);
  subscribe(*sub, "w", 1);
  auto c = std::make_unique<client>(*broker, ex, 0, v::v5);
  auto pkt = connect_packet("long-lived", v::v5);
  pkt.will = codec::will_message{"w", "bye", 1, false, {}};
  pkt.will->props.message_expiry_interval = 10;
  c->send(pkt);
  clk.advance(std::chrono::seconds(60));  // connected far longer than the will's expiry
  c->drop();
  auto got = sub->received_of<codec::publish>();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload, "bye");
  EXPECT_EQ(got[0].props.message_expiry_interval, 10u);
}

}  // namespace
