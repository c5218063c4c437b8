// Framing, dispatch, lifecycle and the session sink of a connection.
#include <algorithm>
#include <chrono>

#include "broker/protocol/machine_impl.hpp"

namespace flock::protocol {

connection_machine::connection_machine(core::broker& broker, core::connection_io& io,
                                       const core::listener_settings& listener)
    : impl_(std::make_shared<impl>(broker.front(), io, listener)) {}

connection_machine::~connection_machine() { impl_->on_closed(); }

void connection_machine::on_bytes(std::span<const std::uint8_t> data) { impl_->on_bytes(data); }
void connection_machine::on_tick(ports::time_point now) { impl_->on_tick(now); }
void connection_machine::on_drained() { impl_->on_drained(); }
void connection_machine::on_closed() { impl_->on_closed(); }
void connection_machine::on_server_shutdown() { impl_->disconnect_with(codec::rc::server_shutting_down, "server shutting down"); }

connection_machine::impl::impl(core::front_door& core, core::connection_io& io,
                               const core::listener_settings& listener)
    : core_(core), io_(io), listener_(listener), config_(core.config()) {
  opened_at_ = last_received_ = core_.now();
}

void connection_machine::impl::on_bytes(std::span<const std::uint8_t> data) {
  if (phase_ == phase::closed || data.empty()) return;
  stats().add(stats().bytes_received, data.size());
  last_received_ = core_.now();
  // Before CONNECT, anything but a CONNECT is garbage: close at once rather
  // than wait for a "packet" of attacker-chosen length.
  if (phase_ == phase::awaiting_connect && partial_.empty() && (data[0] >> 4) != 1) {
    close_quietly();
    return;
  }
  if (phase_ == phase::awaiting_session) {
    // Packets after CONNECT wait until the session is here; bounded.
    if (partial_.size() + data.size() > 2 * static_cast<std::size_t>(config_.max_packet_size) + 64) {
      close_quietly();
      return;
    }
    partial_.append(reinterpret_cast<const char*>(data.data()), data.size());
    return;
  }
  if (partial_.empty()) {
    // Common case: parse straight from the worker's read buffer, keep only a tail.
    std::size_t used = consume(data);
    if (phase_ != phase::closed && used < data.size())
      partial_.assign(reinterpret_cast<const char*>(data.data()) + used, data.size() - used);
    return;
  }
  partial_.append(reinterpret_cast<const char*>(data.data()), data.size());
  process_buffered();
}

void connection_machine::impl::process_buffered() {
  std::size_t used =
      consume(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(partial_.data()), partial_.size()));
  if (phase_ == phase::closed) {
    std::string().swap(partial_);
    return;
  }
  partial_.erase(0, used);
  if (partial_.empty()) std::string().swap(partial_);  // idle connections keep no buffer
}

std::size_t connection_machine::impl::consume(std::span<const std::uint8_t> bytes) {
  std::size_t used = 0;
  processing_ = true;
  // Stops at an incomplete packet, at close, and while a session is on its way
  // (packets after CONNECT wait for it).
  while (phase_ != phase::closed && phase_ != phase::awaiting_session && used < bytes.size()) {
    auto rest = bytes.subspan(used);
    auto f = codec::peek_frame(rest, config_.max_packet_size);
    if (f.state == codec::frame::status::incomplete) break;
    if (f.state == codec::frame::status::error) {
      disconnect_with(f.error.reason, f.error.message);
      break;
    }
    handle_packet(rest.first(f.size));
    used += f.size;
  }
  processing_ = false;
  return used;
}

void connection_machine::impl::handle_packet(std::span<const std::uint8_t> bytes) {
  auto decoded = codec::decode(bytes, version_);
  if (auto* err = std::get_if<codec::codec_error>(&decoded)) {
    if (phase_ == phase::awaiting_connect) {
      handle_connect_decode_error(bytes, *err);
    } else {
      disconnect_with(err->reason, err->message);
    }
    return;
  }
  auto& pkt = std::get<codec::packet>(decoded);
  stats().add(stats().packets_received[static_cast<std::size_t>(codec::type_of(pkt))]);
  if (phase_ == phase::awaiting_connect) {
    if (auto* c = std::get_if<codec::connect>(&pkt)) {
      handle_connect(*c);
    } else {
      close_quietly();  // the first packet must be CONNECT (MQTT 3.1.0-1)
    }
    return;
  }
  std::visit(
      [&](auto& p) {
        using T = std::decay_t<decltype(p)>;
        if constexpr (std::is_same_v<T, codec::publish>) {
          handle_publish(p);
        } else if constexpr (std::is_same_v<T, codec::pub_response>) {
          handle_ack(p);
        } else if constexpr (std::is_same_v<T, codec::subscribe>) {
          handle_subscribe(p);
        } else if constexpr (std::is_same_v<T, codec::unsubscribe>) {
          handle_unsubscribe(p);
        } else if constexpr (std::is_same_v<T, codec::pingreq>) {
          send(codec::pingresp{});
        } else if constexpr (std::is_same_v<T, codec::disconnect>) {
          handle_disconnect(p);
        } else if constexpr (std::is_same_v<T, codec::connect>) {
          disconnect_with(codec::rc::protocol_error, "second CONNECT");
        } else if constexpr (std::is_same_v<T, codec::auth>) {
          // No authentication method was agreed at CONNECT (we support none),
          // so an AUTH packet is a protocol error (MQTT 5 4.12).
          disconnect_with(codec::rc::protocol_error, "AUTH without an authentication method");
        } else {
          disconnect_with(codec::rc::protocol_error, "packet type not sent by clients");
        }
      },
      pkt);
}

void connection_machine::impl::on_tick(ports::time_point now) {
  if (phase_ == phase::closed) return;
  if (phase_ != phase::connected) {
    if (now - opened_at_ > config_.connect_timeout) close_quietly();
    return;
  }
  // MQTT 3.1.2.10: one and a half times the keep alive without a packet.
  if (keep_alive_ > 0 && now - last_received_ > std::chrono::milliseconds(keep_alive_) * 1500) {
    disconnect_with(codec::rc::keep_alive_timeout, "keep alive timeout");
  }
}

void connection_machine::impl::on_drained() {
  if (phase_ == phase::connected && session_) session_->pump(core_.now(), stats());
}

void connection_machine::impl::on_closed() {
  if (phase_ == phase::closed) return;
  phase_ = phase::closed;
  std::string().swap(partial_);
  held_.clear();  // not durable yet: never confirmed to the client
  if (counted_connected_) {
    counted_connected_ = false;
    core_.client_disconnected();
  }
  if (session_) {
    auto s = std::move(session_);
    session_.reset();
    auto will = std::move(will_);
    will_.reset();
    core_.session_detached(s, std::move(will), will_delay_);
  }
}

void connection_machine::impl::close_quietly() {
  if (phase_ == phase::closed) return;
  // A will is published because the connection did not end with DISCONNECT.
  on_closed();
  io_.close();
}

void connection_machine::impl::disconnect_with(std::uint8_t reason, const char* why) {
  if (phase_ == phase::closed) return;
  if (v5() && phase_ == phase::connected) {
    codec::disconnect d{reason, {}};
    if (why) d.props.reason_string = why;
    send(d);
  }
  close_quietly();
}

void connection_machine::impl::send(const codec::packet& p) {
  auto& buffer = out();
  std::size_t before = buffer.size();
  codec::encode(p, version_, buffer);
  stats().add(stats().packets_sent[static_cast<std::size_t>(codec::type_of(p))]);
  stats().add(stats().bytes_sent, buffer.size() - before);
  flush_out();
}

void connection_machine::impl::take_over() {
  if (phase_ == phase::closed) return;
  if (v5() && phase_ == phase::connected) send(codec::disconnect{codec::rc::session_taken_over, {}});
  close_quietly();
}

}  // namespace flock::protocol
