#include "broker/server/server.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>

#include "tests/unit/server/test_client.hpp"

using namespace flock;
using namespace flock::server;
using flock::server::testing::eventually;
using flock::server::testing::test_client;
using ::testing::HasSubstr;

namespace {

server_options on(const std::string& address) {
  server_options o;
  o.listeners.push_back({address, {}});
  o.workers = 1;
  return o;
}

std::string start_error(const std::string& address) {
  try {
    server::server s(on(address));
  } catch (const bind_error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(server, port_in_use_is_a_clear_start_up_error) {
  asio::io_context io;
  tcp::acceptor taken(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  auto address = "127.0.0.1:" + std::to_string(taken.local_endpoint().port());
  auto message = start_error(address);
  EXPECT_THAT(message, HasSubstr("listen " + address + ": bind: "));
  EXPECT_THAT(message, HasSubstr("in use"));
}

// The listener binds at construction and listens in start(), so another
// process with SO_REUSEADDR can bind the port in between and listen first
// (tests picking "free" ports do). start() must fail with a clear error and
// leave a server that can be destroyed, not one that hangs in stop().
TEST(server, a_port_taken_before_start_is_a_clear_error_not_a_hang) {
  server::server s(on("127.0.0.1:0"));
  auto endpoint = s.local_endpoints()[0];
  asio::io_context io;
  tcp::acceptor thief(io);
  thief.open(tcp::v4());
  thief.set_option(asio::socket_base::reuse_address(true));
  thief.bind(endpoint);
  thief.listen();
  std::string message = "(no error)";
  try {
    s.start();
  } catch (const bind_error& e) {
    message = e.what();
  }
  EXPECT_THAT(message, HasSubstr(": listen: "));
  EXPECT_THAT(message, HasSubstr("in use"));
}

// Every worker listens on the port (SO_REUSEPORT) and the kernel spreads
// the clients: a worker that did not accept would leave its share of them
// without a CONNACK.
TEST(server, every_worker_accepts_its_share_of_clients) {
  server_options o = on("127.0.0.1:0");
  o.workers = 2;
  server::server s(o);
  s.start();
  std::vector<std::unique_ptr<test_client>> clients;
  for (int i = 0; i < 32; ++i) {
    clients.push_back(std::make_unique<test_client>(s.local_endpoints()[0]));
    std::string id = "c" + std::to_string(100 + i);  // 4 bytes
    clients.back()->send(std::string("\x10\x10\x00\x04MQTT\x04\x02\x00\x3c\x00\x04", 14) + id);
  }
  for (auto& c : clients) EXPECT_EQ(c->read_exactly(4), std::string("\x20\x02\x00\x00", 4));
  s.stop();
}

// Sockets of one user may share a port with SO_REUSEPORT, and the kernel
// would split the clients between two brokers: the second one must refuse
// to start instead, and the first keep all its clients.
TEST(server, a_second_server_on_the_same_port_refuses_to_start) {
  server::server first(on("127.0.0.1:0"));
  first.start();
  auto endpoint = first.local_endpoints()[0];
  std::string message = "(no error)";
  try {
    server::server second(on("127.0.0.1:" + std::to_string(endpoint.port())));
    second.start();
  } catch (const bind_error& e) {
    message = e.what();
  }
  EXPECT_THAT(message, HasSubstr("address in use: 1 other socket(s) listen on this port"));
  for (int i = 0; i < 8; ++i) {
    test_client c(endpoint);
    c.send(std::string("\x10\x0d\x00\x04MQTT\x04\x02\x00\x3c\x00\x01t", 15));
    EXPECT_EQ(c.read_exactly(4), std::string("\x20\x02\x00\x00", 4));
  }
  first.stop();
}

// The same check reads /proc/net/tcp6 for IPv6 (another address format).
TEST(server, a_second_server_on_the_same_ipv6_port_refuses_to_start) {
  {
    asio::io_context io;
    tcp::acceptor probe(io);
    boost::system::error_code ec;
    probe.open(tcp::v6(), ec);
    if (!ec) probe.bind(tcp::endpoint(asio::ip::make_address("::1"), 0), ec);
    if (ec) GTEST_SKIP() << "no IPv6 loopback on this host";
  }
  server::server first(on("[::1]:0"));
  first.start();
  auto port = std::to_string(first.local_endpoints()[0].port());
  std::string message = "(no error)";
  try {
    server::server second(on("[::1]:" + port));
    second.start();
  } catch (const bind_error& e) {
    message = e.what();
  }
  EXPECT_THAT(message, HasSubstr("listen [::1]:" + port + ": address in use: 1 other socket(s)"));
  first.stop();
}

TEST(server, bad_addresses_are_start_up_errors) {
  EXPECT_THAT(start_error("1883"), HasSubstr("listen 1883: expected HOST:PORT"));
  // TEST-NET-1: a valid address that is not ours.
  EXPECT_THAT(start_error("192.0.2.1:0"), HasSubstr("listen 192.0.2.1:0: bind: "));
}

TEST(server, ipv4_and_ipv6_listeners_coexist_on_one_port) {
  server_options o = on("127.0.0.1:0");
  server::server first(o);
  auto port = first.local_endpoints()[0].port();
  boost::system::error_code ec;
  auto v6 = asio::ip::make_address("::1", ec);
  {
    asio::io_context io;
    tcp::acceptor probe(io);
    probe.open(tcp::v6(), ec);
    if (ec) GTEST_SKIP() << "no IPv6 on this host";
  }
  server::server second(on("[::1]:" + std::to_string(port)));
  EXPECT_EQ(second.local_endpoints()[0].address(), v6);
}

TEST(server, answers_an_mqtt_connect_with_connack) {
  server::server s(on("127.0.0.1:0"));
  s.start();
  test_client c(s.local_endpoints()[0]);
  // CONNECT, MQTT 3.1.1, clean session, keep alive 60, client id "t".
  c.send(std::string("\x10\x0d\x00\x04MQTT\x04\x02\x00\x3c\x00\x01t", 15));
  EXPECT_EQ(c.read_exactly(4), std::string("\x20\x02\x00\x00", 4));
  c.close();
  s.stop();
}

TEST(worker_pool, post_runs_on_the_target_worker) {
  worker_pool pool(3);
  EXPECT_EQ(pool.worker_count(), 3u);
  EXPECT_EQ(pool.current_worker(), 0u);  // not a worker thread
  pool.start();
  std::mutex m;
  std::set<std::pair<ports::worker_id, ports::worker_id>> seen;
  std::atomic<int> done{0};
  for (ports::worker_id w = 0; w < 3; ++w)
    pool.post(w, [&, w] {
      std::lock_guard lock(m);
      seen.insert({w, pool.current_worker()});
      ++done;
    });
  ASSERT_TRUE(eventually([&] { return done == 3; }));
  EXPECT_EQ(seen, (std::set<std::pair<ports::worker_id, ports::worker_id>>{{0, 0}, {1, 1}, {2, 2}}));
  pool.stop();
  pool.join();
}

TEST(worker_pool, zero_means_one_worker_per_core) {
  worker_pool pool(0);
  EXPECT_EQ(pool.worker_count(), std::max(1u, std::thread::hardware_concurrency()));
}
