#pragma once
// The TCP acceptors for one "HOST:PORT": one per worker, bound to the same
// port with SO_REUSEPORT, so the kernel spreads new connections over the
// workers and each accepts its own. A connection is accepted, registered and
// served by one thread for life, with no hand-off between threads (which cost
// a wake-up of a second thread and a lock per connection). A plain
// `connection` serves mqtt, a `stream_connection` (TLS and/or WebSocket)
// mqtts, ws and wss.
// Owned by the server; start() and stop() run on the thread that drives the
// server (main's), each acceptor only on its worker. Lives until after the workers
// have been joined (connections keep references to its settings and handler
// factory).
#include "broker/server/asio.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "broker/core/broker_config.hpp"
#include "broker/ports/cluster.hpp"
#include "broker/server/connection_handler.hpp"
#include "broker/server/log.hpp"
#include "broker/server/tls.hpp"
#include "broker/server/worker_pool.hpp"
#include "broker/tls/certificate_files.hpp"

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
  // How often the TLS files are checked for changes (and re-read).
  std::chrono::milliseconds tls_reload_interval{10000};
};

// What every TLS/WebSocket connection of one listener shares. Owned by the
// listener, read-only once accepting starts, except `tls`: swapped when the
// certificate files change (a connection takes the context current when it
// is accepted; OpenSSL keeps that one alive for as long as it needs it).
struct stream_settings {
  listener_protocol protocol = listener_protocol::mqtt;
  std::string ws_path;
  std::atomic<std::shared_ptr<boost::asio::ssl::context>> tls;
  bool use_identity_as_username = false;
  // TLS and WebSocket handshakes must complete within this, or the socket is closed.
  std::chrono::milliseconds handshake_timeout{10000};
};
// True for 127.0.0.0/8, ::1, ::ffff:127.x and "localhost".
bool is_loopback_host(const std::string& host);

// Opens and binds `acceptor` (on an io_context) to "HOST:PORT", a host name
// resolved once; not yet listening. Returns the bound endpoint; throws
// bind_error. `reuse_port` joins the port's SO_REUSEPORT group.
tcp::endpoint bind_acceptor(tcp::acceptor& acceptor, const std::string& address, bool reuse_port = false);

// Listening TCP sockets of this network namespace on `endpoint`'s port whose
// address overlaps it (the same address, or either is the wildcard), from
// /proc/net/tcp or tcp6; nullopt if that cannot be read.
std::optional<std::size_t> count_listening_sockets(const tcp::endpoint& endpoint);

class listener {
 public:
  // Binds one acceptor per worker (throws bind_error; tls_error for bad TLS
  // files). Nothing listens before start().
  listener(worker_pool& workers, const listener_options& options, std::chrono::milliseconds handshake_timeout,
           std::function<std::unique_ptr<connection_handler>(core::connection_io&, const core::listener_settings&)>
               make_handler);

  // Listens and starts accepting on every worker. Throws bind_error if the
  // port cannot be listened on, or if a socket of another process shares it
  // (SO_REUSEPORT would otherwise split the clients between the two).
  void start();
  // Closes the acceptors, each on its worker; returns when all are closed.
  // The workers must be running.
  void stop();
  tcp::endpoint local_endpoint() const { return endpoint_; }
  // The certificate a TLS listener serves, as last loaded; nullopt for others.
  std::optional<ports::certificate_status> certificate() const;
  const core::listener_settings& settings() const { return settings_; }

 private:
  // One worker's acceptor; touched only on that worker once accepting starts.
  struct worker_acceptor {
    explicit worker_acceptor(worker& w) : owner(w), acceptor(w.io), backoff_timer(w.io) {}
    worker& owner;
    tcp::acceptor acceptor;
    asio::steady_timer backoff_timer;
    log::rate_limiter error_log;
    bool stopped = false;
  };

  void accept_next(worker_acceptor& a);
  // TLS: re-reads the files when they changed (worker 0's thread).
  void arm_tls_reload();
  void reload_tls();
  void on_accept_error(worker_acceptor& a, const boost::system::error_code& ec);
  std::string where() const;

  worker_pool& workers_;
  std::vector<std::unique_ptr<worker_acceptor>> acceptors_;
  tcp::endpoint endpoint_;
  core::listener_settings settings_;
  stream_settings stream_;
  handler_factory make_handler_;
  // TLS reloading: the files, their state when last read, what /metrics shows.
  tls_options tls_options_;
  std::chrono::milliseconds tls_reload_interval_{10000};
  std::unique_ptr<tls::file_stamps> tls_files_;
  std::unique_ptr<asio::steady_timer> tls_timer_;
  mutable std::mutex certificate_mutex_;
  ports::certificate_status certificate_;
};

}  // namespace flock::server
