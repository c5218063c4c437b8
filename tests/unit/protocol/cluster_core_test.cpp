// The core in a cluster, against a fake cluster: which copies go to which
// peer, how shared groups weigh every node's members, what a publisher's ack
// waits for, route announcements, retained last-writer-wins, and sessions
// claimed from and handed to other nodes.
#include <gtest/gtest.h>

#include "broker/codec/reason_code.hpp"
#include "broker/clustering/member.hpp"
#include "broker/core/broker_impl.hpp"
#include "tests/unit/protocol/fake_cluster.hpp"
#include "tests/unit/protocol/fake_store.hpp"
#include "tests/unit/protocol/harness.hpp"

using namespace flock;
using namespace flock::testing;
using v = codec::protocol_version;

namespace {

struct cluster_core : ::testing::Test {
  manual_executor ex{2};
  manual_clock clk;
  fake_store store{ex};
  fake_cluster cl;
  core::broker_config cfg = [] {
    core::broker_config c;
    c.sys_interval = std::chrono::seconds(0);
    return c;
  }();
  clustering::member* member = nullptr;  // owned by the broker
  std::unique_ptr<core::broker> broker = [&] {
    auto b = std::make_unique<core::broker>(cfg, ex, clk);
    b->set_store(&store);
    auto m = std::make_unique<clustering::member>(*b);
    member = m.get();
    m->connect(cl);
    b->set_cluster_side(std::move(m));
    return b;
  }();
  ports::cluster_host& host() { return member->host(); }

  std::unique_ptr<client> connect(const std::string& id, v ver, ports::worker_id w, std::uint32_t expiry = 0,
                                  bool clean = true) {
    auto c = std::make_unique<client>(*broker, ex, w, ver);
    auto pkt = connect_packet(id, ver, clean);
    if (ver == v::v5 && expiry) pkt.props.session_expiry_interval = expiry;
    c->send(pkt);
    // A resume asks the cluster first: nobody else has the session.
    if (!cl.claims.empty()) {
      auto claim = std::move(cl.claims.back());
      cl.claims.pop_back();
      claim.done({});
      ex.run_all();
    }
    store.commit();
    ex.run_all();
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
  static codec::publish pub(std::string topic, std::uint8_t qos, std::uint16_t id, std::string payload = "p") {
    codec::publish p;
    p.topic = std::move(topic);
    p.payload = std::move(payload);
    p.qos = qos;
    p.packet_id = id;
    return p;
  }
  static std::shared_ptr<core::message> message(std::string topic, std::uint8_t qos, std::string payload = "p") {
    auto m = std::make_shared<core::message>();
    m->topic = std::move(topic);
    m->payload = std::move(payload);
    m->qos = qos;
    return m;
  }
};

}  // namespace

TEST_F(cluster_core, a_publish_goes_once_to_each_peer_with_a_matching_route) {
  host().set_peer_route(1, "a/#", 1);
  host().set_peer_route(1, "a/b", 1);  // the same peer twice: one copy
  host().set_peer_route(2, "a/+", 1);
  host().set_peer_route(3, "z", 1);
  auto sub = connect("sub", v::v311, 1);
  subscribe(*sub, "a/b", 0);
  auto p = connect("pub", v::v311, 0);
  p->send(pub("a/b", 0, 0));
  ASSERT_EQ(cl.copies.size(), 2u);
  std::set<ports::peer_id> peers{cl.copies[0].peer, cl.copies[1].peer};
  EXPECT_EQ(peers, (std::set<ports::peer_id>{1, 2}));
  EXPECT_EQ(sub->received_of<codec::publish>().size(), 1u);
}

TEST_F(cluster_core, a_message_from_a_peer_is_delivered_here_only) {
  host().set_peer_route(1, "t", 1);
  auto sub = connect("sub", v::v311, 1);
  subscribe(*sub, "t", 1);
  bool durable = false;
  std::vector<ports::forwarded_publish> batch;
  batch.push_back({message("t", 1), {}});
  host().deliver_forwarded(1, std::move(batch), [&] { durable = true; });
  ex.run_all();
  EXPECT_TRUE(cl.copies.empty());  // never forwarded onward
  EXPECT_EQ(sub->received_of<codec::publish>().size(), 1u);
  EXPECT_TRUE(durable);  // nothing persistent: nothing to wait for
}

TEST_F(cluster_core, a_forwarded_message_waits_for_the_store_before_it_is_confirmed) {
  auto sub = connect("sub", v::v5, 1, 300, false);
  subscribe(*sub, "t", 1);
  bool durable = false;
  std::vector<ports::forwarded_publish> batch;
  batch.push_back({message("t", 1), {}});
  host().deliver_forwarded(0, std::move(batch), [&] { durable = true; });
  ex.run_all();
  EXPECT_FALSE(durable);  // queued for a persistent session: on disk first
  ASSERT_EQ(store.ops<ports::queued_put>().size(), 1u);
  EXPECT_EQ(store.ops<ports::message_put>().size(), 1u);
  store.commit();
  ex.run_all();
  EXPECT_TRUE(durable);
}

TEST_F(cluster_core, the_publishers_ack_waits_for_the_peers_that_got_a_copy) {
  host().set_peer_route(1, "t", 1);
  auto p = connect("pub", v::v5, 0);
  p->send(pub("t", 1, 7));
  store.commit();
  EXPECT_TRUE(p->received_of<codec::pub_response>().empty());
  ASSERT_EQ(cl.copies.size(), 1u);
  cl.copies[0].ack->confirm();
  ex.run_all();
  auto acks = p->received_of<codec::pub_response>();
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].packet_id, 7);
  EXPECT_EQ(acks[0].reason_code, 0);  // routed to a peer: not "no matching subscribers"
}

TEST_F(cluster_core, a_shared_group_weighs_every_nodes_members) {
  auto member = connect("m", v::v5, 1);
  subscribe(*member, "$share/g/t", 0);
  host().set_peer_route(1, "$share/g/t", 3);  // three members there
  auto p = connect("pub", v::v5, 0);
  for (int i = 0; i < 400; ++i) p->send(pub("t", 0, 0));
  const auto here = member->received_of<codec::publish>().size();
  EXPECT_EQ(here + cl.copies.size(), 400u);  // each message once, cluster-wide
  EXPECT_EQ(here, 100u);
  for (const auto& c : cl.copies) {
    ASSERT_EQ(c.picks.size(), 1u);
    EXPECT_EQ(c.picks[0].group, "g");
    EXPECT_EQ(c.picks[0].filter, "t");
  }
}

TEST_F(cluster_core, a_peer_serves_only_the_groups_whose_turn_fell_on_it) {
  auto g1 = connect("g1", v::v5, 1);
  subscribe(*g1, "$share/one/t", 0);
  auto g2 = connect("g2", v::v5, 1);
  subscribe(*g2, "$share/two/t", 0);
  auto plain = connect("plain", v::v5, 1);
  subscribe(*plain, "t", 0);
  std::vector<ports::forwarded_publish> batch;
  batch.push_back({message("t", 0), {{"one", "t"}}});
  host().deliver_forwarded(1, std::move(batch), [] {});
  ex.run_all();
  EXPECT_EQ(g1->received_of<codec::publish>().size(), 1u);
  EXPECT_EQ(g2->received_of<codec::publish>().size(), 0u);  // another node's member got it
  EXPECT_EQ(plain->received_of<codec::publish>().size(), 1u);
}

TEST_F(cluster_core, routes_are_announced_per_filter_and_groups_with_their_size) {
  auto a = connect("a", v::v5, 0);
  auto b = connect("b", v::v5, 1);
  subscribe(*a, "x/#", 0);
  subscribe(*b, "x/#", 0);  // a second holder: no new route
  subscribe(*a, "$share/g/y", 0);
  subscribe(*b, "$share/g/y", 0);
  EXPECT_EQ(cl.route_changes, (std::vector<std::pair<std::string, std::uint32_t>>{
                                  {"x/#", 1}, {"$share/g/y", 1}, {"$share/g/y", 2}}));
  cl.route_changes.clear();
  codec::unsubscribe u;
  u.packet_id = 2;
  u.filters = {"x/#", "$share/g/y"};
  a->send(u);
  EXPECT_EQ(cl.route_changes, (std::vector<std::pair<std::string, std::uint32_t>>{{"$share/g/y", 1}}));
  b->drop();  // a clean session ends with its connection
  EXPECT_EQ(cl.route_changes, (std::vector<std::pair<std::string, std::uint32_t>>{
                                  {"$share/g/y", 1}, {"$share/g/y", 0}, {"x/#", 0}}));
}

TEST_F(cluster_core, sys_topics_stay_on_their_node) {
  host().set_peer_route(1, "#", 1);
  host().set_peer_route(1, "$SYS/#", 1);
  broker->internals().publish_sys();
  EXPECT_TRUE(cl.copies.empty());
  EXPECT_TRUE(cl.retained.empty());
}

TEST_F(cluster_core, retained_writes_are_stamped_replicated_and_the_newest_wins) {
  auto p = connect("pub", v::v5, 0);
  auto r = pub("r", 0, 0, "local");
  r.retain = true;
  p->send(r);
  ASSERT_EQ(cl.retained.size(), 1u);
  const core::stamp mine = cl.retained[0]->written;
  EXPECT_FALSE(mine.empty());
  auto older = std::const_pointer_cast<core::message>(message("r", 0, "older"));
  older->retain = true;
  older->written = core::stamp{mine.time - 1, 7};
  host().merge_retained(older);
  EXPECT_EQ(broker->internals().retained_for("r")[0]->payload, "local");
  auto newer = std::const_pointer_cast<core::message>(message("r", 0, "newer"));
  newer->retain = true;
  newer->written = core::stamp{mine.time + 10, 7};
  host().merge_retained(newer);
  EXPECT_EQ(broker->internals().retained_for("r")[0]->payload, "newer");
  EXPECT_EQ(store.ops<ports::retained_put>().back().msg->payload, "newer");
  // A clear wins over older writes that arrive later.
  auto clear = std::const_pointer_cast<core::message>(message("r", 0, ""));
  clear->retain = true;
  clear->written = core::stamp{mine.time + 20, 7};
  host().merge_retained(clear);
  EXPECT_TRUE(broker->internals().retained_for("r").empty());
  host().merge_retained(newer);
  EXPECT_TRUE(broker->internals().retained_for("r").empty());
  // Our clock moved past every stamp it saw: the next local write wins.
  p->send(r);
  EXPECT_EQ(broker->internals().retained_for("r")[0]->payload, "local");
}

TEST_F(cluster_core, a_resume_on_a_node_without_the_session_claims_it_and_absorbs_it) {
  auto c = std::make_unique<client>(*broker, ex, 1, v::v5);
  auto pkt = connect_packet("dev", v::v5, false);
  pkt.props.session_expiry_interval = 300;
  c->send(pkt);
  ASSERT_EQ(cl.claims.size(), 1u);
  EXPECT_TRUE(cl.claims[0].want);
  EXPECT_TRUE(c->received_of<codec::connack>().empty());  // waits for the cluster

  ports::claim_result r;
  r.found = true;
  r.from = 2;
  r.session.expiry_interval = 300;
  r.session.subscriptions.emplace_back("s/#", core::subscription_options{1});
  for (int i = 0; i < 2; ++i) {
    auto m = std::make_shared<core::message>();
    m->topic = "s/" + std::to_string(i);
    m->payload = "q" + std::to_string(i);
    m->qos = 1;
    r.session.queue.push_back({m, 1, false, {}});
  }
  auto inflight = std::make_shared<core::message>();
  inflight->topic = "s/f";
  inflight->qos = 1;
  r.session.inflight.push_back({9, core::outgoing_state::awaiting_puback, {inflight, 1, false, {}}});
  cl.claims[0].done(std::move(r));
  ex.run_all();
  EXPECT_TRUE(c->received_of<codec::connack>().empty());  // not before it is on disk here
  EXPECT_TRUE(cl.installed.empty());
  EXPECT_EQ(store.ops<ports::queued_put>().size(), 2u);
  auto inflight_puts = store.ops<ports::inflight_put>();
  ASSERT_FALSE(inflight_puts.empty());
  EXPECT_EQ(inflight_puts[0].packet_id, 9);  // the moved one keeps its packet id
  EXPECT_EQ(store.ops<ports::subscription_put>().size(), 1u);
  store.commit();
  ex.run_all();
  auto acks = c->received_of<codec::connack>();
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_TRUE(acks[0].session_present);
  EXPECT_EQ(cl.installed, (std::vector<std::pair<ports::peer_id, std::string>>{{2, "dev"}}));
  auto got = c->received_of<codec::publish>();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].packet_id, 9);  // the in-flight one first, again, with DUP
  EXPECT_TRUE(got[0].dup);
  EXPECT_EQ(got[1].payload, "q0");
  EXPECT_EQ(got[2].payload, "q1");
  EXPECT_EQ(cl.route_changes.back(), std::make_pair(std::string("s/#"), 1u));
}

TEST_F(cluster_core, a_claim_nobody_answers_with_a_session_starts_a_fresh_one) {
  auto c = std::make_unique<client>(*broker, ex, 0, v::v311);
  c->send(connect_packet("fresh", v::v311, false));
  ASSERT_EQ(cl.claims.size(), 1u);
  cl.claims[0].done({});
  ex.run_all();
  store.commit();
  ex.run_all();
  auto acks = c->received_of<codec::connack>();
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_FALSE(acks[0].session_present);
}

TEST_F(cluster_core, a_lost_claim_closes_the_waiting_connection) {
  auto c = std::make_unique<client>(*broker, ex, 0, v::v5);
  c->send(connect_packet("lost", v::v5, false));
  ports::claim_result r;
  r.refused = true;
  cl.claims[0].done(std::move(r));
  ex.run_all();
  EXPECT_TRUE(c->io.closed());
  EXPECT_TRUE(c->received_of<codec::connack>().empty());
}

TEST_F(cluster_core, a_peers_claim_kicks_the_connection_and_hands_the_session_over) {
  auto c = connect("dev", v::v5, 1, 300, false);
  subscribe(*c, "s/#", 1);
  c->received();
  ports::claim_answer answer;
  bool answered = false;
  host().on_claim(3, "dev", member->hlc.now(), true, [&](ports::claim_answer a) {
    answer = std::move(a);
    answered = true;
  });
  ex.run_all();
  ASSERT_TRUE(answered);
  EXPECT_EQ(answer.what, ports::claim_answer::kind::session);
  ASSERT_EQ(answer.session.subscriptions.size(), 1u);
  EXPECT_EQ(answer.session.subscriptions[0].first, "s/#");
  auto d = c->received_of<codec::disconnect>();
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].reason_code, codec::rc::session_taken_over);
  // What reaches the session while it travels follows it.
  auto p = connect("pub", v::v5, 0);
  p->send(pub("s/x", 1, 1));
  ASSERT_EQ(cl.moved_deliveries.size(), 1u);
  EXPECT_EQ(cl.moved_deliveries[0].first, "dev");
  // Durable on the new node: gone from here for claims at once...
  cl.route_changes.clear();
  host().on_move_finished(3, "dev", true);
  ex.run_all();
  EXPECT_EQ(broker->internals().session_count(), 1u);  // only the publisher
  // ...but its routes stay, and what still arrives follows it, until the
  // cluster says every peer routes to the new node (cluster/node_handover.cpp).
  EXPECT_TRUE(cl.route_changes.empty());
  p->send(pub("s/y", 1, 2));
  ex.run_all();
  ASSERT_EQ(cl.moved_deliveries.size(), 2u);
  EXPECT_EQ(cl.moved_deliveries[1].first, "dev");
  host().handover_done("dev");
  ex.run_all();
  EXPECT_EQ(cl.route_changes, (std::vector<std::pair<std::string, std::uint32_t>>{{"s/#", 0}}));
  EXPECT_FALSE(store.ops<ports::session_delete>().empty());
  p->send(pub("s/z", 1, 3));
  ex.run_all();
  EXPECT_EQ(cl.moved_deliveries.size(), 2u);
}

TEST_F(cluster_core, what_follows_a_session_that_moved_on_from_here_follows_it_further) {
  auto c = connect("dev", v::v5, 1, 300, false);
  subscribe(*c, "s/#", 1);
  host().on_claim(3, "dev", member->hlc.now(), true, [](ports::claim_answer) {});
  ex.run_all();
  auto passed_on = [](std::string payload) {
    ports::moved_delivery md;
    md.msg = std::make_shared<core::message>();
    md.msg->topic = "s/1";
    md.msg->payload = std::move(payload);
    md.msg->qos = 1;
    md.qos = 1;
    return md;
  };
  // From the node it came from (a drain), while it moves on to node 3...
  host().deliver_to_session("dev", passed_on("moving"));
  ex.run_all();
  // ...and after node 3 has it, while this node still routes for it.
  host().on_move_finished(3, "dev", true);
  ex.run_all();
  host().deliver_to_session("dev", passed_on("lingering"));
  ex.run_all();
  ASSERT_EQ(cl.moved_deliveries.size(), 2u);
  EXPECT_EQ(cl.moved_deliveries[0].second.msg->payload, "moving");
  EXPECT_EQ(cl.moved_deliveries[1].second.msg->payload, "lingering");
}

TEST_F(cluster_core, a_session_that_moves_away_again_ends_its_lingering_copy) {
  auto c = connect("dev", v::v5, 1, 300, false);
  subscribe(*c, "s/#", 1);
  host().on_claim(3, "dev", member->hlc.now(), true, [](ports::claim_answer) {});
  ex.run_all();
  host().on_move_finished(3, "dev", true);
  ex.run_all();
  // It comes back here, and leaves again before the first hand-over ended.
  auto back = connect("dev", v::v5, 1, 300, false);
  subscribe(*back, "t/#", 1);
  host().on_claim(4, "dev", member->hlc.now(), true, [](ports::claim_answer) {});
  ex.run_all();
  cl.route_changes.clear();
  host().on_move_finished(4, "dev", true);
  ex.run_all();
  // The first copy is gone (its routes with it); the second lingers.
  EXPECT_EQ(cl.route_changes, (std::vector<std::pair<std::string, std::uint32_t>>{{"s/#", 0}}));
  host().handover_done("dev");
  ex.run_all();
  EXPECT_EQ(cl.route_changes,
            (std::vector<std::pair<std::string, std::uint32_t>>{{"s/#", 0}, {"t/#", 0}}));
}

TEST_F(cluster_core, a_move_that_does_not_happen_leaves_the_session_here) {
  auto c = connect("dev", v::v5, 1, 300, false);
  subscribe(*c, "s/#", 1);
  host().on_claim(3, "dev", member->hlc.now(), true, [](ports::claim_answer) {});
  ex.run_all();
  host().on_move_finished(3, "dev", false);
  ex.run_all();
  EXPECT_EQ(broker->internals().session_count(), 1u);
  bool present = false;
  auto again = std::make_unique<client>(*broker, ex, 0, v::v5);
  auto pkt = connect_packet("dev", v::v5, false);
  pkt.props.session_expiry_interval = 300;
  again->send(pkt);
  store.commit();
  ex.run_all();
  auto acks = again->received_of<codec::connack>();
  ASSERT_EQ(acks.size(), 1u);
  present = acks[0].session_present;
  EXPECT_TRUE(present);
  EXPECT_TRUE(cl.claims.empty());  // it was here: nobody to ask
}

TEST_F(cluster_core, an_older_claim_is_refused_and_a_newer_one_elsewhere_ends_ours) {
  auto c = connect("dev", v::v5, 1);
  ports::claim_answer answer;
  host().on_claim(3, "dev", core::stamp{1, 1}, true, [&](ports::claim_answer a) { answer = std::move(a); });
  ex.run_all();
  EXPECT_EQ(answer.what, ports::claim_answer::kind::refused);
  EXPECT_FALSE(c->io.closed());
  host().end_if_older("dev", member->hlc.now());
  ex.run_all();
  EXPECT_TRUE(c->io.closed());
  EXPECT_EQ(c->received_of<codec::disconnect>().at(0).reason_code, codec::rc::session_taken_over);
}

TEST_F(cluster_core, connecting_here_tells_the_cluster_so_older_copies_end) {
  auto c = connect("dev", v::v311, 0);
  ASSERT_EQ(cl.announces.size(), 1u);
  EXPECT_EQ(cl.announces[0].first, "dev");
}
