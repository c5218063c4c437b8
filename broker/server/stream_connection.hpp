#pragma once
// Connections that are not plain TCP: MQTT over TLS, over WebSocket, and over
// WebSocket on TLS. They implement the same core::connection_io /
// connection_handler contract as `connection`, so the protocol machine cannot
// tell them apart. The class template lives in stream_connection.cpp, the one
// translation unit that includes Beast and Asio's SSL.
#include "broker/server/asio.hpp"

#include "broker/server/connection_handler.hpp"
#include "broker/server/listener.hpp"
#include "broker/server/worker_pool.hpp"

namespace flock::server {

// Starts the handshake(s) of a new mqtts/ws/wss connection. Must run on w's
// thread; `socket` must belong to w.io; `settings` outlive the connection.
void start_stream_connection(worker& w, tcp::socket socket, const stream_settings& settings,
                             const handler_factory& make_handler);

}  // namespace flock::server
