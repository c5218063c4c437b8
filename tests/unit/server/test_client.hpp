#pragma once
// A blocking TCP client for server tests: every read has a deadline, so a
// broken server fails the test instead of hanging it.
#include "broker/server/asio.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>

#include <boost/asio/write.hpp>
#include <chrono>
#include <functional>
#include <string>
#include <thread>

namespace flock::server::testing {

class test_client {
 public:
  explicit test_client(const tcp::endpoint& ep) : socket_(io_) {
    socket_.connect(ep);
  }

  void send(const std::string& bytes) { asio::write(socket_, asio::buffer(bytes)); }
  void shutdown_send() { socket_.shutdown(tcp::socket::shutdown_send); }
  void close() {
    boost::system::error_code ec;
    socket_.close(ec);
  }

  // Reads exactly n bytes; returns fewer on EOF, error or the deadline.
  std::string read_exactly(std::size_t n) {
    std::string out(n, '\0');
    std::size_t got = 0;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (got < n) {
      auto r = recv_until(out.data() + got, n - got, deadline);
      if (r <= 0) break;
      got += static_cast<std::size_t>(r);
    }
    out.resize(got);
    return out;
  }

  // True when the server closed the connection (EOF or reset) before the
  // deadline, with no more data in between.
  bool closed_by_peer() {
    char c;
    auto r = recv_until(&c, 1, std::chrono::steady_clock::now() + timeout);
    return r == 0 || (r < 0 && errno == ECONNRESET);
  }

  static constexpr std::chrono::seconds timeout{5};

 private:
  // One recv() that waits at most until `deadline` (poll, not SO_RCVTIMEO:
  // Asio's blocking read retries EAGAIN forever). -1 with errno = ETIMEDOUT
  // when the deadline passes.
  long recv_until(char* data, std::size_t size, std::chrono::steady_clock::time_point deadline) {
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        errno = ETIMEDOUT;
        return -1;
      }
      pollfd p{socket_.native_handle(), POLLIN, 0};
      int ready = ::poll(&p, 1, static_cast<int>(left.count()));
      if (ready < 0 && errno == EINTR) continue;
      if (ready <= 0) continue;
      long r = ::recv(socket_.native_handle(), data, size, MSG_DONTWAIT);
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      return r;
    }
  }

  asio::io_context io_;
  tcp::socket socket_;
};

// Polls `condition` until it holds or `timeout` passes.
inline bool eventually(const std::function<bool()>& condition,
                       std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

}  // namespace flock::server::testing
