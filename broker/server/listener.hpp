#pragma once
// A TCP acceptor for one "HOST:PORT". Accepts on the control thread and hands
// each new socket, already bound to the chosen worker's io_context, to that
// worker, where its connection lives for life.
// Owned by the server; its acceptor is used only on the control thread; it
// lives until after the workers have been joined (connections keep references
// to its settings and handler factory).
#include "broker/server/asio.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "broker/core/broker_config.hpp"
#include "broker/server/connection_handler.hpp"
#include "broker/server/log.hpp"
#include "broker/server/worker_pool.hpp"

namespace flock::server {

// Thrown at start-up when a listener cannot be opened (port in use, bad or
// unresolvable address, permission denied). main prints it and exits 1.
class bind_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct host_port {
  std::string host;  // without brackets for IPv6
  std::uint16_t port = 0;
};

// Parses "HOST:PORT", "[IPV6]:PORT". Returns nullopt and sets `error`.
std::optional<host_port> parse_host_port(std::string_view text, std::string& error);
// True for 127.0.0.0/8, ::1, ::ffff:127.x and "localhost".
bool is_loopback_host(const std::string& host);

class listener {
 public:
  // Binds and listens (throws bind_error). Accepting starts with start().
  listener(asio::io_context& control, const std::string& address, core::listener_settings settings,
           std::function<worker&()> pick_worker,
           std::function<std::unique_ptr<connection_handler>(core::connection_io&, const core::listener_settings&)>
               make_handler);

  void start();  // control thread
  void stop();   // control thread
  tcp::endpoint local_endpoint() const { return endpoint_; }
  const core::listener_settings& settings() const { return settings_; }

 private:
  void accept_next();
  void on_accept_error(const boost::system::error_code& ec);

  tcp::acceptor acceptor_;
  asio::steady_timer backoff_timer_;
  tcp::endpoint endpoint_;
  core::listener_settings settings_;
  std::function<worker&()> pick_worker_;
  handler_factory make_handler_;
  log::rate_limiter error_log_;
  bool stopped_ = false;
};

}  // namespace flock::server
