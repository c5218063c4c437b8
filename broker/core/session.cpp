#include "broker/core/session.hpp"

#include <algorithm>

#include "broker/core/broker_config.hpp"
#include "broker/core/stats.hpp"

namespace flock::core {

namespace {
bool expired(const delivery& d, ports::time_point now) { return d.msg->expires_at && *d.msg->expires_at <= now; }

// False (and counted) when the sink refused the message for good.
bool was_sent(session_sink::send_result r, std::uint8_t qos, worker_stats& stats) {
  switch (r) {
    case session_sink::send_result::sent: return true;
    case session_sink::send_result::too_large: stats.add(stats.dropped_too_large[qos]); return false;
    case session_sink::send_result::not_authorized: stats.add(stats.delivery_denied[qos]); return false;
  }
  return false;
}
}  // namespace

session::session(std::string client_id, std::uint64_t id, ports::worker_id owner, const broker_config& config,
                 journal& persistence)
    : client_id_(std::move(client_id)), id_(id), config_(config), journal_(persistence), owner_(owner) {}

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
    } else if (!was_sent(sink_->send_publish(it->d, it->packet_id, true), it->d.qos, stats)) {
      drop_inflight(*it);
      it = inflight_.erase(it);
    } else {
      ++it;
    }
  }
}

void session::detach() {
  sink_ = nullptr;
  online_.store(false, std::memory_order_relaxed);
  // An offline session keeps memory only for what it still holds.
  queue_.release_if_empty();
  inflight_.release_if_empty();
}

void session::deliver(delivery d, ports::time_point now, worker_stats& stats) {
  if (ended_) {
    drop_queued(d);
    return;
  }
  if (moving()) {
    // The session is on its way to another node: so is this message. Our
    // stored copy goes; the new node stores its own.
    delivery copy = d;
    copy.stored = false;
    travel_->moving->cluster->deliver_to_moved(travel_->moving->to, client_id_, std::move(copy));
    drop_queued(d);
    return;
  }
  if (expired(d, now)) {
    stats.add(stats.dropped_expired[d.qos]);
    drop_queued(d);
    return;
  }
  // The queue is the overflow of the connection's output buffer: when there
  // is room again, what waits goes first, and this one right behind it.
  // (Waiting for the next write completion to pump sent a few hundred per
  // round trip while a flood of deliveries found the queue full and was
  // dropped: 0.5% of a QoS 0 fan-in arrived.)
  if (sink_ && !queue_.empty() && sink_->writable()) pump(now, stats);
  // Keep order: only bypass the queue when nothing is waiting in it.
  if (sink_ && queue_.empty() && sink_->writable() && (d.qos == 0 || inflight_.size() < sink_->send_window())) {
    send_now(d, now, stats);
    return;
  }
  enqueue(std::move(d), stats, true);
}

void session::enqueue(delivery d, worker_stats& stats, bool bounded) {
  if (!sink_ && d.qos == 0 && !config_.queue_qos0_messages) {
    stats.add(stats.dropped_qos0_offline[0]);
    return;
  }
  if (bounded && config_.max_queued_messages != 0 && queue_.size() >= config_.max_queued_messages) {
    if (config_.queue_overflow_policy == queue_overflow::drop_newest) {
      stats.add(stats.dropped_queue_full[d.qos]);
      drop_queued(d);
      return;
    }
    stats.add(stats.dropped_queue_full[queue_.front().qos]);
    drop_queued(queue_.front());
    queue_.pop_front();
  }
  queue_.push_back(std::move(d));
}

bool session::send_now(delivery& d, ports::time_point now, worker_stats& stats) {
  if (d.qos == 0) {
    return was_sent(sink_->send_publish(d, 0, false), 0, stats);
  }
  std::uint16_t id = next_packet_id();
  auto state = d.qos == 1 ? outgoing_state::awaiting_puback : outgoing_state::awaiting_pubrec;
  inflight_message m{id, state, {}, d.stored ? d.msg->id : 0};
  if (d.stored) {
    // Queued -> in flight with this packet id. A QoS 2 receiver may take the
    // packet id as the message's identity, so the PUBLISH waits until the id
    // is on disk: a restart must resend it under the same id, not as new.
    ports::store_op ops[] = {ports::queued_delete{id_, m.message_id},
                             ports::inflight_put{id_, m.message_id, id, state, journal::meta_of(d)}};
    auto t = journal_.append(ops);
    if (d.qos == 2) sink_->hold_output_until(t);
  }
  m.d = std::move(d);
  if (!was_sent(sink_->send_publish(m.d, id, false), m.d.qos, stats)) {
    drop_inflight(m);
    return false;
  }
  inflight_.push_back(std::move(m));
  return true;
}

void session::pump(ports::time_point now, worker_stats& stats) {
  // At most this many PUBLISHes per call: a long queue (100,000 retained
  // messages after one subscribe) must not hold the worker for one client.
  // The rest goes when the transport has written these (on_drained).
  constexpr int max_per_turn = 256;
  int budget = max_per_turn;
  while (sink_ && !queue_.empty() && budget > 0) {
    delivery& front = queue_.front();
    if (expired(front, now)) {
      stats.add(stats.dropped_expired[front.qos]);
      drop_queued(front);
      queue_.pop_front();
      continue;
    }
    if (!sink_->writable()) break;
    if (front.qos > 0 && inflight_.size() >= sink_->send_window()) break;
    delivery d = std::move(front);
    queue_.pop_front();
    if (send_now(d, now, stats)) --budget;
  }
}

void session::enqueue_all(std::vector<delivery>& ds, ports::time_point now, worker_stats& stats) {
  if (ended_) return;
  for (auto& d : ds) {
    if (expired(d, now)) {
      stats.add(stats.dropped_expired[d.qos]);
      drop_queued(d);
      continue;
    }
    enqueue(std::move(d), stats, false);
  }
  pump(now, stats);
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
  drop_inflight(*it);
  inflight_.erase(it);
  return true;
}

bool session::on_pubrec(std::uint16_t id, bool failed) {
  auto it = std::find_if(inflight_.begin(), inflight_.end(), [&](const inflight_message& m) {
    return m.packet_id == id && m.state != outgoing_state::awaiting_puback;
  });
  if (it == inflight_.end()) return false;
  if (failed) {  // the receiver refused it (v5 reason >= 0x80): the flow ends here
    drop_inflight(*it);
    inflight_.erase(it);
    return true;
  }
  it->state = outgoing_state::awaiting_pubcomp;
  if (it->message_id != 0) {
    // The receiver has the message: only the PUBREL state must survive now,
    // and the PUBREL goes out once it is on disk.
    std::vector<ports::store_op> ops{
        ports::inflight_put{id_, it->message_id, id, it->state, journal::meta_of(it->d)}};
    journal::release(*it->d.msg, ops);
    auto t = journal_.append(ops);
    if (sink_) sink_->hold_output_until(t);
  }
  it->d.msg.reset();  // the payload is no longer needed once the receiver has it
  if (sink_) sink_->send_pubrel(id);
  return true;
}

bool session::on_pubcomp(std::uint16_t id) {
  auto it = std::find_if(inflight_.begin(), inflight_.end(), [&](const inflight_message& m) {
    return m.packet_id == id && m.state == outgoing_state::awaiting_pubcomp;
  });
  if (it == inflight_.end()) return false;
  drop_inflight(*it);
  inflight_.erase(it);
  return true;
}

void session::drop_queued(const delivery& d) {
  if (!d.stored) return;
  std::vector<ports::store_op> ops{ports::queued_delete{id_, d.msg->id}};
  journal::release(*d.msg, ops);
  journal_.append(ops);
}

void session::drop_inflight(const inflight_message& m) {
  if (m.message_id == 0) return;
  std::vector<ports::store_op> ops{ports::inflight_delete{id_, m.message_id}};
  if (m.d.msg) journal::release(*m.d.msg, ops);
  journal_.append(ops);
}

journal::ticket session::save(bool online) {
  if (!journal_.enabled()) return 0;
  const bool persistent = expiry_interval_ != 0;
  stores_messages_.store(persistent, std::memory_order_release);
  // A session resumed with expiry 0 still rewrites its record, so that a
  // restart meanwhile does not bring back the old expiry.
  if (!persistent && !has_record_) return 0;
  has_record_ = true;
  return journal_.append(record(online));
}

ports::session_put session::record(bool online) const {
  ports::session_put p;
  p.session_id = id_;
  p.client_id = client_id_;
  p.expiry_interval = expiry_interval_;
  p.online = online;
  if (!online) p.expires_at = expires_at_;
  if (will_) {
    p.will = will_->msg;
    p.will_due = will_->due;
  }
  p.claimed = claimed_;
  return p;
}

void session::forget_stored() {
  stores_messages_.store(false, std::memory_order_release);
  if (!journal_.enabled()) return;
  std::vector<ports::store_op> ops;
  if (has_record_) ops.push_back(ports::session_delete{id_});  // covers every record under the id
  for (const auto& d : queue_)
    if (d.stored) journal::release(*d.msg, ops);
  for (const auto& m : inflight_)
    if (m.message_id != 0 && m.d.msg) journal::release(*m.d.msg, ops);
  has_record_ = false;
  journal_.append(ops);
}

void session::restore(const ports::restored_session& r, ports::time_point now) {
  has_record_ = true;
  expiry_interval_ = r.expiry_interval;
  stores_messages_.store(expiry_interval_ != 0, std::memory_order_release);
  expires_at_ = r.expires_at;
  claimed_ = r.claimed;
  if (r.will && r.will_due) will_ = pending_will{r.will, *r.will_due};
  for (const auto& q : r.queue) {
    q.msg->refs.value.fetch_add(1, std::memory_order_relaxed);
    delivery d{q.msg, q.meta.qos, q.meta.retain, q.meta.subscription_ids, true};
    if (expired(d, now)) {
      drop_queued(d);  // each session counts its reference and lets go; a repeated delete is harmless
      continue;
    }
    queue_.push_back(std::move(d));
  }
  for (const auto& f : r.inflight) {
    if (f.d.msg) f.d.msg->refs.value.fetch_add(1, std::memory_order_relaxed);
    inflight_message m{f.packet_id, f.state, delivery{f.d.msg, f.d.meta.qos, f.d.meta.retain, f.d.meta.subscription_ids, false},
                       f.d.message_id};
    inflight_.push_back(std::move(m));
    last_packet_id_ = std::max(last_packet_id_, f.packet_id);
  }
  incoming_qos2_.insert(r.incoming_qos2.begin(), r.incoming_qos2.end());
  for (const auto& [filter, opts] : r.subscriptions) subscriptions_[filter] = opts;
}

// --- cluster: sessions that travel between nodes ---

std::optional<session::parked_requester> session::park(parked_requester r) {
  auto& t = travel();
  auto old = std::move(t.parked);
  t.parked = std::move(r);
  return old;
}

std::optional<session::parked_requester> session::transfer_done() {
  if (!travel_) return std::nullopt;
  travel_->awaiting_transfer = false;
  auto p = std::move(travel_->parked);
  travel_->parked.reset();
  return p;
}

void session::absorb(ports::moved_session m, std::vector<ports::store_op>& ops,
                     const std::function<std::uint64_t()>& new_id) {
  expiry_interval_ = m.expiry_interval;
  const bool persistent = journal_.enabled() && expiry_interval_ != 0;
  if (persistent) {
    has_record_ = true;
    stores_messages_.store(true, std::memory_order_release);
    ops.push_back(record(false));
  }
  lazy_deque<delivery> arrived = std::move(queue_);  // delivered here while the session travelled
  queue_.clear();
  for (auto& md : m.queue) queue_.push_back(adopt(md, true, ops, new_id));
  for (auto& d : arrived) queue_.push_back(std::move(d));
  for (auto& f : m.inflight) {
    delivery d = adopt(f.d, false, ops, new_id);
    inflight_message im{f.packet_id, f.state, std::move(d), 0};
    if (im.d.stored) {
      im.message_id = im.d.msg->id;
      im.d.stored = false;
      ops.push_back(ports::inflight_put{id_, im.message_id, f.packet_id, f.state, journal::meta_of(im.d)});
    } else if (persistent && f.state == outgoing_state::awaiting_pubcomp) {
      // Only the PUBREL is owed: keep that on disk under an id of its own.
      im.message_id = new_id();
      ops.push_back(ports::inflight_put{id_, im.message_id, f.packet_id, f.state, {}});
    }
    last_packet_id_ = std::max(last_packet_id_, f.packet_id);
    inflight_.push_back(std::move(im));
  }
  for (auto id : m.incoming_qos2) {
    incoming_qos2_.insert(id);
    if (persistent) ops.push_back(ports::incoming_put{id_, id});
  }
}

delivery session::adopt(ports::moved_delivery& md, bool queued, std::vector<ports::store_op>& ops,
                        const std::function<std::uint64_t()>& new_id) {
  delivery d{md.msg, md.qos, md.retain, std::move(md.subscription_ids), false};
  if (stores_messages() && md.msg && md.qos > 0) {
    md.msg->id = new_id();
    md.msg->refs.value.store(1, std::memory_order_relaxed);
    md.msg->partitions.clear();
    md.msg->partitions.add(partition());
    ops.push_back(ports::message_put{md.msg});
    if (queued) ops.push_back(ports::queued_put{id_, md.msg->id, journal::meta_of(d)});
    d.stored = true;
  }
  return d;
}

ports::moved_session session::start_moving(ports::peer_id to, ports::cluster* cluster) {
  ports::moved_session m;
  m.claimed = claimed_;
  m.expiry_interval = expiry_interval_;
  for (const auto& [filter, opts] : subscriptions_) m.subscriptions.emplace_back(filter, opts);
  auto copy = [](const delivery& d) {
    ports::moved_delivery md;
    if (d.msg) md.msg = std::make_shared<message>(*d.msg);
    md.qos = d.qos;
    md.retain = d.retain;
    md.subscription_ids = d.subscription_ids;
    return md;
  };
  for (const auto& d : queue_) m.queue.push_back(copy(d));
  for (const auto& f : inflight_) m.inflight.push_back({f.packet_id, f.state, copy(f.d)});
  m.incoming_qos2.assign(incoming_qos2_.begin(), incoming_qos2_.end());
  // Resumed elsewhere before the will delay ran out: no will (MQTT 5 3.1.3.2.2).
  will_.reset();
  travel().moving = moving_state{to, cluster};
  return m;
}

}  // namespace flock::core
