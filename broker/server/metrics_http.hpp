#pragma once
// The operator's HTTP endpoint (--metrics-listen HOST:PORT): GET /metrics
// (Prometheus text format), /healthz (the process serves: always 200) and
// /readyz (200 once the node accepts MQTT clients and has joined its cluster,
// 503 before and while it shuts down). HTTP/1.1 with keep-alive, on its own
// thread so that a scrape never waits behind MQTT traffic, and bounded: a
// few connections, small requests, a deadline per request.
// Owned by the server; start() before the cluster joins, stop() last.
#include "broker/server/asio.hpp"

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

namespace flock::server {

struct metrics_http_handlers {
  std::function<std::string()> metrics;  // the /metrics body; called on the endpoint's thread
  std::function<bool()> ready;
};

class metrics_http {
 public:
  // Binds `address` (throws bind_error); serves only after start().
  metrics_http(const std::string& address, metrics_http_handlers handlers);
  ~metrics_http();
  metrics_http(const metrics_http&) = delete;
  metrics_http& operator=(const metrics_http&) = delete;

  void start();
  void stop();  // idempotent; joins the thread
  tcp::endpoint local_endpoint() const { return endpoint_; }

  static constexpr std::size_t max_connections = 32;

 private:
  class session;
  void accept_next();

  asio::io_context io_{1};
  tcp::acceptor acceptor_{io_};
  asio::steady_timer retry_{io_};
  tcp::endpoint endpoint_;
  metrics_http_handlers handlers_;
  std::shared_ptr<std::atomic<std::size_t>> open_ = std::make_shared<std::atomic<std::size_t>>(0);
  std::thread thread_;
};

}  // namespace flock::server
