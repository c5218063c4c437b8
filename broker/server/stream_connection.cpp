// TLS, WebSocket and WebSocket-on-TLS connections (see stream_connection.hpp).
#include "broker/server/stream_connection.hpp"

#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>

#include <openssl/x509.h>

#include "broker/server/connection.hpp"
#include "broker/server/connection_base.hpp"
#include "broker/server/log.hpp"

namespace flock::server {
namespace {

namespace ssl = asio::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using boost::system::error_code;

using tls_stream = ssl::stream<tcp::socket>;
using ws_stream = websocket::stream<tcp::socket>;
using wss_stream = websocket::stream<tls_stream>;

template <class S>
constexpr bool is_websocket = std::is_same_v<S, ws_stream> || std::is_same_v<S, wss_stream>;
template <class S>
constexpr bool is_tls = std::is_same_v<S, tls_stream> || std::is_same_v<S, wss_stream>;

// The subject CN of the verified peer certificate, if any.
std::optional<std::string> peer_common_name(SSL* ssl) {
  X509* cert = SSL_get_peer_certificate(ssl);
  if (!cert) return std::nullopt;
  std::optional<std::string> out;
  X509_NAME* subject = X509_get_subject_name(cert);
  int index = subject ? X509_NAME_get_index_by_NID(subject, NID_commonName, -1) : -1;
  if (index >= 0) {
    ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index));
    unsigned char* utf8 = nullptr;
    int n = ASN1_STRING_to_UTF8(&utf8, data);
    if (n > 0) out = std::string(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(n));
    OPENSSL_free(utf8);
  }
  X509_free(cert);
  if (out && out->empty()) out.reset();
  return out;
}

// Whether a Sec-WebSocket-Protocol list ("mqtt, mqttv3.1") offers `name`.
bool offers_subprotocol(std::string_view list, std::string_view name) {
  while (!list.empty()) {
    auto comma = list.find(',');
    auto item = list.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item == name) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

// One mqtts/ws/wss connection. Same life cycle as `connection` (handshake,
// read loop, batched writes, polite close bounded by close_timeout), but
// reads through the TLS/WebSocket layers with an asynchronous read into a
// buffer of its own: a TLS record or WebSocket frame can be half-received,
// and only the stream object can keep that state.
//
// Thread: its worker's, for life. Lifetime: kept alive by pending operations
// and by the worker list until finish().
//
// Memory: read_buffer_size for reads, Asio's SSL stream adds two 17 KiB
// record buffers, OpenSSL releases its own when idle (SSL_MODE_RELEASE_BUFFERS);
// Beast's WebSocket stream holds ~2 KiB. Handshake state (HTTP request and
// parser) is freed as soon as the upgrade is done.
template <class Stream>
class stream_connection final : public connection_base,
                                public std::enable_shared_from_this<stream_connection<Stream>> {
  using std::enable_shared_from_this<stream_connection<Stream>>::shared_from_this;

 public:
  static constexpr std::size_t read_buffer_size = 8 * 1024;

  stream_connection(worker& w, tcp::socket socket, const stream_settings& settings, const handler_factory& make)
      : worker_(w), settings_(settings), make_handler_(make), stream_(make_stream(std::move(socket), settings)),
        timer_(w.io) {}

  void start() {
    error_code ec;
    auto& socket = lowest();
    socket.set_option(tcp::no_delay(true), ec);
    peer_ = socket.remote_endpoint(ec);
    link(worker_, shared_from_this());
    log::debug(to_string(settings_.protocol), " connection from ", remote_address(), " on worker ", worker_.id);
    // A client that opens TCP and never completes the handshake is closed.
    timer_.expires_after(settings_.handshake_timeout);
    timer_.async_wait([self = shared_from_this()](const error_code& ec) {
      if (ec || self->closed_ || self->handler_) return;
      log::debug("connection ", self->remote_address(), ": handshake not completed within ",
                 self->settings_.handshake_timeout.count(), " ms");
      self->finish();
    });
    if constexpr (is_tls<Stream>) {
      tls().async_handshake(ssl::stream_base::server, [self = shared_from_this()](const error_code& ec) {
        if (self->closed_) return;
        if (ec) {
          log::debug("connection ", self->remote_address(), ": TLS handshake failed: ", ec.message());
          return self->finish();
        }
        self->after_tls();
      });
    } else {
      after_tls();
    }
  }

  // connection_base / core::connection_io
  void on_tick(ports::time_point now) override {
    if (handler_ && !closing_ && !closed_) handler_->on_tick(now);
  }
  void shutdown() override {
    if (handler_ && !closing_ && !closed_) handler_->on_server_shutdown();
    close();
  }
  void abort() override { finish(); }
  std::string& out_buffer() override { return out_; }
  std::size_t pending_bytes() const override { return out_.size() + writing_.size(); }
  std::string remote_address() const override { return endpoint_text(peer_); }
  std::optional<std::string> tls_identity() const override { return identity_; }

  void schedule_flush() override {
    if (closed_ || flush_posted_ || write_in_flight_) return;
    flush_posted_ = true;
    asio::post(worker_.io, [self = shared_from_this()] {
      self->flush_posted_ = false;
      self->flush();
    });
  }

  void close() override {
    if (closing_ || closed_) return;
    closing_ = true;
    auto self = shared_from_this();
    if (!handler_) {
      // Still handshaking: there is nobody to say goodbye for.
      asio::post(worker_.io, [self] { self->finish(); });
      return;
    }
    timer_.expires_after(connection::close_timeout);
    timer_.async_wait([self](const error_code& ec) {
      if (ec || self->closed_) return;
      log::debug("connection ", self->remote_address(), ": close deadline passed, dropping ",
                 self->pending_bytes(), " unsent bytes");
      self->finish();
    });
    asio::post(worker_.io, [self] {
      if (self->closed_ || self->write_in_flight_) return;  // on_written continues the close
      if (!self->out_.empty()) return self->flush();
      self->say_goodbye();
    });
  }

 private:
  static Stream make_stream(tcp::socket socket, const stream_settings& settings) {
    if constexpr (is_tls<Stream>) return Stream(std::move(socket), *settings.tls.load());
    else return Stream(std::move(socket));
  }
  tcp::socket& lowest() { return beast::get_lowest_layer(stream_); }
  tls_stream& tls() {
    if constexpr (is_websocket<Stream>) return stream_.next_layer();
    else return stream_;
  }

  // --- handshakes ----------------------------------------------------------

  void after_tls() {
    if constexpr (is_tls<Stream>) {
      if (settings_.use_identity_as_username) {
        identity_ = peer_common_name(tls().native_handle());
        if (!identity_) {
          log::info("connection ", remote_address(), ": client certificate has no common name, closing");
          return finish();
        }
      }
    }
    if constexpr (is_websocket<Stream>) read_upgrade_request();
    else on_ready();
  }

  // Upgrade state, needed only until the WebSocket handshake is done.
  struct upgrade_state {
    beast::flat_buffer buffer{8 * 1024};
    http::request_parser<http::empty_body> parser;
    http::response<http::string_body> refusal;
  };

  void read_upgrade_request() {
    upgrade_ = std::make_unique<upgrade_state>();
    upgrade_->parser.header_limit(8 * 1024);
    http::async_read(stream_.next_layer(), upgrade_->buffer, upgrade_->parser,
                     [self = shared_from_this()](const error_code& ec, std::size_t) {
                       if (self->closed_) return;
                       if (ec) {
                         log::debug("connection ", self->remote_address(), ": bad HTTP upgrade: ", ec.message());
                         return self->finish();
                       }
                       self->on_upgrade_request();
                     });
  }

  void on_upgrade_request() {
    auto& req = upgrade_->parser.get();
    std::string_view target(req.target().data(), req.target().size());
    target = target.substr(0, target.find('?'));
    if (!websocket::is_upgrade(req)) return refuse_upgrade(http::status::bad_request, "expected a WebSocket upgrade\n");
    if (target != settings_.ws_path) return refuse_upgrade(http::status::not_found, "no MQTT endpoint here\n");
    auto offered = req[http::field::sec_websocket_protocol];
    std::string_view offered_view(offered.data(), offered.size());
    std::string chosen = offers_subprotocol(offered_view, "mqtt")        ? "mqtt"
                         : offers_subprotocol(offered_view, "mqttv3.1") ? "mqttv3.1"
                                                                         : "";
    stream_.set_option(websocket::stream_base::decorator([chosen](websocket::response_type& res) {
      if (!chosen.empty()) res.set(http::field::sec_websocket_protocol, chosen);
      res.set(http::field::server, "flock");
    }));
    // MQTT enforces its own packet size limit; a WebSocket message may hold
    // many packets, and read_some never buffers a whole message.
    stream_.read_message_max(0);
    stream_.binary(true);
    stream_.async_accept(req, [self = shared_from_this()](const error_code& ec) {
      if (self->closed_) return;
      if (ec) {
        log::debug("connection ", self->remote_address(), ": WebSocket handshake failed: ", ec.message());
        return self->finish();
      }
      self->upgrade_.reset();
      self->on_ready();
    });
  }

  void refuse_upgrade(http::status status, const char* body) {
    auto& res = upgrade_->refusal;
    res.version(upgrade_->parser.get().version());
    res.result(status);
    res.set(http::field::server, "flock");
    res.set(http::field::content_type, "text/plain");
    res.keep_alive(false);
    res.body() = body;
    res.prepare_payload();
    log::debug("connection ", remote_address(), ": refused HTTP request for '", upgrade_->parser.get().target(),
               "': ", static_cast<unsigned>(status));
    http::async_write(stream_.next_layer(), res, [self = shared_from_this()](const error_code&, std::size_t) {
      self->finish();
    });
  }

  void on_ready() {
    timer_.cancel();
    if (closing_) return;
    handler_ = make_handler_(*this);
    read_next();
  }

  // --- reading ---------------------------------------------------------------

  void read_next() {
    if (!read_buffer_) read_buffer_ = std::make_unique<std::uint8_t[]>(read_buffer_size);
    stream_.async_read_some(asio::buffer(read_buffer_.get(), read_buffer_size),
                            [self = shared_from_this()](const error_code& ec, std::size_t n) { self->on_read(ec, n); });
  }

  void on_read(const error_code& ec, std::size_t n) {
    if (closed_) return;
    if (ec) {
      // While closing, the goodbye (close_notify / close frame) or the close
      // deadline ends the connection; the peer leaving is expected.
      if (closing_) return;
      peer_eof_ = true;
      log::debug("connection ", remote_address(), ": read: ", ec.message());
      return close();  // a half-closed peer may still read what is queued
    }
    // While closing, bytes are read only to be discarded.
    if (!closing_) handler_->on_bytes({read_buffer_.get(), n});
    if (closed_) return;
    if (!closing_ && pending_bytes() > worker_.pause_reading_above) {
      read_paused_ = true;  // on_written resumes once the output has drained
      return;
    }
    read_next();
  }

  // --- writing ---------------------------------------------------------------

  void flush() {
    if (closed_ || write_in_flight_ || out_.empty()) return;
    writing_.swap(out_);
    write_in_flight_ = true;
    auto done = [self = shared_from_this()](const error_code& ec, std::size_t) { self->on_written(ec); };
    // WebSocket: everything that accumulated this turn goes out as one
    // binary message (Beast fragments it into frames).
    if constexpr (is_websocket<Stream>) stream_.async_write(asio::buffer(writing_), std::move(done));
    else asio::async_write(stream_, asio::buffer(writing_), std::move(done));
  }

  void on_written(const error_code& ec) {
    write_in_flight_ = false;
    if (closed_) return;
    if (ec) return finish();
    writing_.clear();
    if (!out_.empty()) return flush();
    if (writing_.capacity() > connection::idle_buffer_capacity) std::string().swap(writing_);
    if (out_.capacity() > connection::idle_buffer_capacity) std::string().swap(out_);
    if (closing_) return say_goodbye();
    handler_->on_drained();
    if (read_paused_ && !closed_ && !closing_) {
      read_paused_ = false;
      read_next();
    }
  }

  // --- closing ---------------------------------------------------------------

  // Everything is written: end the TLS session / WebSocket politely, then
  // close the socket. Bounded by the close timer.
  void say_goodbye() {
    if (closed_ || goodbye_started_) return;
    goodbye_started_ = true;
    if (peer_eof_) return finish();
    auto done = [self = shared_from_this()](const error_code&) { self->finish(); };
    if constexpr (is_websocket<Stream>) stream_.async_close(websocket::close_code::normal, std::move(done));
    else stream_.async_shutdown(std::move(done));
  }

  void finish() {
    if (closed_) return;
    closed_ = true;
    timer_.cancel();
    error_code ec;
    lowest().close(ec);  // pending operations complete with operation_aborted and see closed_
    auto keep_alive = unlink(worker_);
    // upgrade_ stays: an aborted http::async_read still completes into its
    // buffer. It goes with the connection, after the last handler ran.
    log::debug("connection ", remote_address(), " closed");
    if (handler_) handler_->on_closed();
  }

  worker& worker_;
  const stream_settings& settings_;
  const handler_factory& make_handler_;
  Stream stream_;
  asio::steady_timer timer_;  // handshake deadline, then close deadline
  tcp::endpoint peer_;
  std::unique_ptr<connection_handler> handler_;  // created once the handshakes are done
  std::optional<std::string> identity_;
  std::unique_ptr<upgrade_state> upgrade_;
  std::unique_ptr<std::uint8_t[]> read_buffer_;
  std::string out_;
  std::string writing_;
  bool flush_posted_ = false;
  bool write_in_flight_ = false;
  bool closing_ = false;
  bool peer_eof_ = false;
  bool goodbye_started_ = false;
  bool closed_ = false;
  bool read_paused_ = false;
};

template <class Stream>
void start_as(worker& w, tcp::socket socket, const stream_settings& settings, const handler_factory& make) {
  std::make_shared<stream_connection<Stream>>(w, std::move(socket), settings, make)->start();
}

}  // namespace

void start_stream_connection(worker& w, tcp::socket socket, const stream_settings& settings,
                             const handler_factory& make_handler) {
  switch (settings.protocol) {
    case listener_protocol::mqtts: return start_as<tls_stream>(w, std::move(socket), settings, make_handler);
    case listener_protocol::ws: return start_as<ws_stream>(w, std::move(socket), settings, make_handler);
    case listener_protocol::wss: return start_as<wss_stream>(w, std::move(socket), settings, make_handler);
    case listener_protocol::mqtt: break;
  }
  log::error("start_stream_connection: plain mqtt is not a stream protocol");
}

}  // namespace flock::server
