#include "broker/core/session.hpp"

#include <algorithm>

#include "broker/core/broker_config.hpp"
#include "broker/core/stats.hpp"

namespace flock::core {

namespace {
bool expired(const delivery& d, ports::time_point now) { return d.msg->expires_at && *d.msg->expires_at <= now; }

// False (and counted) when the sink refused the message for good.
bool was_sent(session_sink::send_result r, worker_stats& stats) {
  switch (r) {
    case session_sink::send_result::sent: return true;
    case session_sink::send_result::too_large: stats.add(stats.dropped_too_large); return false;
    case session_sink::send_result::not_authorized: stats.add(stats.delivery_denied); return false;
  }
  return false;
}
}  // namespace

session::session(std::string client_id, ports::worker_id owner, const broker_config& config)
    : client_id_(std::move(client_id)), config_(config), owner_(owner) {}

void session::attach(session_sink* sink, worker_stats& stats) {
  sink_ = sink;
  online_.store(true, std::memory_order_relaxed);
  expires_at_.reset();
  will_.reset();  // resumed before the will delay ran out: the will is not sent
  // Resend what the previous connection left unacknowledged, in order, with
  // DUP; PUBREL for messages the client already PUBREC'd (MQTT 4.4).
  for (auto it = inflight_.begin(); it != inflight_.end();) {
    if (it->state == outgoing_state::awaiting_pubcomp) {
      sink_->send_pubrel(it->packet_id);
      ++it;
    } else if (!was_sent(sink_->send_publish(it->d, it->packet_id, true), stats)) {
      it = inflight_.erase(it);
    } else {
      ++it;
    }
  }
}

void session::detach() {
  sink_ = nullptr;
  online_.store(false, std::memory_order_relaxed);
}

void session::deliver(delivery d, ports::time_point now, worker_stats& stats, bool bounded) {
  if (ended_) return;
  if (expired(d, now)) {
    stats.add(stats.dropped_expired);
    return;
  }
  // Keep order: only bypass the queue when nothing is waiting in it.
  if (sink_ && queue_.empty() && sink_->writable() && (d.qos == 0 || inflight_.size() < sink_->send_window())) {
    send_now(d, now, stats);
    return;
  }
  enqueue(std::move(d), stats, bounded);
}

void session::enqueue(delivery d, worker_stats& stats, bool bounded) {
  if (!sink_ && d.qos == 0 && !config_.queue_qos0_messages) {
    stats.add(stats.dropped_qos0_offline);
    return;
  }
  if (bounded && config_.max_queued_messages != 0 && queue_.size() >= config_.max_queued_messages) {
    stats.add(stats.dropped_queue_full);
    if (config_.queue_overflow_policy == queue_overflow::drop_newest) return;
    queue_.pop_front();
  }
  queue_.push_back(std::move(d));
}

bool session::send_now(delivery& d, ports::time_point now, worker_stats& stats) {
  if (d.qos == 0) {
    return was_sent(sink_->send_publish(d, 0, false), stats);
  }
  std::uint16_t id = next_packet_id();
  if (!was_sent(sink_->send_publish(d, id, false), stats)) return false;
  auto state = d.qos == 1 ? outgoing_state::awaiting_puback : outgoing_state::awaiting_pubrec;
  inflight_.push_back(inflight_message{id, state, std::move(d)});
  return true;
}

void session::pump(ports::time_point now, worker_stats& stats) {
  while (sink_ && !queue_.empty()) {
    delivery& front = queue_.front();
    if (expired(front, now)) {
      stats.add(stats.dropped_expired);
      queue_.pop_front();
      continue;
    }
    if (!sink_->writable()) break;
    if (front.qos > 0 && inflight_.size() >= sink_->send_window()) break;
    delivery d = std::move(front);
    queue_.pop_front();
    send_now(d, now, stats);
  }
}

std::uint16_t session::next_packet_id() {
  // The window keeps in-flight ids far below 65535, so this terminates fast.
  while (true) {
    if (++last_packet_id_ == 0) last_packet_id_ = 1;
    bool used = std::any_of(inflight_.begin(), inflight_.end(),
                            [&](const inflight_message& m) { return m.packet_id == last_packet_id_; });
    if (!used) return last_packet_id_;
  }
}

bool session::on_puback(std::uint16_t id) {
  auto it = std::find_if(inflight_.begin(), inflight_.end(), [&](const inflight_message& m) {
    return m.packet_id == id && m.state == outgoing_state::awaiting_puback;
  });
  if (it == inflight_.end()) return false;
  inflight_.erase(it);
  return true;
}

bool session::on_pubrec(std::uint16_t id, bool failed) {
  auto it = std::find_if(inflight_.begin(), inflight_.end(), [&](const inflight_message& m) {
    return m.packet_id == id && m.state != outgoing_state::awaiting_puback;
  });
  if (it == inflight_.end()) return false;
  if (failed) {  // the receiver refused it (v5 reason >= 0x80): the flow ends here
    inflight_.erase(it);
    return true;
  }
  it->state = outgoing_state::awaiting_pubcomp;
  it->d.msg.reset();  // the payload is no longer needed once the receiver has it
  if (sink_) sink_->send_pubrel(id);
  return true;
}

bool session::on_pubcomp(std::uint16_t id) {
  auto it = std::find_if(inflight_.begin(), inflight_.end(), [&](const inflight_message& m) {
    return m.packet_id == id && m.state == outgoing_state::awaiting_pubcomp;
  });
  if (it == inflight_.end()) return false;
  inflight_.erase(it);
  return true;
}

}  // namespace flock::core
