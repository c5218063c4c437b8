#include "tools/flock-bench/client.hpp"

#include <boost/asio/connect.hpp>
#include <cstdio>
#include <netinet/in.h>

#include "broker/codec/reason_code.hpp"

namespace flock::bench {

namespace {

constexpr std::uint32_t max_incoming_packet = 268435455;
constexpr std::chrono::milliseconds disconnect_timeout{2000};
constexpr std::size_t read_chunk = 64 * 1024;
// Output capacity kept after a write; more is given back (idle connections).
constexpr std::size_t idle_capacity = 4096;
// IP_BIND_ADDRESS_NO_PORT (Linux 4.2): bind() fixes the address, connect() the port.
using bind_address_no_port = boost::asio::detail::socket_option::boolean<IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT>;

std::string hex(std::uint8_t v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02X", v);
  return buf;
}

const char* packet_name(const codec::packet& p) {
  static const char* names[] = {"CONNECT", "CONNACK",  "PUBLISH",     "PUBACK/PUBREC/PUBREL/PUBCOMP",
                                "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK",
                                "PINGREQ", "PINGRESP", "DISCONNECT",  "AUTH"};
  return names[p.index()];
}

}  // namespace

std::string reason_text(std::uint8_t reason) {
  namespace rc = codec::rc;
  switch (reason) {
    case rc::unspecified_error: return hex(reason) + " unspecified error";
    case rc::malformed_packet: return hex(reason) + " malformed packet";
    case rc::protocol_error: return hex(reason) + " protocol error";
    case rc::implementation_specific_error: return hex(reason) + " implementation specific error";
    case rc::not_authorized: return hex(reason) + " not authorized";
    case rc::bad_user_name_or_password: return hex(reason) + " bad user name or password";
    case rc::server_unavailable: return hex(reason) + " server unavailable";
    case rc::server_busy: return hex(reason) + " server busy";
    case rc::quota_exceeded: return hex(reason) + " quota exceeded";
    case rc::session_taken_over: return hex(reason) + " session taken over";
    case rc::keep_alive_timeout: return hex(reason) + " keep alive timeout";
    case rc::receive_maximum_exceeded: return hex(reason) + " receive maximum exceeded";
    case rc::packet_too_large: return hex(reason) + " packet too large";
    case rc::server_shutting_down: return hex(reason) + " server shutting down";
    case rc::qos_not_supported: return hex(reason) + " QoS not supported";
    case rc::topic_name_invalid: return hex(reason) + " topic name invalid";
    case rc::packet_identifier_in_use: return hex(reason) + " packet identifier in use";
    default: return hex(reason);
  }
}

client::client(asio::io_context& io, client_handler& handler, client_options options)
    : io_(io), handler_(handler), options_(std::move(options)), socket_(io) {}

void client::connect(const tcp::endpoint& broker) {
  boost::system::error_code ec;
  if (socket_.is_open()) socket_.close(ec);
  ++generation_;
  state_ = state::connecting;
  out_.clear();
  writing_.clear();
  tail_.clear();
  flush_scheduled_ = writing_now_ = false;
  ping_outstanding_ = false;
  session_present_ = false;
  // Our in-flight publishes do not survive a reconnect: flock-bench only
  // reconnects subscribers, whose outgoing state is empty.
  outgoing_.clear();
  ids_.clear();
  publishes_in_flight_ = 0;
  deadline_ = steady::now() + options_.connect_timeout;
  auto gen = generation_;
  if (options_.source) {
    socket_.open(broker.protocol(), ec);
    // The port is picked at connect(), where it only has to be unique for the
    // whole 4-tuple: bind() alone would search the ephemeral range for a port
    // free on this address, which slows every connect as the range fills.
    if (!ec) socket_.set_option(bind_address_no_port(true), ec);
    if (!ec) socket_.bind(tcp::endpoint(*options_.source, 0), ec);
    if (ec) return fail("cannot bind to " + options_.source->to_string() + ": " + ec.message());
  }
  socket_.async_connect(broker, [this, gen](const boost::system::error_code& ec) {
    if (gen != generation_ || state_ != state::connecting) return;
    if (ec) return fail("cannot connect: " + ec.message());
    boost::system::error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
    socket_.non_blocking(true, ignored);
    state_ = state::awaiting_connack;
    codec::connect c;
    c.version = options_.version;
    c.clean_start = options_.clean_start;
    c.keep_alive = options_.keep_alive;
    c.client_id = options_.client_id;
    c.username = options_.username;
    c.password = options_.password;
    if (v5() && options_.session_expiry > 0) c.props.session_expiry_interval = options_.session_expiry;
    send(c);
    wait_readable();
  });
}

bool client::can_publish(std::uint8_t qos) const {
  if (state_ != state::connected) return false;
  return qos == 0 || (publishes_in_flight_ < window_ && ids_.size() < 65535);
}

void client::publish(const std::string& topic, const std::string& payload, std::uint8_t qos, bool retain,
                     std::uint64_t token) {
  if (state_ != state::connected) return;
  scratch_.qos = qos;
  scratch_.retain = retain;
  scratch_.dup = false;
  scratch_.topic.assign(topic);
  scratch_.payload.assign(payload);
  scratch_.packet_id = 0;
  if (qos > 0) {
    auto id = ids_.acquire();
    if (!id) return fail("no free packet identifier");
    scratch_.packet_id = *id;
    auto now = steady::now();
    outgoing_[*id] = outgoing{qos == 1 ? outgoing::stage::puback : outgoing::stage::pubrec, token, now};
    ++publishes_in_flight_;
  }
  codec::encode_publish(scratch_, version(), out_);
  last_sent_ = steady::now();
  schedule_flush();
}

void client::subscribe(const std::vector<codec::subscription_request>& topics) {
  if (state_ != state::connected) return;
  auto id = ids_.acquire();
  if (!id) return fail("no free packet identifier");
  outgoing_[*id] = outgoing{outgoing::stage::suback, 0, steady::now()};
  codec::subscribe s;
  s.packet_id = *id;
  s.topics = topics;
  send(s);
}

void client::disconnect() {
  if (state_ == state::closed || state_ == state::idle) return;
  if (state_ != state::connected) return finish("");
  send(codec::disconnect{});
  state_ = state::disconnecting;
  deadline_ = steady::now() + disconnect_timeout;
}

void client::abort() {
  if (state_ == state::closed || state_ == state::idle) return;
  finish("");
}

void client::tick(steady::time_point now) {
  switch (state_) {
    case state::connecting:
    case state::awaiting_connack:
      if (now >= deadline_) fail("no CONNACK within " + std::to_string(options_.connect_timeout.count() / 1000) + " s");
      break;
    case state::disconnecting:
      if (now >= deadline_) finish("");  // the broker did not hang up; we do
      break;
    case state::connected:
      if (keep_alive_ == 0) break;
      if (ping_outstanding_ && now - ping_sent_ >= std::chrono::seconds(keep_alive_)) {
        fail("no PINGRESP within the keep alive (" + std::to_string(keep_alive_) + " s)");
      } else if (!ping_outstanding_ && now - last_sent_ >= std::chrono::milliseconds(keep_alive_ * 500)) {
        ping_outstanding_ = true;
        ping_sent_ = now;
        send(codec::pingreq{});
      }
      break;
    default:
      break;
  }
}

std::vector<std::uint64_t> client::unacked_tokens() const {
  std::vector<std::uint64_t> tokens;
  for (const auto& [id, o] : outgoing_)
    if (o.at != outgoing::stage::suback) tokens.push_back(o.token);
  return tokens;
}

void client::send(const codec::packet& p) {
  codec::encode(p, version(), out_);
  last_sent_ = steady::now();
  schedule_flush();
}

void client::schedule_flush() {
  if (flush_scheduled_ || writing_now_) return;
  flush_scheduled_ = true;
  auto gen = generation_;
  asio::post(io_, [this, gen] {
    if (gen != generation_) return;
    flush_scheduled_ = false;
    flush();
  });
}

void client::flush() {
  if (writing_now_ || out_.empty() || state_ == state::closed || state_ == state::connecting) return;
  writing_now_ = true;
  writing_.swap(out_);
  auto gen = generation_;
  asio::async_write(socket_, asio::buffer(writing_), [this, gen](const boost::system::error_code& ec, std::size_t) {
    if (gen != generation_ || state_ == state::closed) return;
    writing_now_ = false;
    if (ec) return fail("write failed: " + ec.message());
    writing_.clear();
    if (writing_.capacity() > idle_capacity && out_.empty()) std::string().swap(writing_);
    if (!out_.empty()) return flush();
    if (state_ == state::disconnecting) {
      boost::system::error_code ignored;
      socket_.shutdown(tcp::socket::shutdown_send, ignored);
      return;
    }
    handler_.on_drained(*this);
  });
}

void client::wait_readable() {
  auto gen = generation_;
  socket_.async_wait(tcp::socket::wait_read, [this, gen](const boost::system::error_code& ec) {
    if (gen != generation_ || state_ == state::closed) return;
    if (ec) return fail("read failed: " + ec.message());
    on_readable();
  });
}

void client::on_readable() {
  static thread_local std::vector<std::uint8_t> buffer(read_chunk);
  auto gen = generation_;
  for (int i = 0; i < 4; ++i) {  // a few reads per wake-up, then let other connections run
    boost::system::error_code ec;
    std::size_t n = socket_.read_some(asio::buffer(buffer), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) break;
    if (ec == asio::error::eof) {
      if (state_ == state::disconnecting) return finish("");
      return fail(state_ == state::awaiting_connack ? "connection closed by the broker before CONNACK"
                                                    : "connection closed by the broker");
    }
    if (ec) return fail("read failed: " + ec.message());
    on_bytes(buffer.data(), n);
    if (gen != generation_ || state_ == state::closed) return;
    if (n < buffer.size()) break;
  }
  wait_readable();
}

void client::on_bytes(const std::uint8_t* data, std::size_t size) {
  auto gen = generation_;
  std::span<const std::uint8_t> in(data, size);
  bool from_tail = !tail_.empty();
  if (from_tail) {
    tail_.append(reinterpret_cast<const char*>(data), size);
    in = {reinterpret_cast<const std::uint8_t*>(tail_.data()), tail_.size()};
  }
  std::size_t used = 0;
  while (used < in.size()) {
    auto f = codec::peek_frame(in.subspan(used), max_incoming_packet);
    if (f.state == codec::frame::status::incomplete) break;
    if (f.state == codec::frame::status::error) return fail(std::string("bad packet from the broker: ") + f.error.message);
    auto decoded = codec::decode(in.subspan(used, f.size), version());
    used += f.size;
    if (auto* e = std::get_if<codec::codec_error>(&decoded))
      return fail(std::string("bad packet from the broker: ") + e->message);
    handle(std::get<codec::packet>(decoded));
    if (gen != generation_ || state_ == state::closed) return;  // tail_ may be gone
  }
  if (from_tail) {
    tail_.erase(0, used);
  } else if (used < in.size()) {
    tail_.assign(reinterpret_cast<const char*>(in.data() + used), in.size() - used);
  }
  if (tail_.empty() && tail_.capacity() > idle_capacity) std::string().swap(tail_);
}

void client::handle(codec::packet& p) {
  if (state_ == state::awaiting_connack) {
    if (auto* c = std::get_if<codec::connack>(&p)) return handle_connack(*c);
    return fail(std::string("expected CONNACK, got ") + packet_name(p));
  }
  if (state_ == state::disconnecting) return;  // we said goodbye; ignore the rest
  if (auto* pub = std::get_if<codec::publish>(&p)) return handle_publish(*pub);
  if (auto* r = std::get_if<codec::pub_response>(&p)) return handle_response(*r);
  if (auto* s = std::get_if<codec::suback>(&p)) {
    auto it = outgoing_.find(s->packet_id);
    if (it == outgoing_.end() || it->second.at != outgoing::stage::suback)
      return fail("SUBACK for unknown packet id " + std::to_string(s->packet_id));
    outgoing_.erase(it);
    ids_.release(s->packet_id);
    for (auto code : s->reason_codes)
      if (code >= 0x80) return fail("subscription refused: " + reason_text(code));
    return handler_.on_suback(*this, *s);
  }
  if (std::holds_alternative<codec::pingresp>(p)) {
    ping_outstanding_ = false;
    return;
  }
  if (auto* d = std::get_if<codec::disconnect>(&p)) {
    std::string why = "broker sent DISCONNECT " + reason_text(d->reason_code);
    if (d->props.reason_string) why += " (" + *d->props.reason_string + ")";
    return fail(why);
  }
  return fail(std::string("unexpected ") + packet_name(p) + " from the broker");
}

void client::handle_connack(const codec::connack& c) {
  if (c.reason_code != 0) {
    std::string why = "connection refused: ";
    if (v5()) {
      why += reason_text(c.reason_code);
      if (c.props.reason_string) why += " (" + *c.props.reason_string + ")";
    } else {
      static const char* v3[] = {"", "unacceptable protocol version", "identifier rejected", "server unavailable",
                                 "bad user name or password", "not authorized"};
      why += c.reason_code <= 5 ? v3[c.reason_code] : "return code " + std::to_string(c.reason_code);
    }
    return fail(why);
  }
  state_ = state::connected;
  session_present_ = c.session_present;
  if (!session_present_) awaiting_pubrel_.clear();  // a new session: old QoS 2 ids mean nothing
  window_ = options_.inflight == 0 ? 1 : options_.inflight;
  keep_alive_ = options_.keep_alive;
  if (v5()) {
    if (c.props.receive_maximum) window_ = std::min<std::size_t>(window_, *c.props.receive_maximum);
    if (c.props.server_keep_alive) keep_alive_ = *c.props.server_keep_alive;
    if (c.props.maximum_packet_size) server_max_packet_ = *c.props.maximum_packet_size;
  }
  handler_.on_connected(*this);
}

void client::handle_publish(const codec::publish& p) {
  // Acknowledge first: the handler may disconnect() while handling the
  // message, and the acknowledgement must still go out before DISCONNECT.
  if (p.qos == 0) return handler_.on_message(*this, p);
  if (p.qos == 1) {
    send(codec::pub_response{codec::packet_type::puback, p.packet_id, 0, {}});
    return handler_.on_message(*this, p);
  }
  // QoS 2, method B: deliver on PUBLISH, remember the id until PUBREL.
  send(codec::pub_response{codec::packet_type::pubrec, p.packet_id, 0, {}});
  if (awaiting_pubrel_.insert(p.packet_id).second) {
    handler_.on_message(*this, p);
  } else {
    ++qos2_resends_;
  }
}

void client::handle_response(const codec::pub_response& r) {
  using codec::packet_type;
  if (r.type == packet_type::pubrel) {
    bool known = awaiting_pubrel_.erase(r.packet_id) > 0;
    // MQTT 5 answers an unknown id with 0x92; 3.1.1 just completes.
    std::uint8_t reason = (!known && v5()) ? codec::rc::packet_identifier_not_found : 0;
    return send(codec::pub_response{packet_type::pubcomp, r.packet_id, reason, {}});
  }
  const char* name = r.type == packet_type::puback ? "PUBACK" : r.type == packet_type::pubrec ? "PUBREC" : "PUBCOMP";
  auto it = outgoing_.find(r.packet_id);
  auto expected = r.type == packet_type::puback   ? outgoing::stage::puback
                  : r.type == packet_type::pubrec ? outgoing::stage::pubrec
                                                  : outgoing::stage::pubcomp;
  if (it == outgoing_.end() || (it->second.at != expected &&
                                !(r.type == packet_type::pubrec && it->second.at == outgoing::stage::pubcomp)))
    return fail(std::string(name) + " for packet id " + std::to_string(r.packet_id) + " that is not awaiting one");
  if (r.type == packet_type::pubrec && r.reason_code < 0x80) {
    it->second.at = outgoing::stage::pubcomp;  // (a repeated PUBREC gets its PUBREL again)
    return send(codec::pub_response{packet_type::pubrel, r.packet_id, 0, {}});
  }
  outgoing o = it->second;
  outgoing_.erase(it);
  ids_.release(r.packet_id);
  --publishes_in_flight_;
  handler_.on_acked(*this, o.token, o.sent, r.reason_code);
}

void client::finish(const std::string& error) {
  if (state_ == state::closed) return;
  state_ = state::closed;
  ++generation_;  // every pending completion of this connection is now stale
  boost::system::error_code ignored;
  socket_.close(ignored);
  out_.clear();
  writing_.clear();
  tail_.clear();
  writing_now_ = flush_scheduled_ = false;
  handler_.on_closed(*this, error);
}

}  // namespace flock::bench
