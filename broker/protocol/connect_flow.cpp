// CONNECT / CONNACK and the handover of the session to this connection.
#include <random>

#include "broker/codec/topic.hpp"
#include "broker/protocol/machine_impl.hpp"

namespace flock::protocol {

namespace {

std::string assign_client_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* hex = "0123456789abcdef";
  std::string id = "flock-";
  std::uint64_t a = rng(), b = rng();
  for (int i = 0; i < 16; ++i) id += hex[(a >> (i * 4)) & 0xF];
  for (int i = 0; i < 8; ++i) id += hex[(b >> (i * 4)) & 0xF];
  return id;
}

// Offset of the protocol level byte in a CONNECT, or 0 if it cannot be found.
std::size_t protocol_level_offset(std::span<const std::uint8_t> bytes) {
  std::size_t i = 1;
  while (i < bytes.size() && i < 5 && (bytes[i] & 0x80)) ++i;
  ++i;  // past the last remaining-length byte
  if (i + 2 > bytes.size()) return 0;
  std::size_t name_len = (bytes[i] << 8) | bytes[i + 1];
  std::size_t level = i + 2 + name_len;
  return level < bytes.size() ? level : 0;
}

}  // namespace

void connection_machine::impl::handle_connect_decode_error(std::span<const std::uint8_t> bytes,
                                                           const codec::codec_error& e) {
  std::size_t level_at = protocol_level_offset(bytes);
  std::uint8_t level = level_at ? bytes[level_at] : 0;
  stats().add(stats().connects_refused[e.reason]);
  if (e.reason == codec::rc::unsupported_protocol_version) {
    // MQTT 3.1.1 3.1.2.2: answer return code 1, then close. A v5 client gets 0x84.
    if (level == 5) {
      version_ = codec::protocol_version::v5;
      send(codec::connack{false, codec::rc::unsupported_protocol_version, {}});
    } else {
      version_ = codec::protocol_version::v311;
      send(codec::connack{false, codec::rc::v3::unacceptable_protocol_version, {}});
    }
  } else if (level == 5) {
    // A malformed v5 CONNECT may be answered with CONNACK and the reason.
    version_ = codec::protocol_version::v5;
    send(codec::connack{false, e.reason, {}});
  }
  close_quietly();
}

void connection_machine::impl::reject_connect(std::uint8_t v5_reason) {
  stats().add(stats().connects_refused[v5_reason]);
  std::uint8_t code = v5() ? v5_reason : codec::rc::to_v3_connack(v5_reason);
  send(codec::connack{false, code, {}});
  will_.reset();  // a refused connection has no will
  close_quietly();
}

void connection_machine::impl::handle_connect(codec::connect& c) {
  version_ = c.version;
  const auto& props = c.props;
  if (props.authentication_method) return reject_connect(codec::rc::bad_authentication_method);

  client_id_ = std::move(c.client_id);
  clean_start_ = c.clean_start;
  bool assigned = false;
  if (client_id_.empty()) {
    // 3.1.1: a zero-length id needs clean session = 1 (3.1.3-8); 3.1 forbids it.
    bool refused = !config_.allow_zero_length_client_id || version_ == codec::protocol_version::v31 ||
                   (version_ == codec::protocol_version::v311 && !clean_start_);
    if (refused) return reject_connect(codec::rc::client_identifier_not_valid);
    client_id_ = assign_client_id();
    assigned = true;
  }
  if (client_id_.size() > config_.max_client_id_length) return reject_connect(codec::rc::client_identifier_not_valid);
  // Like Mosquitto: known users must give their password; without a user
  // name (or without a password file) the listener's anonymous rule decides.
  const auto* auth = core_.authenticator();
  if (auto identity = io_.tls_identity()) {
    // use_identity_as_username: the TLS layer verified the client's
    // certificate; its CN is the user name, and no password is asked for.
    c.username = std::move(*identity);
  } else if (c.username && auth) {
    std::optional<std::string_view> password;
    if (c.password) password = *c.password;
    if (!auth->check(*c.username, password)) return reject_connect(codec::rc::bad_user_name_or_password);
  } else if (!listener_.allow_anonymous) {
    return reject_connect(codec::rc::not_authorized);
  }
  username_ = std::move(c.username);

  keep_alive_ = c.keep_alive;
  std::optional<std::uint16_t> server_keep_alive;
  if (config_.max_keepalive != 0 && (keep_alive_ == 0 || keep_alive_ > config_.max_keepalive)) {
    if (v5()) {
      keep_alive_ = config_.max_keepalive;
      server_keep_alive = keep_alive_;
    } else if (keep_alive_ > config_.max_keepalive) {
      // v3 cannot be told another keep alive: refuse, as Mosquitto does.
      return reject_connect(codec::rc::client_identifier_not_valid);
    }
  }

  std::optional<std::uint32_t> granted_expiry;
  if (v5()) {
    session_expiry_ = props.session_expiry_interval.value_or(0);
    if (session_expiry_ > config_.max_session_expiry) {
      session_expiry_ = config_.max_session_expiry;
      granted_expiry = session_expiry_;
    }
    client_receive_maximum_ = props.receive_maximum.value_or(65535);
    client_maximum_packet_size_ = props.maximum_packet_size.value_or(0);
    client_topic_alias_maximum_ =
        std::min<std::uint16_t>(props.topic_alias_maximum.value_or(0), config_.max_outgoing_topic_aliases);
    problem_information_ = props.request_problem_information.value_or(1) != 0;
  } else {
    session_expiry_ = clean_start_ ? 0 : 0xFFFFFFFF;  // v3 persistent sessions never expire
  }

  if (c.will) {
    auto& w = *c.will;
    if (!codec::valid_topic_name(w.topic)) return reject_connect(codec::rc::topic_name_invalid);
    if (w.qos > config_.maximum_qos) return reject_connect(codec::rc::qos_not_supported);
    if (w.retain && !config_.retain_available) return reject_connect(codec::rc::retain_not_supported);
    if (!may_publish(w.topic)) {
      // As Mosquitto does: the client connects, but a will it could not
      // have published itself is dropped now and never sent.
      stats().add(stats().publish_denied);
    } else {
      will_delay_ = w.props.will_delay_interval.value_or(0);
      auto expiry = w.props.message_expiry_interval;
      auto will = make_message(std::move(w.topic), std::move(w.payload), w.qos, w.retain, std::move(w.props));
      // The expiry starts when the will is published: broker::impl::publish_will.
      will->props.message_expiry_interval = expiry;
      will->expires_at.reset();
      will_ = std::move(will);
    }
  }

  // Remember what CONNACK must say; it is sent once the session is here.
  codec::connack ack;
  if (v5()) {
    auto& p = ack.props;
    p.receive_maximum = config_.receive_maximum;
    p.maximum_packet_size = config_.max_packet_size;
    p.topic_alias_maximum = config_.topic_alias_maximum;
    if (config_.maximum_qos < 2) p.maximum_qos = config_.maximum_qos;
    if (!config_.retain_available) p.retain_available = 0;
    p.wildcard_subscription_available = 1;
    p.subscription_identifier_available = 1;
    p.shared_subscription_available = 1;
    if (assigned) p.assigned_client_identifier = client_id_;
    p.server_keep_alive = server_keep_alive;
    p.session_expiry_interval = granted_expiry;
  }
  pending_connack_ = std::make_unique<codec::connack>(std::move(ack));
  phase_ = phase::awaiting_session;
  core_.open_session(client_id_, clean_start_, weak_from_this());
}

void connection_machine::impl::on_session_refused() {
  if (phase_ != phase::awaiting_session) return;
  // A newer connection with this client id won while we waited: like a
  // taken-over session, but before CONNACK, so the connection just closes.
  will_.reset();
  pending_connack_.reset();
  close_quietly();
}

void connection_machine::impl::on_session_ready(std::shared_ptr<core::session> s, bool session_present) {
  if (phase_ != phase::awaiting_session) {
    // We closed while the session travelled here: it is simply offline now.
    core_.session_detached(s, std::nullopt, 0);
    return;
  }
  phase_ = phase::connected;
  session_ = std::move(s);
  session_->set_expiry_interval(session_expiry_);
  counted_connected_ = true;
  core_.client_connected();
  stats().add(stats().connections_total);

  codec::connack ack = std::move(*pending_connack_);
  pending_connack_.reset();
  ack.session_present = session_present && !clean_start_;
  // A persistent session is on disk before the client is told it exists.
  hold_output_until(session_->save(true));
  send(ack);
  session_->attach(this, stats());
  session_->pump(core_.now(), stats());
  if (!processing_ && !partial_.empty()) process_buffered();
}

}  // namespace flock::protocol
