// The socket side of a connection (read loop, batched writes, close with
// flush, on_closed exactly once), driven through a fake handler instead of
// the MQTT machine.
#include "broker/server/server.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "broker/server/connection.hpp"
#include "broker/server/connection_handler.hpp"
#include "tests/unit/server/test_client.hpp"

using namespace flock;
using namespace flock::server;
using flock::server::testing::eventually;
using flock::server::testing::test_client;

namespace {

// What the handlers saw; written on worker threads, read by the test.
struct probe {
  std::atomic<int> created{0}, closed{0}, drained{0}, ticks{0}, calls_after_close{0};
  std::atomic<std::size_t> capacity_when_drained{0}, pending_when_drained{0};
  std::mutex m;
  std::set<ports::worker_id> workers;
};

// Echoes every byte. A '!' in the input makes it append `tail_bytes` of 'x'
// after the echo and close the connection.
class echo_handler final : public connection_handler {
 public:
  echo_handler(core::connection_io& io, probe& p, std::size_t tail_bytes) : io_(io), p_(p), tail_(tail_bytes) {}

  void on_bytes(std::span<const std::uint8_t> data) override {
    if (closed_) ++p_.calls_after_close;
    io_.out_buffer().append(reinterpret_cast<const char*>(data.data()), data.size());
    if (std::find(data.begin(), data.end(), '!') != data.end()) {
      io_.out_buffer().append(tail_, 'x');
      io_.close();  // no schedule_flush(): close() alone must write what is buffered
      return;
    }
    io_.schedule_flush();
  }
  void on_tick(ports::time_point) override {
    if (closed_) ++p_.calls_after_close;
    ++p_.ticks;
  }
  void on_drained() override {
    if (closed_) ++p_.calls_after_close;
    p_.capacity_when_drained = io_.out_buffer().capacity();
    p_.pending_when_drained = io_.pending_bytes();
    ++p_.drained;
  }
  void on_closed() override {
    if (closed_) ++p_.calls_after_close;
    closed_ = true;
    ++p_.closed;
  }

 private:
  core::connection_io& io_;
  probe& p_;
  std::size_t tail_;
  bool closed_ = false;
};

struct echo_server {
  explicit echo_server(std::uint32_t workers = 1, std::size_t tail_bytes = 0) {
    server_options o;
    o.listeners.push_back({"127.0.0.1:0", {}});
    o.workers = workers;
    o.make_handler = [this, tail_bytes](core::connection_io& io, const core::listener_settings&) {
      {
        std::lock_guard lock(p.m);
        p.workers.insert(srv->workers().current_worker());
      }
      ++p.created;
      return std::make_unique<echo_handler>(io, p, tail_bytes);
    };
    srv = std::make_unique<server::server>(std::move(o));
    srv->start();
  }
  tcp::endpoint endpoint() const { return srv->local_endpoints().at(0); }

  probe p;
  std::unique_ptr<server::server> srv;
};

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  return s;
}

}  // namespace

TEST(connection, echoes_a_large_payload_and_gives_buffers_back_when_idle) {
  echo_server s;
  test_client c(s.endpoint());
  auto payload = pattern(4 * 1024 * 1024);
  c.send(payload);
  EXPECT_EQ(c.read_exactly(payload.size()), payload);
  ASSERT_TRUE(eventually([&] { return s.p.drained > 0 && s.p.pending_when_drained == 0; }));
  EXPECT_LE(s.p.capacity_when_drained.load(), connection::idle_buffer_capacity);
}

TEST(connection, close_writes_what_is_buffered_then_ends_the_connection) {
  echo_server s(1, 1024 * 1024);
  test_client c(s.endpoint());
  c.send("abc!");
  EXPECT_EQ(c.read_exactly(4), "abc!");
  EXPECT_EQ(c.read_exactly(1024 * 1024), std::string(1024 * 1024, 'x'));
  EXPECT_TRUE(c.closed_by_peer());
  c.close();  // the server waits for our hang-up (or its close deadline)
  ASSERT_TRUE(eventually([&] { return s.p.closed == 1; }));
}

TEST(connection, peer_hang_up_reports_on_closed_exactly_once) {
  echo_server s;
  {
    test_client c(s.endpoint());
    c.send("hello");
    EXPECT_EQ(c.read_exactly(5), "hello");
  }
  ASSERT_TRUE(eventually([&] { return s.p.closed == 1; }));
  EXPECT_EQ(s.srv->live_connections(), 0u);
  s.srv->stop();
  EXPECT_EQ(s.p.closed, 1);
  EXPECT_EQ(s.p.calls_after_close, 0);
}

TEST(connection, half_closed_peer_still_receives_the_replies) {
  echo_server s;
  test_client c(s.endpoint());
  c.send("hello");
  c.shutdown_send();
  EXPECT_EQ(c.read_exactly(5), "hello");
  EXPECT_TRUE(c.closed_by_peer());
  c.close();
  ASSERT_TRUE(eventually([&] { return s.p.closed == 1; }));
}

TEST(connection, handlers_are_ticked_about_once_a_second) {
  echo_server s;
  test_client c(s.endpoint());
  ASSERT_TRUE(eventually([&] { return s.p.created == 1; }));
  EXPECT_TRUE(eventually([&] { return s.p.ticks >= 1; }, std::chrono::seconds(3)));
}

TEST(server, stop_closes_live_connections) {
  echo_server s(2);
  test_client a(s.endpoint());
  test_client b(s.endpoint());
  ASSERT_TRUE(eventually([&] { return s.srv->live_connections() == 2; }));
  // stop() blocks until the connections are gone; like real clients, ours
  // hang up when they see the server's FIN.
  std::thread stopper([&] { s.srv->stop(); });
  EXPECT_TRUE(a.closed_by_peer());
  EXPECT_TRUE(b.closed_by_peer());
  a.close();
  b.close();
  stopper.join();
  EXPECT_EQ(s.p.closed, 2);
  EXPECT_EQ(s.p.calls_after_close, 0);
}

// The kernel picks the worker by a hash of the connection's addresses
// (SO_REUSEPORT): with 64 clients, all on one of two workers has a chance
// of 2^-63.
TEST(server, spreads_connections_over_workers) {
  echo_server s(2);
  std::vector<std::unique_ptr<test_client>> clients;
  for (int i = 0; i < 64; ++i) clients.push_back(std::make_unique<test_client>(s.endpoint()));
  ASSERT_TRUE(eventually([&] { return s.p.created == 64; }));
  std::lock_guard lock(s.p.m);
  EXPECT_EQ(s.p.workers, (std::set<ports::worker_id>{0, 1}));
}
