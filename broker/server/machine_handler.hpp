#pragma once
// Adapts protocol::connection_machine to connection_handler: the production
// handler behind every accepted socket. Owned by its connection, runs on the
// connection's worker, lives as long as the connection.
#include "broker/protocol/connection_machine.hpp"
#include "broker/server/connection_handler.hpp"

namespace flock::server {

class machine_handler final : public connection_handler {
 public:
  machine_handler(core::broker& broker, core::connection_io& io, const core::listener_settings& listener)
      : machine_(broker, io, listener) {}

  void on_bytes(std::span<const std::uint8_t> data) override { machine_.on_bytes(data); }
  void on_tick(ports::time_point now) override { machine_.on_tick(now); }
  void on_drained() override { machine_.on_drained(); }
  void on_closed() override { machine_.on_closed(); }
  void on_server_shutdown() override { machine_.on_server_shutdown(); }

 private:
  protocol::connection_machine machine_;
};

}  // namespace flock::server
