#pragma once
// The state behind connection_machine, shared by its .cpp files:
// connection_machine.cpp (framing, dispatch, lifecycle, the session sink),
// connect_flow.cpp (CONNECT/CONNACK, session handover),
// publish_flow.cpp (PUBLISH and its acks), subscribe_flow.cpp.
// Runs on the connection's worker thread only.
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "broker/codec/codec.hpp"
#include "broker/codec/reason_code.hpp"
#include "broker/core/front_door.hpp"
#include "broker/core/session.hpp"
#include "broker/core/stats.hpp"
#include "broker/protocol/connection_machine.hpp"

namespace flock::protocol {

struct connection_machine::impl final : core::session_sink,
                                        core::session_requester,
                                        std::enable_shared_from_this<connection_machine::impl> {
  impl(core::front_door& core, core::connection_io& io, const core::listener_settings& listener);

  enum class phase : std::uint8_t { awaiting_connect, awaiting_session, connected, closed };

  // --- connection_machine.cpp ---
  void on_bytes(std::span<const std::uint8_t> data);
  void process_buffered();
  // Handles every complete packet at the front of `bytes`; returns the bytes used.
  std::size_t consume(std::span<const std::uint8_t> bytes);
  void handle_packet(std::span<const std::uint8_t> bytes);
  void on_tick(ports::time_point now);
  void on_drained();
  void on_closed();
  void send(const codec::packet& p);
  // Ends the connection from our side (protocol violation, keepalive timeout,
  // shutdown): after CONNECT a v5 client gets DISCONNECT with the reason code;
  // every version gets a closed connection, and the will is published.
  void disconnect_with(std::uint8_t reason, const char* why);
  void close_quietly();
  bool v5() const { return version_ == codec::protocol_version::v5; }
  core::worker_stats& stats() { return core_.my_stats(); }
  // Topic access (ACL). Without an authorizer everything is allowed and
  // nothing is checked.
  bool may_publish(std::string_view topic) const { return core_.may_publish(client_id_, username_, topic); }
  bool may_read(std::string_view filter_or_topic) const {
    return core_.may_subscribe(client_id_, username_, filter_or_topic);
  }

  // session_sink
  std::uint16_t send_window() const override;
  bool writable() const override;
  send_result send_publish(const core::delivery& d, std::uint16_t packet_id, bool dup) override;
  void send_pubrel(std::uint16_t packet_id) override;
  void take_over() override;
  void hold_output_until(std::uint64_t ticket) override;
  // Also until every peer that got a forwarded copy confirmed it.
  void hold_output_until(std::uint64_t ticket, const core::remote_ack_ptr& ack);

  // --- output held until the store has what it confirms (output_gate.cpp) ---
  // An answer that confirms a write (PUBACK, PUBREC, PUBCOMP, SUBACK,
  // CONNACK, a QoS 2 PUBLISH) must not reach the client before the write is
  // durable. Everything sent after such a write waits with it, in order; the
  // segments go to the transport as their store tickets become durable.
  struct held_output {
    std::uint64_t ticket;
    core::remote_ack_ptr ack;  // null: nothing asked of peers
    std::string bytes;
    bool ready(const ports::store* store) const {
      return (ticket == 0 || store->is_durable(ticket)) && (!ack || ack->done());
    }
  };
  std::string& out() { return held_.empty() ? io_.out_buffer() : held_.back().bytes; }
  void flush_out() {
    if (held_.empty()) io_.schedule_flush();
  }
  void release_held();
  std::size_t held_bytes() const;

  // --- connect_flow.cpp ---
  void handle_connect(codec::connect& c);
  void reject_connect(std::uint8_t v5_reason);
  void on_session_ready(std::shared_ptr<core::session> s, bool session_present) override;
  void on_session_refused() override;
  void handle_connect_decode_error(std::span<const std::uint8_t> bytes, const codec::codec_error& e);

  // --- publish_flow.cpp ---
  void handle_publish(codec::publish& p);
  // An application message from this client (PUBLISH or will): expiry becomes
  // a deadline, and per-delivery properties are stripped.
  std::shared_ptr<core::message> make_message(std::string&& topic, std::string&& payload, std::uint8_t qos, bool retain,
                                 codec::properties&& props);
  void handle_ack(const codec::pub_response& r);
  void handle_disconnect(const codec::disconnect& d);

  // --- subscribe_flow.cpp ---
  void handle_subscribe(const codec::subscribe& s);
  void handle_unsubscribe(const codec::unsubscribe& u);

  core::front_door& core_;
  core::connection_io& io_;
  core::listener_settings listener_;
  const core::broker_config& config_;
  phase phase_ = phase::awaiting_connect;
  bool processing_ = false;  // inside on_bytes' packet loop
  codec::protocol_version version_ = codec::protocol_version::v311;
  std::string partial_;  // an incomplete packet (or bytes held while awaiting the session)
  ports::time_point opened_at_;
  ports::time_point last_received_;

  // From CONNECT.
  std::string client_id_;
  // From CONNECT, or the certificate's CN (use_identity_as_username); for ACL checks.
  std::optional<std::string> username_;
  bool clean_start_ = true;
  std::uint16_t keep_alive_ = 0;  // effective, seconds
  std::uint32_t session_expiry_ = 0;
  std::optional<core::message_ptr> will_;
  std::uint32_t will_delay_ = 0;
  std::uint16_t client_receive_maximum_ = 65535;
  std::uint32_t client_maximum_packet_size_ = 0;  // 0: no limit
  std::uint16_t client_topic_alias_maximum_ = 0;
  bool problem_information_ = true;
  bool counted_connected_ = false;
  // Sent when the session is ready. A pointer: a CONNACK with its properties
  // is ~500 bytes that an established connection would carry for life.
  std::unique_ptr<codec::connack> pending_connack_;

  std::shared_ptr<core::session> session_;
  std::unordered_map<std::uint16_t, std::string> inbound_aliases_;
  std::unordered_map<std::string, std::uint16_t> outbound_aliases_;
  std::vector<held_output> held_;
};

}  // namespace flock::protocol
