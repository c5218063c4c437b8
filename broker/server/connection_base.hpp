#pragma once
// What a worker's connection list holds: every accepted connection, whatever
// its transport (plain TCP `connection`, TLS/WebSocket `stream_connection`).
// The server reaches connections through it only for ticks and shutdown, so
// the virtual calls stay off the per-byte path.
//
// Thread: the owning worker's, like the connection itself. Lifetime: link()
// stores the list's reference to the connection; unlink() hands it back.
#include "broker/server/asio.hpp"

#include <memory>
#include <string>

#include "broker/core/connection_io.hpp"
#include "broker/ports/clock.hpp"
#include "broker/server/worker_pool.hpp"

namespace flock::server {

class connection_base : public core::connection_io {
 public:
  // Once a second from the worker's tick; not forwarded while closing.
  virtual void on_tick(ports::time_point now) = 0;
  // Server stop: lets the handler say goodbye, then close().
  virtual void shutdown() = 0;
  // Closes the socket now, dropping unsent bytes (shutdown deadline passed).
  virtual void abort() = 0;
  connection_base* next_in_worker() const { return next_; }

 protected:
  void link(worker& w, std::shared_ptr<connection_base> self) {
    next_ = w.connections;
    if (next_) next_->prev_ = this;
    w.connections = this;
    w.live_connections.fetch_add(1, std::memory_order_relaxed);
    self_ = std::move(self);
  }
  // Returns the list's reference: the caller keeps it until it is done with `this`.
  std::shared_ptr<connection_base> unlink(worker& w) {
    if (prev_) prev_->next_ = next_;
    else w.connections = next_;
    if (next_) next_->prev_ = prev_;
    prev_ = next_ = nullptr;
    w.live_connections.fetch_sub(1, std::memory_order_relaxed);
    return std::move(self_);
  }

 private:
  std::shared_ptr<connection_base> self_;  // the worker list's reference
  connection_base* prev_ = nullptr;
  connection_base* next_ = nullptr;
};

// "ip:port" or "[ipv6]:port", for logs.
inline std::string endpoint_text(const tcp::endpoint& e) {
  auto port = std::to_string(e.port());
  return e.address().is_v6() ? "[" + e.address().to_string() + "]:" + port : e.address().to_string() + ":" + port;
}

}  // namespace flock::server
