// Who may join: the cluster secret at the hello, and a peer table that a
// flood of names cannot overflow (refused and counted, never a crash), whose
// departed entries are forgotten so their slots serve new nodes.
#include <gtest/gtest.h>

#include "cluster/cluster_secret.hpp"
#include "cluster/memory_transport.hpp"
#include "cluster/node.hpp"
#include "tests/unit/cluster/fake_host.hpp"

using namespace flock;
using namespace std::chrono_literals;

namespace {

constexpr auto secret_refusals = static_cast<std::size_t>(ports::peer_refusal::secret);
constexpr auto limit_refusals = static_cast<std::size_t>(ports::peer_refusal::peer_limit);
constexpr auto malformed_refusals = static_cast<std::size_t>(ports::peer_refusal::malformed);

cluster::options options_for(std::string name, std::vector<std::string> seeds, std::string secret = {}) {
  cluster::options o;
  o.node_name = name;
  o.listen = name;
  o.seeds = std::move(seeds);
  o.heartbeat = 20ms;
  o.failure_timeout = 300ms;  // never-reachable peers are forgotten after 3 s
  o.join_timeout = 0ms;
  o.secret = std::move(secret);
  return o;
}

// Opens streams to a node the way a hostile process would: a hello under a
// name of its choosing (and whatever proof it likes), or no hello at all.
struct caller final : cluster::outbound_events {
  void on_response(wire::Batch&&) override {}
  void on_written() override {}
  void on_closed() override { closed = true; }
  std::atomic<bool> closed{false};
};

std::shared_ptr<caller> hello_from(cluster::transport& t, const std::string& to, const std::string& name,
                                   const std::string& proof = {}) {
  auto events = std::make_shared<caller>();
  auto link = t.dial(to, events);
  wire::Batch b;
  auto* h = b.add_frames()->mutable_hello();
  h->set_protocol(1);
  h->mutable_from()->set_name(name);
  h->mutable_from()->set_address(name + ":7000");  // nobody there: never reachable
  h->mutable_from()->set_incarnation(1);
  h->set_proof(proof);
  link->write(std::move(b));
  return events;
}

std::uint64_t refused(cluster::node& n, std::size_t why) { return n.status().refused[why]; }

}  // namespace

TEST(peer_admission, nodes_with_the_same_secret_join) {
  cluster::memory_network net;
  flock::testing::fake_host ha, hb;
  cluster::node a(options_for("a", {}, "sixteen-chars-or-more"), ha, net.make_transport("a"));
  cluster::node b(options_for("b", {"a"}, "sixteen-chars-or-more"), hb, net.make_transport("b"));
  a.start();
  b.start();
  EXPECT_TRUE(ha.wait([&] { return a.status().peers_up == 1 && b.status().peers_up == 1; }));
  EXPECT_EQ(refused(a, secret_refusals) + refused(b, secret_refusals), 0u);
  b.stop();
  a.stop();
}

TEST(peer_admission, a_node_with_another_secret_is_refused_and_counted_and_learns_nothing) {
  cluster::memory_network net;
  flock::testing::fake_host ha, hb, hc;
  cluster::node a(options_for("a", {}, "the-right-secret-123"), ha, net.make_transport("a"));
  cluster::node c(options_for("c", {"a"}, "the-right-secret-123"), hc, net.make_transport("c"));
  a.start();
  c.start();
  ASSERT_TRUE(ha.wait([&] { return a.status().peers_up == 1; }));
  a.route_changed("secret/#", 1);
  cluster::node rogue(options_for("rogue", {"a"}, "a-wrong-secret-4567"), hb, net.make_transport("rogue"));
  rogue.start();
  EXPECT_TRUE(ha.wait([&] { return refused(a, secret_refusals) >= 1; }));
  EXPECT_FALSE(a.peer_id("rogue").has_value()) << "a refused hello makes no peer slot";
  EXPECT_EQ(rogue.status().peers_known, 0u) << "the rogue learned no member";
  EXPECT_EQ(hb.routes.size(), 0u) << "no route reached the rogue";
  EXPECT_EQ(a.status().peers_up, 1u) << "the cluster goes on";
  rogue.stop();
  c.stop();
  a.stop();
}

TEST(peer_admission, a_reply_without_the_secret_is_refused_so_a_squatter_gets_nothing) {
  cluster::memory_network net;
  flock::testing::fake_host ha, hs;
  // A process at a seed's address that checks nothing and proves nothing.
  cluster::node squatter(options_for("squatter", {}), hs, net.make_transport("squatter"));
  squatter.start();
  cluster::node a(options_for("a", {"squatter"}, "the-right-secret-123"), ha, net.make_transport("a"));
  a.route_changed("private/#", 1);
  a.start();
  EXPECT_TRUE(ha.wait([&] { return refused(a, secret_refusals) >= 1; }));
  EXPECT_EQ(a.status().peers_known, 0u) << "a learned nothing from the squatter's reply";
  EXPECT_EQ(a.status().peers_up, 0u);
  EXPECT_EQ(hs.routes.size(), 0u) << "the squatter got no route";
  a.stop();
  squatter.stop();
}

TEST(peer_admission, a_node_without_a_secret_is_refused_by_a_node_with_one) {
  cluster::memory_network net;
  flock::testing::fake_host ha;
  cluster::node a(options_for("a", {}, "the-right-secret-123"), ha, net.make_transport("a"));
  a.start();
  auto t = net.make_transport("x");
  auto s = hello_from(*t, "a", "x");  // no proof
  EXPECT_TRUE(ha.wait([&] { return s->closed.load() && refused(a, secret_refusals) == 1; }));
  // A proof made for another name does not pass either.
  auto replayed = hello_from(*t, "a", "y",
                             cluster::hello_proof("the-right-secret-123", cluster::hello_direction::hello, "x", 1));
  EXPECT_TRUE(ha.wait([&] { return replayed->closed.load() && refused(a, secret_refusals) == 2; }));
  EXPECT_EQ(a.status().peers_known, 0u);
  t->shutdown();
  a.stop();
}

TEST(peer_admission, a_stream_that_does_not_start_with_a_hello_is_refused_as_malformed) {
  cluster::memory_network net;
  flock::testing::fake_host ha;
  cluster::node a(options_for("a", {}), ha, net.make_transport("a"));
  a.start();
  auto t = net.make_transport("x");
  auto events = std::make_shared<caller>();
  auto link = t->dial("a", events);
  wire::Batch b;
  b.add_frames()->mutable_heartbeat()->set_route_seq(7);
  link->write(std::move(b));
  EXPECT_TRUE(ha.wait([&] { return events->closed.load() && refused(a, malformed_refusals) == 1; }));
  t->shutdown();
  a.stop();
}

TEST(peer_admission, hundreds_of_names_are_refused_past_the_limit_then_forgotten_and_a_real_node_joins) {
  cluster::memory_network net;
  flock::testing::fake_host ha, hb;
  cluster::node a(options_for("a", {}), ha, net.make_transport("a"));
  a.start();
  auto t = net.make_transport("flood");
  constexpr std::size_t joins = 400;
  std::vector<std::shared_ptr<caller>> streams;
  for (std::size_t i = 0; i < joins; ++i) streams.push_back(hello_from(*t, "a", "ghost-" + std::to_string(i)));
  // Every hello is handled: a slot for the first max_peers, a refusal for the rest.
  ASSERT_TRUE(ha.wait([&] {
    auto s = a.status();
    return s.peers_known == cluster::node::max_peers && s.refused[limit_refusals] == joins - cluster::node::max_peers;
  }, 10s)) << "known " << a.status().peers_known << ", refused " << refused(a, limit_refusals);
  t->shutdown();  // the ghosts are gone, and were never reachable
  // Forgotten after ten failure timeouts; then a real node gets a slot.
  ASSERT_TRUE(ha.wait([&] { return a.status().peers_known == 0; }, 10s)) << a.status().peers_known << " still known";
  cluster::node b(options_for("b", {"a"}), hb, net.make_transport("b"));
  b.start();
  EXPECT_TRUE(ha.wait([&] { return a.status().peers_up == 1 && b.status().peers_up == 1; }));
  b.route_changed("after/flood", 1);
  EXPECT_TRUE(ha.wait([&] { return ha.routes.count({*a.peer_id("b"), "after/flood"}) == 1; }));
  b.stop();
  a.stop();
}

TEST(peer_admission, a_node_that_left_with_nothing_queued_for_it_is_forgotten_soon) {
  cluster::memory_network net;
  flock::testing::fake_host ha, hb;
  cluster::node a(options_for("a", {}), ha, net.make_transport("a"));
  a.start();
  {
    cluster::node b(options_for("b", {"a"}), hb, net.make_transport("b"));
    b.start();
    // Both ways up: a node stopped before its own stream is up has nobody to say Leave to
    // (it then counts as vanished, kept for forget_after).
    ASSERT_TRUE(ha.wait([&] { return a.status().peers_up == 1 && b.status().peers_up == 1; }));
    b.stop();  // scale-down: it says Leave
  }
  ASSERT_TRUE(ha.wait([&] { return a.status().peers_up == 0; }));
  EXPECT_EQ(a.status().peers_known, 1u) << "remembered for a while: a restart comes back under the same slot";
  EXPECT_TRUE(ha.wait([&] { return a.status().peers_known == 0; }, 10s)) << "forgotten after ten failure timeouts";
  a.stop();
}

TEST(peer_admission, a_node_that_vanished_with_copies_queued_for_it_is_kept_for_forget_after) {
  cluster::memory_network net;
  flock::testing::fake_host ha, hb;
  auto oa = options_for("a", {});
  oa.forget_after = 60s;
  cluster::node a(oa, ha, net.make_transport("a"));
  a.start();
  cluster::node b(options_for("b", {"a"}), hb, net.make_transport("b"));
  b.start();
  ASSERT_TRUE(ha.wait([&] { return a.status().peers_up == 1; }));
  net.cut("a", "b");  // gone without a word
  ASSERT_TRUE(ha.wait([&] { return a.status().peers_up == 0; }));
  auto m = std::make_shared<core::message>();
  m->topic = "t";
  m->qos = 1;
  a.forward(*a.peer_id("b"), m, {}, std::make_shared<core::remote_ack>());  // waits in the outbox
  const auto until = std::chrono::steady_clock::now() + 4s;  // past ten failure timeouts
  ha.wait([&] { return std::chrono::steady_clock::now() >= until; }, 5s);
  EXPECT_EQ(a.status().peers_known, 1u);
  EXPECT_EQ(a.status().outbox, 1u);
  b.stop();
  a.stop();
}
