#pragma once
// A TCP acceptor for one "HOST:PORT". Accepts on the control thread and hands
// each new socket, already bound to the chosen worker's io_context, to that
// worker, where its connection lives for life: a plain `connection` for
// mqtt, a `stream_connection` (TLS and/or WebSocket) for mqtts, ws and wss.
// Owned by the server; its acceptor is used only on the control thread; it
// lives until after the workers have been joined (connections keep references
// to its settings and handler factory).
#include "broker/server/asio.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "broker/core/broker_config.hpp"
#include "broker/server/connection_handler.hpp"
#include "broker/server/log.hpp"
#include "broker/server/tls.hpp"
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

// What a listener speaks on top of TCP.
enum class listener_protocol : std::uint8_t {
  mqtt,   // MQTT on TCP (the default, and the fastest path)
  mqtts,  // MQTT on TLS
  ws,     // MQTT on WebSocket (binary frames, subprotocol "mqtt")
  wss,    // MQTT on WebSocket on TLS
};
std::string_view to_string(listener_protocol p);
std::optional<listener_protocol> parse_listener_protocol(std::string_view name);
inline bool uses_tls(listener_protocol p) { return p == listener_protocol::mqtts || p == listener_protocol::wss; }
inline bool uses_websocket(listener_protocol p) { return p == listener_protocol::ws || p == listener_protocol::wss; }

// "[SCHEME://]HOST:PORT[/PATH]", e.g. "mqtts://0.0.0.0:8883",
// "ws://127.0.0.1:8080/mqtt", "[::1]:1883". No scheme means mqtt; a path is
// allowed only for ws and wss.
struct listen_url {
  std::optional<listener_protocol> protocol;  // unset: no scheme given
  std::string address;                        // HOST:PORT or [IPV6]:PORT
  std::optional<std::string> path;            // unset: no path given
};
std::optional<listen_url> parse_listen_url(std::string_view text, std::string& error);

struct listener_options {
  std::string address = "127.0.0.1:1883";  // HOST:PORT, [IPV6]:PORT; port 0 picks a free one
  core::listener_settings settings;
  listener_protocol protocol = listener_protocol::mqtt;
  std::string ws_path = "/mqtt";  // ws, wss: the HTTP path of the upgrade request
  tls_options tls{};              // mqtts, wss
};

// What every TLS/WebSocket connection of one listener shares. Owned by the
// listener, read-only once accepting starts.
struct stream_settings {
  listener_protocol protocol = listener_protocol::mqtt;
  std::string ws_path;
  std::shared_ptr<boost::asio::ssl::context> tls;
  bool use_identity_as_username = false;
  // TLS and WebSocket handshakes must complete within this, or the socket is closed.
  std::chrono::milliseconds handshake_timeout{10000};
};
// True for 127.0.0.0/8, ::1, ::ffff:127.x and "localhost".
bool is_loopback_host(const std::string& host);

// Opens and binds `acceptor` (on an io_context) to "HOST:PORT", a host name
// resolved once; not yet listening. Returns the bound endpoint; throws bind_error.
tcp::endpoint bind_acceptor(tcp::acceptor& acceptor, const std::string& address);

class listener {
 public:
  // Binds and listens (throws bind_error; tls_error for bad TLS files).
  // Accepting starts with start().
  listener(asio::io_context& control, const listener_options& options, std::chrono::milliseconds handshake_timeout,
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
  stream_settings stream_;
  std::function<worker&()> pick_worker_;
  handler_factory make_handler_;
  log::rate_limiter error_log_;
  bool stopped_ = false;
};

}  // namespace flock::server
