#include "broker/server/metrics_http.hpp"

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <chrono>

#include "broker/server/listener.hpp"
#include "broker/server/log.hpp"

namespace flock::server {

namespace beast = boost::beast;
namespace http = beast::http;

namespace {
constexpr auto request_deadline = std::chrono::seconds(10);
constexpr std::uint32_t max_header_bytes = 8 * 1024;
constexpr std::uint64_t max_body_bytes = 1024;
}  // namespace

// One HTTP connection: read a request, answer, repeat while keep-alive.
class metrics_http::session : public std::enable_shared_from_this<session> {
 public:
  session(tcp::socket socket, const metrics_http_handlers& handlers,
          std::shared_ptr<std::atomic<std::size_t>> open)
      : stream_(std::move(socket)), handlers_(handlers), open_(std::move(open)) {}
  ~session() { open_->fetch_sub(1); }

  void read_next() {
    parser_.emplace();
    parser_->header_limit(max_header_bytes);
    parser_->body_limit(max_body_bytes);
    stream_.expires_after(request_deadline);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

 private:
  void on_read(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::eof ||
        ec == asio::error::connection_reset)
      return close();
    if (ec) {
      // Malformed or oversized: answer 400 and close (never a crash, never a hang).
      return reply(http::status::bad_request, "bad request: " + ec.message() + "\n", "text/plain", false, 11);
    }
    const auto& req = parser_->get();
    bool keep_alive = req.keep_alive();
    if (req.method() != http::verb::get && req.method() != http::verb::head)
      return reply(http::status::method_not_allowed, "only GET and HEAD\n", "text/plain", keep_alive, req.version());
    std::string_view target = req.target();
    target = target.substr(0, target.find('?'));
    if (target == "/metrics") {
      std::string body;
      try {
        body = handlers_.metrics();
      } catch (const std::exception& e) {
        log::warn("metrics: ", e.what());
        return reply(http::status::internal_server_error, "metrics failed\n", "text/plain", false, req.version());
      }
      return reply(http::status::ok, std::move(body), "text/plain; version=0.0.4; charset=utf-8", keep_alive,
                   req.version());
    }
    if (target == "/healthz") return reply(http::status::ok, "ok\n", "text/plain", keep_alive, req.version());
    if (target == "/readyz") {
      bool ready = handlers_.ready();
      return reply(ready ? http::status::ok : http::status::service_unavailable, ready ? "ready\n" : "not ready\n",
                   "text/plain", keep_alive, req.version());
    }
    reply(http::status::not_found, "not found; try /metrics, /healthz or /readyz\n", "text/plain", keep_alive,
          req.version());
  }

  void reply(http::status status, std::string body, const char* type, bool keep_alive, unsigned version) {
    bool head = parser_ && parser_->is_header_done() && parser_->get().method() == http::verb::head;
    response_.emplace(status, version);
    response_->set(http::field::server, "flockd");
    response_->set(http::field::content_type, type);
    response_->keep_alive(keep_alive);
    response_->body() = std::move(body);
    response_->prepare_payload();
    if (head) response_->body().clear();  // Content-Length stays that of the GET
    http::async_write(stream_, *response_, [self = shared_from_this(), keep_alive](beast::error_code ec, std::size_t) {
      if (ec || !keep_alive) return self->close();
      self->read_next();
    });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_{max_header_bytes + max_body_bytes};
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> response_;
  const metrics_http_handlers& handlers_;
  std::shared_ptr<std::atomic<std::size_t>> open_;
};

metrics_http::metrics_http(const std::string& address, metrics_http_handlers handlers)
    : handlers_(std::move(handlers)) {
  endpoint_ = bind_acceptor(acceptor_, address);
}

metrics_http::~metrics_http() { stop(); }

void metrics_http::start() {
  boost::system::error_code ec;
  acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw bind_error("metrics listen: " + ec.message());
  log::info("metrics on http://", endpoint_, "/metrics (also /healthz, /readyz)");
  accept_next();
  thread_ = std::thread([this] { io_.run(); });
}

void metrics_http::stop() {
  if (!thread_.joinable()) return;
  io_.stop();
  thread_.join();
}

void metrics_http::accept_next() {
  acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (ec) {
      // Out of file descriptors, most likely: try again shortly, not in a loop.
      retry_.expires_after(std::chrono::milliseconds(100));
      retry_.async_wait([this](boost::system::error_code e) {
        if (!e) accept_next();
      });
      return;
    }
    {
      if (open_->fetch_add(1) >= max_connections) {
        // A scrape storm must not take file descriptors from MQTT clients.
        open_->fetch_sub(1);
        socket.close(ec);
      } else {
        std::make_shared<session>(std::move(socket), handlers_, open_)->read_next();
      }
    }
    accept_next();
  });
}

}  // namespace flock::server
