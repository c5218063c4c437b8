#include "broker/server/listener.hpp"

#include <boost/asio/ip/v6_only.hpp>
#include <array>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>

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

tcp::endpoint bind_acceptor(tcp::acceptor& acceptor, const std::string& address, bool reuse_port) {
  auto endpoint = resolve(acceptor.get_executor(), address);
  error_code ec;
  auto fail = [&](const char* what) {
    throw bind_error("listen " + address + ": " + what + ": " + ec.message());
  };
  acceptor.open(endpoint.protocol(), ec);
  if (ec) fail("open");
  acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (ec) fail("SO_REUSEADDR");
  if (reuse_port) {
    acceptor.set_option(asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(true), ec);
    if (ec) fail("SO_REUSEPORT");
  }
  // "[::]:1883" and "0.0.0.0:1883" may both be listed: keep the families apart.
  if (endpoint.protocol() == tcp::v6()) acceptor.set_option(asio::ip::v6_only(true), ec);
  acceptor.bind(endpoint, ec);
  if (ec) fail("bind");
  auto bound = acceptor.local_endpoint(ec);
  if (ec) fail("local_endpoint");
  return bound;
}

namespace {

// A field of /proc/net/tcp{,6} in hex ("0100007F", "1F40"); nullopt if it is not.
std::optional<std::uint32_t> parse_hex(std::string_view hex) {
  std::uint32_t v = 0;
  auto [end, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), v, 16);
  if (ec != std::errc() || end != hex.data() + hex.size()) return std::nullopt;
  return v;
}

// An address as /proc/net/tcp{,6} prints it: 32-bit words in hex, each the
// host-order value of four bytes in network order.
std::optional<asio::ip::address> parse_proc_address(std::string_view hex) {
  if (hex.size() != 8 && hex.size() != 32) return std::nullopt;
  std::array<unsigned char, 16> bytes{};
  for (std::size_t word = 0; word * 8 < hex.size(); ++word) {
    auto v = parse_hex(hex.substr(word * 8, 8));
    if (!v) return std::nullopt;
    std::memcpy(bytes.data() + word * 4, &*v, 4);
  }
  if (hex.size() == 8) return asio::ip::address_v4({bytes[0], bytes[1], bytes[2], bytes[3]});
  return asio::ip::address_v6(bytes);
}

}  // namespace

std::optional<std::size_t> count_listening_sockets(const tcp::endpoint& endpoint) {
  std::ifstream table(endpoint.address().is_v4() ? "/proc/net/tcp" : "/proc/net/tcp6");
  if (!table) return std::nullopt;
  std::string line;
  std::getline(table, line);  // header
  std::size_t count = 0;
  while (std::getline(table, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state;
    if (!(fields >> slot >> local >> remote >> state) || state != "0A") continue;  // 0A: LISTEN
    auto colon = local.find(':');
    if (colon == std::string::npos) continue;
    auto port = parse_hex(std::string_view(local).substr(colon + 1));
    auto address = parse_proc_address(std::string_view(local).substr(0, colon));
    if (!address || port != endpoint.port()) continue;
    if (*address == endpoint.address() || address->is_unspecified() || endpoint.address().is_unspecified()) ++count;
  }
  return count;
}

listener::listener(worker_pool& workers, const listener_options& options, std::chrono::milliseconds handshake_timeout,
                   std::function<std::unique_ptr<connection_handler>(core::connection_io&,
                                                                     const core::listener_settings&)>
                       make_handler)
    : workers_(workers), settings_(options.settings) {
  make_handler_ = [this, f = std::move(make_handler)](core::connection_io& io) { return f(io, settings_); };
  stream_.protocol = options.protocol;
  stream_.ws_path = options.ws_path;
  stream_.handshake_timeout = handshake_timeout;
  if (uses_tls(options.protocol)) {
    // Before binding: a bad certificate is a configuration error, not a bind failure.
    stream_.tls = make_tls_context(options.tls);
    stream_.use_identity_as_username = options.tls.use_identity_as_username;
    tls_options_ = options.tls;
    tls_reload_interval_ = options.tls_reload_interval;
    tls_files_ = std::make_unique<tls::file_stamps>(
        std::vector<std::string>{options.tls.certfile, options.tls.keyfile, options.tls.cafile});
    tls_timer_ = std::make_unique<asio::steady_timer>(workers.at(0).io);
    certificate_.not_after_unix = tls::check_key_pair(options.tls.certfile, options.tls.keyfile);
  }
  // The first acceptor binds what was asked (port 0: any free one); the
  // others join its port.
  for (std::uint32_t w = 0; w < workers.worker_count(); ++w) {
    acceptors_.push_back(std::make_unique<worker_acceptor>(workers.at(w)));
    auto address = w == 0 ? options.address : endpoint_text(endpoint_);
    endpoint_ = bind_acceptor(acceptors_.back()->acceptor, address, true);
  }
}

std::string listener::where() const {
  return std::string(to_string(stream_.protocol)) + "://" + endpoint_text(endpoint_);
}

void listener::start() {
  // Bound at construction (a port in use fails fast), listening only now:
  // until the store is loaded a TCP connect must not look like a ready node.
  for (auto& a : acceptors_) {
    error_code ec;
    a->acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) throw bind_error("listen " + endpoint_text(endpoint_) + ": listen: " + ec.message());
  }
  // Another process of this user may have joined the port's SO_REUSEPORT
  // group; the kernel would then send it a share of our clients.
  if (auto listening = count_listening_sockets(endpoint_); listening && *listening > acceptors_.size())
    throw bind_error("listen " + endpoint_text(endpoint_) + ": address in use: " +
                     std::to_string(*listening - acceptors_.size()) +
                     " other socket(s) listen on this port with SO_REUSEPORT");
  log::info("listening on ", where(), uses_websocket(stream_.protocol) ? stream_.ws_path : std::string(),
            " (anonymous clients ", settings_.allow_anonymous ? "allowed" : "refused", ")");
  for (auto& a : acceptors_) asio::post(a->owner.io, [this, ap = a.get()] { accept_next(*ap); });
  if (tls_timer_) {
    {
      std::lock_guard lock(certificate_mutex_);
      certificate_.listener = where();
    }
    asio::post(workers_.at(0).io, [this] { arm_tls_reload(); });
  }
}

void listener::arm_tls_reload() {
  tls_timer_->expires_after(tls_reload_interval_);
  tls_timer_->async_wait([this](const error_code& ec) {
    if (ec) return;  // stopped
    reload_tls();
    arm_tls_reload();
  });
}

// Connections already open keep the context they were made with; new ones
// get the new certificate. A set that cannot be used leaves the old one.
void listener::reload_tls() {
  if (!tls_files_->changed()) return;
  try {
    auto context = make_tls_context(tls_options_);
    const auto not_after = tls::check_key_pair(tls_options_.certfile, tls_options_.keyfile);
    stream_.tls.store(std::move(context));
    std::lock_guard lock(certificate_mutex_);
    certificate_.not_after_unix = not_after;
    ++certificate_.reloads_ok;
    log::info("listener ", where(), ": certificate files reloaded (", tls_options_.certfile, ")");
  } catch (const std::runtime_error& e) {  // tls_error, tls::file_error
    std::lock_guard lock(certificate_mutex_);
    ++certificate_.reloads_failed;
    log::error("listener ", where(), ": certificate files changed but cannot be used, keeping the previous ones: ",
               e.what());
  }
}

std::optional<ports::certificate_status> listener::certificate() const {
  if (!tls_timer_) return std::nullopt;
  std::lock_guard lock(certificate_mutex_);
  return certificate_;
}

void listener::stop() {
  workers_.run_on_all_and_wait([this](worker& w) {
    auto& a = *acceptors_.at(w.id);
    a.stopped = true;
    error_code ec;
    a.acceptor.close(ec);
    a.backoff_timer.cancel();
    if (w.id == 0 && tls_timer_) tls_timer_->cancel();
  });
}

void listener::accept_next(worker_acceptor& a) {
  if (a.stopped) return;
  a.acceptor.async_accept([this, &a](const error_code& ec, tcp::socket socket) {
    if (a.stopped) return;
    if (ec) return on_accept_error(a, ec);
    if (stream_.protocol == listener_protocol::mqtt)
      connection::start(a.owner, std::move(socket), make_handler_);
    else
      start_stream_connection(a.owner, std::move(socket), stream_, make_handler_);
    accept_next(a);
  });
}

void listener::on_accept_error(worker_acceptor& a, const error_code& ec) {
  if (ec == asio::error::operation_aborted) return;
  std::uint64_t suppressed = 0;
  if (a.error_log.allow(suppressed))
    log::warn("accept on ", endpoint_, ": ", ec.message(),
              suppressed ? " (" + std::to_string(suppressed) + " similar errors not logged)" : std::string());
  // The peer gave up before we accepted: nothing is wrong with us.
  if (ec == asio::error::connection_aborted || ec == asio::error::connection_reset) return accept_next(a);
  // Out of descriptors or memory: accepting again at once would spin on the
  // same error. Wait a little; connections may close meanwhile.
  a.backoff_timer.expires_after(std::chrono::milliseconds(100));
  a.backoff_timer.async_wait([this, &a](const error_code& e) {
    if (!e) accept_next(a);
  });
}

}  // namespace flock::server
