#pragma once
// What a connection feeds with bytes and events. In the broker this is the
// MQTT protocol machine (machine_handler); transport tests use small fakes,
// so the socket code can be tested without any MQTT.
// Owned by its connection; every call is made on the connection's worker.
#include <cstdint>
#include <functional>
#include <memory>
#include <span>

#include "broker/core/connection_io.hpp"
#include "broker/ports/clock.hpp"

namespace flock::server {

class connection_handler {
 public:
  virtual ~connection_handler() = default;
  virtual void on_bytes(std::span<const std::uint8_t> data) = 0;
  virtual void on_tick(ports::time_point now) = 0;
  // Everything buffered has been written.
  virtual void on_drained() = 0;
  // The socket is gone; called exactly once, and nothing is called after it.
  virtual void on_closed() = 0;
  // The server is stopping; the connection is closed right after.
  virtual void on_server_shutdown() {}
};

// Builds the handler for a new connection; `io` is that connection.
using handler_factory = std::function<std::unique_ptr<connection_handler>(core::connection_io& io)>;

}  // namespace flock::server
