// The cluster logic in one process: three nodes on a memory network (which
// can cut links), each with a fake core that records what it is asked.
#include "cluster/node.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "cluster/memory_transport.hpp"
#include "cluster/wire_codec.hpp"
#include "tests/unit/cluster/fake_host.hpp"

using namespace flock;
using namespace std::chrono_literals;

namespace {

core::message_ptr message(std::string topic, std::uint8_t qos, std::string payload = "p") {
  auto m = std::make_shared<core::message>();
  m->topic = std::move(topic);
  m->payload = std::move(payload);
  m->qos = qos;
  return m;
}

struct trio : ::testing::Test {
  cluster::memory_network net;
  std::vector<std::string> names{"a", "b", "c"};
  std::vector<std::unique_ptr<flock::testing::fake_host>> hosts;
  std::vector<std::unique_ptr<cluster::node>> nodes;
  std::chrono::milliseconds failure_timeout = 300ms;
  std::chrono::milliseconds dns_interval = 5000ms;
  std::chrono::milliseconds handover_timeout = 10000ms;
  std::map<std::string, std::uint32_t> protocols;  // a node from before: 1

  cluster::options options_for(std::size_t i) {
    cluster::options o;
    if (auto it = protocols.find(names[i]); it != protocols.end()) o.protocol = it->second;
    o.node_name = names[i];
    o.listen = names[i];
    for (std::size_t j = 0; j < names.size(); ++j)
      if (j != i) o.seeds.push_back(names[j]);
    o.heartbeat = 20ms;
    o.failure_timeout = failure_timeout;
    o.claim_timeout = 500ms;
    o.join_timeout = 0ms;
    o.dns_interval = dns_interval;
    o.handover_timeout = handover_timeout;
    return o;
  }
  void start(std::size_t n = 3) {
    for (std::size_t i = 0; i < n; ++i) {
      hosts.push_back(std::make_unique<flock::testing::fake_host>());
      nodes.push_back(std::make_unique<cluster::node>(options_for(i), *hosts[i], net.make_transport(names[i])));
    }
    for (auto& n : nodes) n->start();
    ASSERT_TRUE(all_up(n - 1));
  }
  void TearDown() override {
    for (auto& n : nodes) n->stop();
  }
  bool all_up(std::size_t peers, std::chrono::milliseconds timeout = 5s) {
    return hosts[0]->wait([&] {
      for (auto& n : nodes)
        if (n->status().peers_up != peers) return false;
      return true;
    }, timeout);
  }
  ports::peer_id id(std::size_t at, std::size_t of) { return *nodes[at]->peer_id(names[of]); }
  bool has_route(std::size_t at, std::size_t of, const std::string& filter, std::uint32_t holders) {
    auto pid = nodes[at]->peer_id(names[of]);
    if (!pid) return false;
    auto it = hosts[at]->routes.find({*pid, filter});
    return holders == 0 ? it == hosts[at]->routes.end() : (it != hosts[at]->routes.end() && it->second == holders);
  }
};

}  // namespace

TEST_F(trio, every_node_finds_every_other_through_its_seeds) {
  start();
  for (auto& n : nodes) EXPECT_EQ(n->status().peers_known, 2u);
  EXPECT_TRUE(nodes[0]->has_peers());
}

TEST_F(trio, streams_stay_up_while_seeds_are_asked_again) {
  dns_interval = 50ms;  // seeds are asked who is there this often
  start();
  ASSERT_TRUE(hosts[0]->wait([&] { return nodes[0]->status().streams_opened == 2; }));
  const auto before = nodes[1]->status().streams_opened;
  // Long enough for several rounds of seed probes.
  auto until = std::chrono::steady_clock::now() + 600ms;
  hosts[0]->wait([&] { return std::chrono::steady_clock::now() >= until; }, 1s);
  for (auto& n : nodes) EXPECT_EQ(n->status().streams_opened, 2u);
  EXPECT_EQ(nodes[1]->status().streams_opened, before);
}

TEST_F(trio, routes_reach_every_peer_and_go_when_removed) {
  start();
  nodes[0]->route_changed("x/#", 1);
  nodes[0]->route_changed("$share/g/y", 2);
  EXPECT_TRUE(hosts[1]->wait([&] { return has_route(1, 0, "x/#", 1) && has_route(1, 0, "$share/g/y", 2); }));
  EXPECT_TRUE(hosts[2]->wait([&] { return has_route(2, 0, "x/#", 1) && has_route(2, 0, "$share/g/y", 2); }));
  nodes[0]->route_changed("x/#", 0);
  EXPECT_TRUE(hosts[2]->wait([&] { return has_route(2, 0, "x/#", 0); }));
  EXPECT_TRUE(has_route(2, 0, "$share/g/y", 2));
}

TEST_F(trio, routes_announced_before_the_peers_joined_arrive_in_the_snapshot) {
  hosts.push_back(std::make_unique<flock::testing::fake_host>());
  nodes.push_back(std::make_unique<cluster::node>(options_for(0), *hosts[0], net.make_transport("a")));
  nodes[0]->route_changed("early/#", 1);  // restored from the store before start
  nodes[0]->start();
  for (std::size_t i = 1; i < 3; ++i) {
    hosts.push_back(std::make_unique<flock::testing::fake_host>());
    nodes.push_back(std::make_unique<cluster::node>(options_for(i), *hosts[i], net.make_transport(names[i])));
    nodes[i]->start();
  }
  ASSERT_TRUE(all_up(2));
  EXPECT_TRUE(hosts[1]->wait([&] { return has_route(1, 0, "early/#", 1); }));
}

TEST_F(trio, a_qos1_copy_is_delivered_once_and_confirmed_after_the_peer_made_it_durable) {
  start();
  hosts[1]->hold_durable = true;
  auto ack = std::make_shared<core::remote_ack>();
  nodes[0]->forward(id(0, 1), message("t", 1), {{"g", "t"}}, ack);
  ASSERT_TRUE(hosts[1]->wait([&] { return hosts[1]->delivered.size() == 1; }));
  EXPECT_EQ(hosts[1]->delivered[0].msg->topic, "t");
  ASSERT_EQ(hosts[1]->delivered[0].picks.size(), 1u);
  EXPECT_EQ(hosts[1]->delivered[0].picks[0].group, "g");
  EXPECT_FALSE(ack->done());  // b has not said it is durable
  {
    std::lock_guard lock(hosts[1]->mutex);
    for (auto& f : hosts[1]->held) f();
    hosts[1]->held.clear();
  }
  EXPECT_TRUE(hosts[0]->wait([&] { return ack->done(); }));
  EXPECT_TRUE(hosts[0]->wait([&] { return nodes[0]->status().outbox == 0; }));
  EXPECT_TRUE(hosts[2]->delivered.empty());
}

TEST_F(trio, an_unacknowledged_copy_is_resent_after_a_netsplit_and_applied_once) {
  start();
  hosts[1]->hold_durable = true;  // b applies, but never confirms before the split
  nodes[0]->forward(id(0, 1), message("t", 1), {}, nullptr);
  ASSERT_TRUE(hosts[1]->wait([&] { return hosts[1]->delivered.size() == 1; }));
  net.cut("a", "b");
  ASSERT_TRUE(hosts[0]->wait([&] { return nodes[0]->status().peers_up == 1; }));
  EXPECT_EQ(nodes[0]->status().outbox, 1u);
  {
    std::lock_guard lock(hosts[1]->mutex);
    hosts[1]->hold_durable = false;
    hosts[1]->held.clear();  // the confirmation was lost with the stream
  }
  net.heal("a", "b");
  ASSERT_TRUE(all_up(2));
  EXPECT_TRUE(hosts[0]->wait([&] { return nodes[0]->status().outbox == 0; }));
  EXPECT_EQ(hosts[1]->delivered.size(), 1u);  // the resend was recognised, acknowledged, not applied again
}

TEST_F(trio, a_netsplit_takes_routes_down_after_the_failure_timeout_and_healing_brings_them_back) {
  start();
  nodes[2]->route_changed("c/only", 1);
  ASSERT_TRUE(hosts[0]->wait([&] { return has_route(0, 2, "c/only", 1); }));
  net.cut("a", "c");
  net.cut("b", "c");
  ASSERT_TRUE(hosts[0]->wait([&] { return nodes[0]->status().peers_up == 1 && nodes[2]->status().peers_up == 0; }));
  EXPECT_TRUE(has_route(0, 2, "c/only", 0));
  EXPECT_FALSE(nodes[2]->has_peers());  // c serves alone meanwhile
  nodes[2]->route_changed("c/new", 1);  // changed during the split
  net.heal("a", "c");
  net.heal("b", "c");
  ASSERT_TRUE(all_up(2));
  EXPECT_TRUE(hosts[0]->wait([&] { return has_route(0, 2, "c/only", 1) && has_route(0, 2, "c/new", 1); }));
  EXPECT_TRUE(hosts[1]->wait([&] { return has_route(1, 2, "c/new", 1); }));
}

TEST_F(trio, retained_writes_reach_every_node) {
  start();
  auto m = std::const_pointer_cast<core::message>(message("r/1", 1, "v"));
  m->retain = true;
  m->written = core::stamp{100, 1};
  nodes[0]->retained_changed(m);
  for (std::size_t i = 1; i < 3; ++i)
    EXPECT_TRUE(hosts[i]->wait([&] { return hosts[i]->retained.count("r/1") && hosts[i]->retained["r/1"]->payload == "v"; }));
}

TEST_F(trio, a_claim_gets_the_session_from_the_node_that_has_it_and_it_is_told_once_installed) {
  start();
  ports::claim_answer a;
  a.what = ports::claim_answer::kind::session;
  a.session.expiry_interval = 60;
  a.session.claimed = core::stamp{5, 5};
  a.session.subscriptions.emplace_back("s/#", core::subscription_options{1});
  auto queued = std::make_shared<core::message>();
  queued->topic = "s/1";
  queued->payload = "q";
  queued->qos = 1;
  a.session.queue.push_back({queued, 1, false, {}});
  hosts[2]->answers["dev"] = a;
  std::mutex m;
  std::optional<ports::claim_result> got;
  nodes[0]->claim("dev", core::stamp{9, 9}, true, [&](ports::claim_result r) {
    std::lock_guard lock(m);
    got = std::move(r);
  });
  ASSERT_TRUE(hosts[0]->wait([&] {
    std::lock_guard lock(m);
    return got.has_value();
  }));
  EXPECT_TRUE(got->found);
  EXPECT_FALSE(got->refused);
  EXPECT_EQ(got->from, id(0, 2));
  ASSERT_EQ(got->session.queue.size(), 1u);
  EXPECT_EQ(got->session.queue[0].msg->payload, "q");
  EXPECT_EQ(got->session.subscriptions[0].first, "s/#");
  nodes[0]->session_installed(got->from, "dev", core::stamp{9, 9});
  EXPECT_TRUE(hosts[2]->wait([&] { return hosts[2]->moves_finished.size() == 1; }));
  EXPECT_EQ(hosts[2]->moves_finished[0], std::make_pair(std::string("dev"), true));
}

namespace {
// c holds "dev" (subscribed to s/#); a claims it, announces the session's
// route and says installed. Returns once c was told.
void move_dev_from_c_to_a(trio& t) {
  ports::claim_answer a;
  a.what = ports::claim_answer::kind::session;
  a.session.expiry_interval = 60;
  a.session.claimed = core::stamp{5, 5};
  a.session.subscriptions.emplace_back("s/#", core::subscription_options{1});
  t.hosts[2]->answers["dev"] = a;
  std::atomic<bool> claimed{false};
  std::optional<ports::peer_id> from;
  t.nodes[0]->claim("dev", core::stamp{9, 9}, true, [&](ports::claim_result r) {
    from = r.from;
    claimed = true;
  });
  ASSERT_TRUE(t.hosts[0]->wait([&] { return claimed.load(); }));
  t.nodes[0]->route_changed("s/#", 1);  // the core subscribes before it says installed
  t.nodes[0]->session_installed(*from, "dev", core::stamp{9, 9});
  ASSERT_TRUE(t.hosts[2]->wait([&] { return t.hosts[2]->moves_finished.size() == 1; }));
}

core::delivery from_peer(ports::peer_id origin, std::string payload, std::uint64_t seq = 1) {
  auto m = std::make_shared<core::message>();
  m->topic = "s/1";
  m->payload = std::move(payload);
  m->qos = 1;
  m->from_peer = true;
  m->peer_slot = origin;
  m->peer_seq = seq;
  return core::delivery{m, 1, false, {}};
}
}  // namespace

TEST_F(trio, a_moved_sessions_old_node_routes_for_it_until_every_peer_has_the_new_nodes_routes) {
  start();
  // b does not hear a's announcement: it would route s/# to c alone.
  net.cut("a", "b");
  ASSERT_TRUE(hosts[2]->wait([&] { return nodes[0]->status().peers_up == 1; }));
  move_dev_from_c_to_a(*this);
  EXPECT_TRUE(hosts[2]->wait([&] { return has_route(2, 0, "s/#", 1); }));
  // c passes on what b forwards for the session; what a forwards or c's own
  // clients publish reaches a by a's own route (c holds it).
  nodes[2]->deliver_to_moved(id(2, 0), "dev", from_peer(id(2, 1), "via-b"));
  nodes[2]->deliver_to_moved(id(2, 0), "dev", from_peer(id(2, 0), "via-a"));
  auto local = from_peer(0, "local");
  std::const_pointer_cast<core::message>(local.msg)->from_peer = false;
  local.msg->local_seq = 1;  // c's core numbered it after the move finished (local_publishes() was 0)
  nodes[2]->deliver_to_moved(id(2, 0), "dev", local);
  ASSERT_TRUE(hosts[0]->wait([&] { return hosts[0]->session_deliveries.size() >= 1; }));
  {
    std::lock_guard lock(hosts[2]->mutex);
    EXPECT_TRUE(hosts[2]->handovers_done.empty()) << "b does not have a's routes yet";
  }
  net.heal("a", "b");
  ASSERT_TRUE(hosts[2]->wait([&] {
    return hosts[2]->handovers_done == std::vector<std::string>{"dev"};
  }));
  EXPECT_TRUE(has_route(1, 0, "s/#", 1)) << "c let go only once b routes to a";
  std::lock_guard lock(hosts[0]->mutex);
  ASSERT_EQ(hosts[0]->session_deliveries.size(), 1u);
  EXPECT_EQ(hosts[0]->session_deliveries[0].second.msg->payload, "via-b");
}

TEST_F(trio, what_the_old_node_routed_itself_before_it_held_the_new_nodes_routes_is_passed_on) {
  // c's core had numbered 5 local publishes when a said it holds the
  // session: those may have reached a before the session did, or still be
  // queued for the session's worker here; later ones reach it through a's
  // route.
  start();
  hosts[2]->publishes = 5;
  net.cut("a", "b");  // keeps the hand-over open: b does not hear a's routes
  ASSERT_TRUE(hosts[2]->wait([&] { return nodes[0]->status().peers_up == 1; }));
  move_dev_from_c_to_a(*this);
  auto local = [](std::string payload, std::uint64_t seq) {
    auto d = from_peer(0, std::move(payload));
    std::const_pointer_cast<core::message>(d.msg)->from_peer = false;
    d.msg->local_seq = seq;
    return d;
  };
  nodes[2]->deliver_to_moved(id(2, 0), "dev", local("late", 6));
  nodes[2]->deliver_to_moved(id(2, 0), "dev", local("early", 5));
  ASSERT_TRUE(hosts[0]->wait([&] { return hosts[0]->session_deliveries.size() >= 1; }));
  net.heal("a", "b");
  ASSERT_TRUE(hosts[2]->wait([&] { return hosts[2]->handovers_done == std::vector<std::string>{"dev"}; }));
  std::lock_guard lock(hosts[0]->mutex);
  ASSERT_EQ(hosts[0]->session_deliveries.size(), 1u);
  EXPECT_EQ(hosts[0]->session_deliveries[0].second.msg->payload, "early");
}

TEST_F(trio, what_the_new_node_forwarded_before_it_held_the_session_is_passed_on) {
  start();
  // a routed one publish to c before it held the session; c has not routed it yet.
  hosts[2]->hold_durable = true;
  nodes[0]->forward(id(0, 2), message("s/1", 1), {}, nullptr);
  ASSERT_TRUE(hosts[2]->wait([&] { return hosts[2]->delivered.size() == 1; }));
  move_dev_from_c_to_a(*this);
  nodes[2]->deliver_to_moved(id(2, 0), "dev", from_peer(id(2, 0), "early", 1));
  nodes[2]->deliver_to_moved(id(2, 0), "dev", from_peer(id(2, 0), "late", 2));  // a routed it to itself
  ASSERT_TRUE(hosts[0]->wait([&] { return hosts[0]->session_deliveries.size() >= 1; }));
  {
    std::lock_guard lock(hosts[2]->mutex);
    EXPECT_TRUE(hosts[2]->handovers_done.empty()) << "a's earlier publish is not routed here yet";
    hosts[2]->hold_durable = false;
    for (auto& f : hosts[2]->held) f();
    hosts[2]->held.clear();
  }
  ASSERT_TRUE(hosts[2]->wait([&] { return hosts[2]->handovers_done == std::vector<std::string>{"dev"}; }));
  std::lock_guard lock(hosts[0]->mutex);
  ASSERT_EQ(hosts[0]->session_deliveries.size(), 1u);
  EXPECT_EQ(hosts[0]->session_deliveries[0].second.msg->payload, "early");
}

TEST_F(trio, what_a_peer_forwarded_is_still_passed_on_after_its_wait_ended) {
  start();
  // a forwarded one publish to c before it held the session.
  hosts[2]->hold_durable = true;
  nodes[0]->forward(id(0, 2), message("s/1", 1), {}, nullptr);
  ASSERT_TRUE(hosts[2]->wait([&] { return hosts[2]->delivered.size() == 1; }));
  net.cut("a", "b");  // keeps the hand-over open: b does not hear a's routes
  ASSERT_TRUE(hosts[2]->wait([&] { return nodes[0]->status().peers_up == 1; }));
  move_dev_from_c_to_a(*this);
  ASSERT_EQ(nodes[2]->handover_waits("dev"), std::optional<std::size_t>(2));  // a's earlier publish, b
  {
    std::lock_guard lock(hosts[2]->mutex);
    hosts[2]->hold_durable = false;
    for (auto& f : hosts[2]->held) f();
    hosts[2]->held.clear();
  }
  ASSERT_TRUE(hosts[2]->wait_unlocked([&] { return nodes[2]->handover_waits("dev") == std::optional<std::size_t>(1); }));
  // c routed a's publish (durable here), but its delivery to the session
  // comes only now (it waited behind others on the session's worker).
  nodes[2]->deliver_to_moved(id(2, 0), "dev", from_peer(id(2, 0), "routed-before", 1));
  nodes[2]->deliver_to_moved(id(2, 0), "dev", from_peer(id(2, 0), "routed-after", 2));
  ASSERT_TRUE(hosts[0]->wait([&] { return hosts[0]->session_deliveries.size() >= 1; }));
  net.heal("a", "b");
  ASSERT_TRUE(hosts[2]->wait([&] { return hosts[2]->handovers_done == std::vector<std::string>{"dev"}; }));
  std::lock_guard lock(hosts[0]->mutex);
  ASSERT_EQ(hosts[0]->session_deliveries.size(), 1u);
  EXPECT_EQ(hosts[0]->session_deliveries[0].second.msg->payload, "routed-before");
}

TEST_F(trio, a_moved_sessions_hand_over_ends_at_once_when_every_peer_has_the_new_nodes_routes) {
  start();
  move_dev_from_c_to_a(*this);
  EXPECT_TRUE(hosts[2]->wait([&] { return hosts[2]->handovers_done == std::vector<std::string>{"dev"}; }, 2s));
}

TEST_F(trio, a_moved_sessions_hand_over_waits_no_longer_than_the_handover_timeout) {
  handover_timeout = 600ms;
  start();
  net.cut("a", "b");
  ASSERT_TRUE(hosts[2]->wait([&] { return nodes[0]->status().peers_up == 1; }));
  move_dev_from_c_to_a(*this);
  EXPECT_TRUE(hosts[2]->wait([&] { return hosts[2]->handovers_done == std::vector<std::string>{"dev"}; }, 5s));
}

TEST_F(trio, a_claim_waits_no_longer_than_the_claim_timeout_for_a_silent_peer) {
  failure_timeout = 5s;  // b stays "up" while it says nothing
  start();
  net.cut("a", "b");
  std::atomic<bool> done{false};
  auto started = std::chrono::steady_clock::now();
  nodes[0]->claim("x", core::stamp{1, 1}, true, [&](ports::claim_result r) {
    EXPECT_FALSE(r.found);
    done = true;
  });
  ASSERT_TRUE(hosts[0]->wait([&] { return done.load(); }, 3s));
  EXPECT_GE(std::chrono::steady_clock::now() - started, 450ms);
}

TEST_F(trio, after_a_split_the_older_copy_of_a_client_id_ends) {
  hosts.push_back(std::make_unique<flock::testing::fake_host>());
  hosts.push_back(std::make_unique<flock::testing::fake_host>());
  hosts[0]->sessions["dup"] = core::stamp{10, 1};
  hosts[1]->sessions["dup"] = core::stamp{20, 2};  // the newer connection
  names = {"a", "b"};
  for (std::size_t i = 0; i < 2; ++i)
    nodes.push_back(std::make_unique<cluster::node>(options_for(i), *hosts[i], net.make_transport(names[i])));
  for (auto& n : nodes) n->start();
  ASSERT_TRUE(all_up(1));
  EXPECT_TRUE(hosts[0]->wait([&] { return hosts[0]->ended == std::vector<std::string>{"dup"}; }));
  EXPECT_TRUE(hosts[1]->ended.empty());
}

TEST_F(trio, a_node_that_stops_says_so_and_peers_do_not_wait_for_the_failure_timeout) {
  failure_timeout = 10s;
  start();
  nodes[2]->route_changed("c/#", 1);
  ASSERT_TRUE(hosts[0]->wait([&] { return has_route(0, 2, "c/#", 1); }));
  nodes[2]->stop();
  EXPECT_TRUE(hosts[0]->wait([&] { return nodes[0]->status().peers_up == 1; }, 3s));
  EXPECT_TRUE(has_route(0, 2, "c/#", 0));
}

TEST_F(trio, a_node_from_before_and_current_nodes_understand_each_other) {
  // A rolling upgrade: b still speaks protocol 1, a and c the current one.
  protocols["b"] = cluster::protocol_first;
  start();
  auto protocol = [&](std::size_t at, const std::string& of) {
    for (const auto& p : nodes[at]->status().peers)
      if (p.name == of) return p.protocol;
    return 0u;
  };
  EXPECT_EQ(protocol(0, "b"), cluster::protocol_first);
  EXPECT_EQ(protocol(1, "a"), cluster::protocol_first);
  EXPECT_EQ(protocol(0, "c"), cluster::protocol_message_codec);
  EXPECT_EQ(protocol(2, "a"), cluster::protocol_message_codec);
  auto rich = [](std::string topic) {
    auto m = message(std::move(topic), 1);
    auto w = std::const_pointer_cast<core::message>(m);
    w->publisher = "pub";
    w->expires_at = std::chrono::steady_clock::now() + 60s;
    w->props.content_type = "text/plain";
    w->props.user_properties.push_back({"k", "v"});
    return m;
  };
  auto same = [](const core::message& m, const std::string& topic) {
    return m.topic == topic && m.publisher == "pub" && m.expires_at && m.props.content_type == "text/plain" &&
           m.props.user_properties.size() == 1;
  };
  nodes[0]->forward(id(0, 1), rich("to-old"), {{"g", "to-old"}}, nullptr);
  nodes[1]->forward(id(1, 2), rich("from-old"), {}, nullptr);
  ASSERT_TRUE(hosts[1]->wait([&] { return hosts[1]->delivered.size() == 1; }));
  ASSERT_TRUE(hosts[2]->wait([&] { return hosts[2]->delivered.size() == 1; }));
  EXPECT_TRUE(same(*hosts[1]->delivered[0].msg, "to-old"));
  ASSERT_EQ(hosts[1]->delivered[0].picks.size(), 1u);
  EXPECT_TRUE(same(*hosts[2]->delivered[0].msg, "from-old"));
  // Retained messages both ways.
  auto kept = rich("r/new");
  std::const_pointer_cast<core::message>(kept)->written = core::stamp{3, 1};
  nodes[0]->retained_changed(kept);
  EXPECT_TRUE(hosts[1]->wait([&] { return hosts[1]->retained.contains("r/new"); }));
  EXPECT_TRUE(hosts[2]->wait([&] { return hosts[2]->retained.contains("r/new"); }));
  {
    std::lock_guard lock(hosts[1]->mutex);
    EXPECT_TRUE(same(*hosts[1]->retained["r/new"], "r/new"));
  }
  // A session with a queued message moves from the old node to a new one.
  ports::claim_answer a;
  a.what = ports::claim_answer::kind::session;
  a.session.claimed = core::stamp{5, 5};
  a.session.queue.push_back({std::const_pointer_cast<core::message>(rich("queued")), 1, false, {7}});
  hosts[1]->answers["dev"] = a;
  std::optional<ports::claim_result> got;
  std::atomic<bool> claimed{false};
  nodes[0]->claim("dev", core::stamp{9, 9}, true, [&](ports::claim_result r) {
    got = std::move(r);
    claimed = true;
  });
  ASSERT_TRUE(hosts[0]->wait([&] { return claimed.load(); }));
  ASSERT_TRUE(got->found);
  ASSERT_EQ(got->session.queue.size(), 1u);
  EXPECT_TRUE(same(*got->session.queue[0].msg, "queued"));
}

TEST_F(trio, a_node_that_shuts_down_hands_its_sessions_to_the_others_first) {
  start();
  {
    std::lock_guard lock(hosts[0]->mutex);
    hosts[0]->sessions = {{"s1", core::stamp{1, 1}}, {"s2", core::stamp{2, 1}}, {"s3", core::stamp{3, 1}}};
  }
  nodes[0]->drain();
  // drain() returns once every session is confirmed elsewhere.
  std::vector<std::string> adopted;
  for (std::size_t i = 1; i < 3; ++i) {
    std::lock_guard lock(hosts[i]->mutex);
    adopted.insert(adopted.end(), hosts[i]->adopted.begin(), hosts[i]->adopted.end());
  }
  std::sort(adopted.begin(), adopted.end());
  EXPECT_EQ(adopted, (std::vector<std::string>{"s1", "s2", "s3"}));
  std::lock_guard lock(hosts[0]->mutex);
  EXPECT_EQ(hosts[0]->moves_finished.size(), 3u);
  for (const auto& [id, installed] : hosts[0]->moves_finished) EXPECT_TRUE(installed) << id;
}

TEST_F(trio, a_delivery_that_follows_a_handed_over_session_arrives_after_it) {
  start();
  {
    std::lock_guard lock(hosts[0]->mutex);
    hosts[0]->sessions = {{"s1", core::stamp{1, 1}}};
  }
  // The session's worker passes on the next delivery as soon as it handed
  // the session over: the new node must hear of the session first.
  hosts[0]->after_hand_off = [&](ports::peer_id to, const std::string& client_id) {
    nodes[0]->deliver_to_moved(to, client_id, from_peer(to, "next", 0));
  };
  nodes[0]->drain();
  auto& to = *hosts[hosts[1]->wait([&] { return !hosts[1]->adopted.empty(); }, 0ms) ? 1 : 2];
  ASSERT_TRUE(to.wait([&] { return to.arrivals.size() == 2; }));
  std::lock_guard lock(to.mutex);
  EXPECT_EQ(to.arrivals, (std::vector<std::string>{"session s1", "delivery s1"}));
}

TEST_F(trio, a_node_drains_a_session_whose_earlier_hand_over_is_still_open) {
  // Long enough for the first hand-over to be open when the drain starts;
  // the drain waits for the new one, which times out too (a-b is cut).
  handover_timeout = 3s;
  start();
  net.cut("a", "b");  // keeps c's hand-over of dev open: b does not hear a's routes
  ASSERT_TRUE(hosts[2]->wait([&] { return nodes[0]->status().peers_up == 1; }));
  move_dev_from_c_to_a(*this);
  ASSERT_EQ(nodes[2]->handover_waits("dev"), std::optional<std::size_t>(1));
  // dev came back to c, which now shuts down: the new move ends the open
  // hand-over (this once locked the drain's mutex twice and hung).
  {
    std::lock_guard lock(hosts[2]->mutex);
    hosts[2]->sessions = {{"dev", core::stamp{10, 10}}};
  }
  std::atomic<bool> drained{false};
  std::thread drain([&] {
    nodes[2]->drain();
    drained = true;
  });
  const bool done = hosts[2]->wait([&] { return drained.load(); });
  if (!done) drain.detach();  // hung: the test fails rather than waits forever
  else drain.join();
  ASSERT_TRUE(done);
  std::lock_guard lock(hosts[2]->mutex);
  ASSERT_FALSE(hosts[2]->handovers_done.empty());
  EXPECT_EQ(hosts[2]->handovers_done.front(), "dev");
}

TEST_F(trio, sessions_the_others_decline_stay_on_the_node_that_drains) {
  start();
  hosts[1]->refuse_adoption = true;
  hosts[2]->refuse_adoption = true;
  {
    std::lock_guard lock(hosts[0]->mutex);
    hosts[0]->sessions = {{"s1", core::stamp{1, 1}}};
  }
  nodes[0]->drain();
  std::lock_guard lock(hosts[0]->mutex);
  ASSERT_EQ(hosts[0]->moves_finished.size(), 1u);
  EXPECT_FALSE(hosts[0]->moves_finished[0].second);
}
