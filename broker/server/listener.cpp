#include "broker/server/listener.hpp"

#include <boost/asio/ip/v6_only.hpp>

#include "broker/server/connection.hpp"
#include "broker/server/stream_connection.hpp"

namespace flock::server {

using boost::system::error_code;

std::optional<host_port> parse_host_port(std::string_view text, std::string& error) {
  host_port out;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      error = "expected [IPV6]:PORT";
      return std::nullopt;
    }
    out.host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      error = "expected HOST:PORT";
      return std::nullopt;
    }
    out.host = std::string(text.substr(0, colon));
    if (out.host.find(':') != std::string::npos) {
      error = "IPv6 addresses need brackets: [ADDRESS]:PORT";
      return std::nullopt;
    }
    port_text = text.substr(colon + 1);
  }
  if (out.host.empty()) {
    error = "missing host (use 0.0.0.0 or [::] for all interfaces)";
    return std::nullopt;
  }
  unsigned long port = 0;
  if (port_text.empty() || port_text.size() > 5) {
    error = "bad port '" + std::string(port_text) + "'";
    return std::nullopt;
  }
  for (char ch : port_text) {
    if (ch < '0' || ch > '9') {
      error = "bad port '" + std::string(port_text) + "'";
      return std::nullopt;
    }
    port = port * 10 + static_cast<unsigned long>(ch - '0');
  }
  if (port > 65535) {
    error = "port " + std::string(port_text) + " out of range 0-65535";
    return std::nullopt;
  }
  out.port = static_cast<std::uint16_t>(port);
  return out;
}

std::string_view to_string(listener_protocol p) {
  switch (p) {
    case listener_protocol::mqtt: return "mqtt";
    case listener_protocol::mqtts: return "mqtts";
    case listener_protocol::ws: return "ws";
    case listener_protocol::wss: return "wss";
  }
  return "?";
}

std::optional<listener_protocol> parse_listener_protocol(std::string_view name) {
  for (auto p : {listener_protocol::mqtt, listener_protocol::mqtts, listener_protocol::ws, listener_protocol::wss})
    if (name == to_string(p)) return p;
  return std::nullopt;
}

std::optional<listen_url> parse_listen_url(std::string_view text, std::string& error) {
  listen_url out;
  if (auto scheme_end = text.find("://"); scheme_end != std::string_view::npos) {
    auto scheme = text.substr(0, scheme_end);
    out.protocol = parse_listener_protocol(scheme);
    if (!out.protocol) {
      error = "unknown protocol '" + std::string(scheme) + "' (mqtt, mqtts, ws or wss)";
      return std::nullopt;
    }
    text.remove_prefix(scheme_end + 3);
  }
  // The path starts at the first '/' (a bracketed IPv6 address has none).
  if (auto slash = text.find('/'); slash != std::string_view::npos) {
    out.path = std::string(text.substr(slash));
    text = text.substr(0, slash);
    if (!out.protocol || !uses_websocket(*out.protocol)) {
      error = "a path is only allowed for ws:// and wss:// listeners";
      return std::nullopt;
    }
  }
  if (!parse_host_port(text, error)) return std::nullopt;
  out.address = std::string(text);
  return out;
}

bool is_loopback_host(const std::string& host) {
  if (host == "localhost") return true;
  error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) return false;
  if (addr.is_v6() && addr.to_v6().is_v4_mapped())
    return asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6()).is_loopback();
  return addr.is_loopback();
}

namespace {

tcp::endpoint resolve(const asio::any_io_executor& io, const std::string& address) {
  std::string error;
  auto hp = parse_host_port(address, error);
  if (!hp) throw bind_error("listen " + address + ": " + error);
  error_code ec;
  auto addr = asio::ip::make_address(hp->host, ec);
  if (!ec) return {addr, hp->port};
  // A host name: resolved once, at start-up.
  tcp::resolver resolver(io);
  auto results = resolver.resolve(hp->host, std::to_string(hp->port), tcp::resolver::numeric_service, ec);
  if (ec || results.empty())
    throw bind_error("listen " + address + ": cannot resolve '" + hp->host + "': " + ec.message());
  return results.begin()->endpoint();
}

}  // namespace

tcp::endpoint bind_acceptor(tcp::acceptor& acceptor, const std::string& address) {
  auto endpoint = resolve(acceptor.get_executor(), address);
  error_code ec;
  auto fail = [&](const char* what) {
    throw bind_error("listen " + address + ": " + what + ": " + ec.message());
  };
  acceptor.open(endpoint.protocol(), ec);
  if (ec) fail("open");
  acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (ec) fail("SO_REUSEADDR");
  // "[::]:1883" and "0.0.0.0:1883" may both be listed: keep the families apart.
  if (endpoint.protocol() == tcp::v6()) acceptor.set_option(asio::ip::v6_only(true), ec);
  acceptor.bind(endpoint, ec);
  if (ec) fail("bind");
  auto bound = acceptor.local_endpoint(ec);
  if (ec) fail("local_endpoint");
  return bound;
}

listener::listener(asio::io_context& control, const listener_options& options,
                   std::chrono::milliseconds handshake_timeout, std::function<worker&()> pick_worker,
                   std::function<std::unique_ptr<connection_handler>(core::connection_io&,
                                                                     const core::listener_settings&)>
                       make_handler)
    : acceptor_(control), backoff_timer_(control), settings_(options.settings),
      pick_worker_(std::move(pick_worker)) {
  make_handler_ = [this, f = std::move(make_handler)](core::connection_io& io) { return f(io, settings_); };
  const std::string& address = options.address;
  stream_.protocol = options.protocol;
  stream_.ws_path = options.ws_path;
  stream_.handshake_timeout = handshake_timeout;
  if (uses_tls(options.protocol)) {
    // Before binding: a bad certificate is a configuration error, not a bind failure.
    stream_.tls = make_tls_context(options.tls);
    stream_.use_identity_as_username = options.tls.use_identity_as_username;
  }
  endpoint_ = bind_acceptor(acceptor_, address);
}

void listener::start() {
  // Bound at construction (a port in use fails fast), listening only now:
  // until the store is loaded a TCP connect must not look like a ready node.
  error_code ec;
  acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw bind_error("listen " + endpoint_.address().to_string() + ":" + std::to_string(endpoint_.port()) +
                           ": listen: " + ec.message());
  log::info("listening on ", to_string(stream_.protocol), "://", endpoint_,
            uses_websocket(stream_.protocol) ? stream_.ws_path : std::string(), " (anonymous clients ",
            settings_.allow_anonymous ? "allowed" : "refused", ")");
  accept_next();
}

void listener::stop() {
  stopped_ = true;
  error_code ec;
  acceptor_.close(ec);
  backoff_timer_.cancel();
}

void listener::accept_next() {
  if (stopped_) return;
  worker& target = pick_worker_();
  // The new socket is created on the target worker's io_context, so it is
  // registered with that worker's reactor and never migrates.
  acceptor_.async_accept(target.io, [this, &target](const error_code& ec, tcp::socket socket) {
    if (stopped_) return;
    if (ec) return on_accept_error(ec);
    if (stream_.protocol == listener_protocol::mqtt) {
      asio::post(target.io, [this, &target, socket = std::move(socket)]() mutable {
        connection::start(target, std::move(socket), make_handler_);
      });
    } else {
      asio::post(target.io, [this, &target, socket = std::move(socket)]() mutable {
        start_stream_connection(target, std::move(socket), stream_, make_handler_);
      });
    }
    accept_next();
  });
}

void listener::on_accept_error(const error_code& ec) {
  if (ec == asio::error::operation_aborted) return;
  std::uint64_t suppressed = 0;
  if (error_log_.allow(suppressed))
    log::warn("accept on ", endpoint_, ": ", ec.message(),
              suppressed ? " (" + std::to_string(suppressed) + " similar errors not logged)" : std::string());
  // The peer gave up before we accepted: nothing is wrong with us.
  if (ec == asio::error::connection_aborted || ec == asio::error::connection_reset) return accept_next();
  // Out of descriptors or memory: accepting again at once would spin on the
  // same error. Wait a little; connections may close meanwhile.
  backoff_timer_.expires_after(std::chrono::milliseconds(100));
  backoff_timer_.async_wait([this](const error_code& e) {
    if (!e) accept_next();
  });
}

}  // namespace flock::server
