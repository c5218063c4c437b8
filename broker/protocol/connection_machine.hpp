#pragma once
// One MQTT connection's protocol state: framing, CONNECT handshake, QoS flows,
// keepalive, topic aliases, flow control. Sans-I/O: bytes and ticks come in,
// encoded packets go out through connection_io. Never throws.
// Lives on its connection's worker thread, from accept to close.
#include <cstdint>
#include <memory>
#include <span>

#include "broker/core/broker_config.hpp"
#include "broker/core/connection_io.hpp"
#include "broker/ports/clock.hpp"

namespace flock::core {
class broker;
}

namespace flock::protocol {

class connection_machine {
 public:
  connection_machine(core::broker& broker, core::connection_io& io, const core::listener_settings& listener);
  ~connection_machine();
  connection_machine(const connection_machine&) = delete;
  connection_machine& operator=(const connection_machine&) = delete;

  // Bytes read from the socket (any split). May call io.close().
  void on_bytes(std::span<const std::uint8_t> data);
  // Called about once a second: CONNECT timeout, keepalive.
  void on_tick(ports::time_point now);
  // The transport wrote everything it had buffered: resume sending queued messages.
  void on_drained();
  // The socket is gone (EOF, error, or after our own close()). Publishes the
  // will when the spec says so and detaches the session. Idempotent.
  void on_closed();
  // The server is stopping: MQTT 5 clients hear DISCONNECT 0x8B first.
  void on_server_shutdown();

 private:
  struct impl;
  // Shared so that tasks posted by other workers (session handover) can hold
  // a weak reference that outlives nothing.
  std::shared_ptr<impl> impl_;
};

}  // namespace flock::protocol
