// The same cluster logic over the real gRPC transport on loopback.
#include <gtest/gtest.h>

#include "cluster/grpc_transport.hpp"
#include "cluster/node.hpp"
#include "tests/unit/cluster/fake_host.hpp"

using namespace flock;
using namespace std::chrono_literals;

namespace {

cluster::options options_for(std::string name, std::vector<std::string> seeds) {
  cluster::options o;
  o.node_name = std::move(name);
  o.listen = "127.0.0.1:0";
  o.seeds = std::move(seeds);
  o.heartbeat = 50ms;
  o.failure_timeout = 1000ms;
  o.join_timeout = 2000ms;
  return o;
}

// Two nodes on loopback, b dialling a.
struct grpc_link : ::testing::Test {
  flock::testing::fake_host ha, hb;
  cluster::node a{options_for("a", {}), ha, cluster::make_grpc_transport()};
  std::unique_ptr<cluster::node> b_node;
  cluster::node& b() { return *b_node; }

  void start_both() {
    a.start();
    const std::string a_address = "127.0.0.1:" + std::to_string(a.bound_port());
    b_node = std::make_unique<cluster::node>(options_for("b", {a_address}), hb, cluster::make_grpc_transport());
    b_node->start();
    ASSERT_TRUE(ha.wait([&] { return a.status().peers_up == 1 && b().status().peers_up == 1; }));
  }
};

}  // namespace

TEST_F(grpc_link, two_nodes_replicate_routes_forward_and_acknowledge_over_loopback) {
  start_both();

  b().route_changed("sensors/+/temp", 1);
  ASSERT_TRUE(ha.wait([&] { return ha.routes.count({*a.peer_id("b"), "sensors/+/temp"}) == 1; }));

  // A batch of QoS 1 copies: delivered in order, every publisher ack confirmed.
  std::vector<core::remote_ack_ptr> acks;
  for (int i = 0; i < 200; ++i) {
    auto m = std::make_shared<core::message>();
    m->topic = "sensors/k/temp";
    m->payload = std::to_string(i);
    m->qos = 1;
    acks.push_back(std::make_shared<core::remote_ack>());
    a.forward(*a.peer_id("b"), m, {}, acks.back());
  }
  ASSERT_TRUE(hb.wait([&] { return hb.delivered.size() == 200; }));
  for (int i = 0; i < 200; ++i) EXPECT_EQ(hb.delivered[i].msg->payload, std::to_string(i));
  EXPECT_TRUE(ha.wait([&] {
    for (auto& x : acks)
      if (!x->done()) return false;
    return true;
  }));
  EXPECT_EQ(a.status().unconfirmed, 0u);

  b().stop();
  EXPECT_TRUE(ha.wait([&] { return a.status().peers_up == 0; }, 3s));
  EXPECT_EQ(ha.routes.count({*a.peer_id("b"), "sensors/+/temp"}), 0u);
  a.stop();
}

TEST(grpc_link_start, a_port_in_use_is_a_clear_start_up_error) {
  flock::testing::fake_host ha, hb;
  cluster::node a(options_for("a", {}), ha, cluster::make_grpc_transport());
  a.start();
  auto o = options_for("b", {});
  o.listen = "127.0.0.1:" + std::to_string(a.bound_port());
  cluster::node b(o, hb, cluster::make_grpc_transport());
  EXPECT_THROW(b.start(), std::runtime_error);
  a.stop();
}

TEST(grpc_link_start, a_node_finds_its_peers_through_a_dns_name) {
  flock::testing::fake_host ha, hb;
  cluster::node a(options_for("a", {}), ha, cluster::make_grpc_transport());
  a.start();
  // What a Kubernetes headless Service gives: a name resolving to the peers.
  // "localhost" resolves to 127.0.0.1 (where a listens) and maybe ::1.
  auto o = options_for("b", {});
  o.dns = "localhost:" + std::to_string(a.bound_port());
  o.dns_interval = 200ms;
  cluster::node b(o, hb, cluster::make_grpc_transport());
  b.start();
  EXPECT_TRUE(ha.wait([&] { return a.status().peers_up == 1 && b.status().peers_up == 1; }, 5s));
  b.stop();
  a.stop();
}

TEST_F(grpc_link, what_a_stopping_node_sent_last_reaches_its_peers) {
  // A stopping node's last frames (a moved session's last deliveries, say)
  // are written just before it leaves: they must not die in gRPC's buffers.
  start_both();
  constexpr int n = 500;
  for (int i = 0; i < n; ++i) {
    auto m = std::make_shared<core::message>();
    m->topic = "s/1";
    m->payload = std::string(8192, 'x') + std::to_string(i);
    m->qos = 1;
    a.deliver_to_moved(*a.peer_id("b"), "dev", core::delivery{m, 1, false, {}});
  }
  a.stop();
  EXPECT_TRUE(hb.wait([&] { return hb.session_deliveries.size() == n; }, 5s));
  {
    // Not held across b's stop: b's thread takes it (peer_down).
    std::lock_guard lock(hb.mutex);
    ASSERT_EQ(hb.session_deliveries.size(), std::size_t{n});
    EXPECT_EQ(hb.session_deliveries.back().second.msg->payload, std::string(8192, 'x') + std::to_string(n - 1));
  }
  b().stop();
}
