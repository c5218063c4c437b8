#pragma once
// One MQTT client connection (3.1.1 or 5.0) on an Asio io_context: the
// complete client side of every flow, driven by callbacks.
//
//   outgoing QoS 1: PUBLISH -> PUBACK
//   outgoing QoS 2: PUBLISH -> PUBREC -> PUBREL -> PUBCOMP
//   incoming QoS 1: PUBLISH -> PUBACK
//   incoming QoS 2: PUBLISH -> PUBREC, PUBREL -> PUBCOMP; a PUBLISH whose id
//                   is still awaiting its PUBREL is a resend: acknowledged
//                   again, not delivered twice (the ids survive a reconnect
//                   when the broker says the session is present)
//   keep alive:     PINGREQ when nothing was sent for half the keep alive;
//                   no PINGRESP within the keep alive closes the connection
//
// Packet ids are per connection (packet_ids.hpp); the publish window is
// min(--inflight, the broker's Receive Maximum). Anything unexpected (a
// malformed packet, an ack for an id we do not have in flight, a refused
// CONNACK or SUBACK, an unsolicited DISCONNECT) closes the connection and
// reports one line through on_closed.
//
// Threads: one client belongs to one io_context and is touched only by the
// thread running it. The owner keeps the client alive until that io_context
// has stopped. Writes are coalesced: everything queued during one handler is
// sent with one write.
#include "tools/flock-bench/asio.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "broker/codec/codec.hpp"
#include "tools/flock-bench/packet_ids.hpp"

namespace flock::bench {

using steady = std::chrono::steady_clock;

struct client_options {
  std::string client_id;
  codec::protocol_version version = codec::protocol_version::v311;
  bool clean_start = true;
  std::uint32_t session_expiry = 0;  // MQTT 5 Session Expiry Interval (sent when > 0)
  std::uint16_t keep_alive = 60;
  std::uint16_t inflight = 65535;  // our cap on outgoing QoS 1/2 in flight
  std::optional<std::string> username;
  std::optional<std::string> password;
  std::chrono::milliseconds connect_timeout{10000};
  std::optional<asio::ip::address> source;  // bind to it before connecting
};

class client;

class client_handler {
 public:
  virtual ~client_handler() = default;
  virtual void on_connected(client&) {}
  virtual void on_suback(client&, const codec::suback&) {}
  // A PUBLISH from the broker (once per message: QoS 2 resends are filtered).
  virtual void on_message(client&, const codec::publish&) {}
  // An outgoing QoS 1/2 flow ended: PUBACK or PUBCOMP, or a PUBREC carrying
  // an error reason (MQTT 5). `token` is what publish() was given.
  virtual void on_acked(client&, std::uint64_t token, steady::time_point sent, std::uint8_t reason) {}
  // Everything queued has been written to the socket.
  virtual void on_drained(client&) {}
  // The connection is gone. `error` is empty when we closed it on purpose
  // (disconnect() or abort()), else one line saying what went wrong.
  virtual void on_closed(client&, const std::string& error) {}
};

class client {
 public:
  enum class state { idle, connecting, awaiting_connack, connected, disconnecting, closed };

  client(asio::io_context& io, client_handler& handler, client_options options);
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  // TCP connect, then CONNECT. May be called again after on_closed to
  // reconnect (with possibly changed options()).
  void connect(const tcp::endpoint& broker);

  // True when a QoS `qos` publish may be sent now (connected, and for QoS
  // 1/2 a packet id and window slot are free).
  bool can_publish(std::uint8_t qos) const;
  // Queues a PUBLISH. For QoS 1/2 the caller checked can_publish().
  void publish(const std::string& topic, const std::string& payload, std::uint8_t qos, bool retain,
               std::uint64_t token);
  void subscribe(const std::vector<codec::subscription_request>& topics);
  // DISCONNECT, then wait (at most 2 s) for the broker to close, then on_closed("").
  void disconnect();
  // Close the socket now, without DISCONNECT (simulates a crash), then on_closed("").
  void abort();
  // Keep alive and time-outs; call about every 100 ms.
  void tick(steady::time_point now);

  client_options& options() { return options_; }
  const std::string& id() const { return options_.client_id; }
  state current() const { return state_; }
  bool connected() const { return state_ == state::connected; }
  bool session_present() const { return session_present_; }
  std::size_t inflight() const { return outgoing_.size(); }
  std::size_t window() const { return window_; }
  std::size_t pending_bytes() const { return out_.size() + writing_.size(); }
  std::uint32_t server_max_packet() const { return server_max_packet_; }
  // Tokens of outgoing QoS 1/2 messages still unacknowledged.
  std::vector<std::uint64_t> unacked_tokens() const;
  // Incoming QoS 2 resends that were acknowledged again and not delivered.
  std::uint64_t qos2_resends() const { return qos2_resends_; }

 private:
  struct outgoing {
    enum class stage : std::uint8_t { puback, pubrec, pubcomp, suback } at;
    std::uint64_t token;
    steady::time_point sent;
  };

  void send(const codec::packet& p);
  void schedule_flush();
  void flush();
  void wait_readable();
  void on_readable();
  void on_bytes(const std::uint8_t* data, std::size_t size);
  void handle(codec::packet& p);
  void handle_connack(const codec::connack& p);
  void handle_publish(const codec::publish& p);
  void handle_response(const codec::pub_response& p);
  void finish(const std::string& error);  // closes the socket, reports once
  void fail(const std::string& error) { finish(error.empty() ? "unknown error" : error); }
  codec::protocol_version version() const { return options_.version; }
  bool v5() const { return options_.version == codec::protocol_version::v5; }

  asio::io_context& io_;
  client_handler& handler_;
  client_options options_;
  tcp::socket socket_;
  state state_ = state::idle;
  std::uint64_t generation_ = 0;  // bumps on every (re)connect: stale completions are ignored
  std::string out_, writing_, tail_;
  bool flush_scheduled_ = false;
  bool writing_now_ = false;
  packet_id_pool ids_;
  std::unordered_map<std::uint16_t, outgoing> outgoing_;  // QoS 1/2 publishes and subscribes in flight
  std::size_t publishes_in_flight_ = 0;
  std::unordered_set<std::uint16_t> awaiting_pubrel_;    // incoming QoS 2
  std::size_t window_ = 65535;
  std::uint32_t server_max_packet_ = 268435455;
  std::uint16_t keep_alive_ = 0;
  bool session_present_ = false;
  steady::time_point deadline_{};     // connect or disconnect time-out
  steady::time_point last_sent_{};
  steady::time_point ping_sent_{};
  bool ping_outstanding_ = false;
  std::uint64_t qos2_resends_ = 0;
  codec::publish scratch_;  // reused for outgoing PUBLISHes
};

std::string reason_text(std::uint8_t reason);

}  // namespace flock::bench
