#include "cluster/peer.hpp"

#include <algorithm>

#include "cluster/forward_codec.hpp"
#include "cluster/wire_codec.hpp"

namespace flock::cluster {

namespace {
ports::time_point steady_now() { return std::chrono::steady_clock::now(); }
// What a message takes on the wire, near enough to fill batches by.
std::size_t message_bytes(const core::message& m) { return m.topic.size() + m.payload.size() + 64; }
}  // namespace

peer::peer(ports::peer_id peer_id, std::string peer_name, const options& opts)
    : id(peer_id), name(std::move(peer_name)), opts_(opts) {}

bool peer::ready() const {
  std::lock_guard lock(mutex_);
  return writer_ != nullptr;
}

bool peer::control_idle() const {
  std::lock_guard lock(mutex_);
  return !writer_ || (control_.empty() && !writing_);
}

std::size_t peer::outbox_size() const {
  std::lock_guard lock(mutex_);
  return resend_.size() + data_.size() + unacked_.size();
}

void peer::send(wire::Frame frame) {
  {
    std::lock_guard lock(mutex_);
    if (!writer_) return;
    control_.push_back(std::move(frame));
  }
  pump();
}

void peer::send(std::vector<wire::Frame> frames) {
  {
    std::lock_guard lock(mutex_);
    if (!writer_) return;
    for (auto& f : frames) control_.push_back(std::move(f));
  }
  pump();
}

void peer::send_retained(std::vector<core::message_ptr> messages) {
  {
    std::lock_guard lock(mutex_);
    if (!writer_) return;
    for (auto& m : messages) bulk_.push_back(std::move(m));
  }
  pump();
}

void peer::send_bulk(wire::Frame frame) {
  {
    std::lock_guard lock(mutex_);
    if (!writer_) return;
    bulk_frames_.push_back(std::move(frame));
  }
  pump();
}

bool peer::bulk_pending() const {
  std::lock_guard lock(mutex_);
  return !bulk_.empty() || !bulk_frames_.empty();
}

bool peer::replicate(std::uint64_t group, std::vector<ports::replicated_part_ptr> parts) {
  bool fit = false;
  {
    std::lock_guard lock(mutex_);
    fit = replication_.add(group, std::move(parts), steady_now());
  }
  pump();
  return fit;
}

void peer::on_replicate_ack(std::uint64_t group) {
  std::lock_guard lock(mutex_);
  replication_.acknowledged(group);
}

bool peer::replication_lagging(ports::time_point now, ports::duration timeout) {
  std::lock_guard lock(mutex_);
  const bool overflowed = replication_.take_lagging();
  const auto oldest = replication_.oldest();
  return overflowed || (oldest && now - *oldest > timeout);
}

std::size_t peer::replication_backlog() const {
  std::lock_guard lock(mutex_);
  return replication_.size();
}

bool peer::full(std::size_t more_bytes) const {
  return resend_.size() + data_.size() + unacked_.size() >= opts_.max_outbox_messages ||
         bytes_ + more_bytes > opts_.max_outbox_bytes;
}

void peer::confirm(outgoing& o, bool unconfirmed) {
  if (!o.ack) return;
  if (unconfirmed) stats.unconfirmed_acks.fetch_add(1, std::memory_order_relaxed);
  o.ack->confirm();
  o.ack.reset();
}

void peer::forward(const core::message_ptr& msg, std::vector<ports::shared_pick> picks, const core::remote_ack_ptr& ack) {
  const std::size_t bytes = message_bytes(*msg);
  {
    std::lock_guard lock(mutex_);
    if (msg->qos == 0 && (!writer_ || full(bytes))) {
      stats.dropped_qos0.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (full(bytes)) {
      stats.dropped_full.fetch_add(1, std::memory_order_relaxed);
      return;  // ack never expected: the publisher does not wait for a copy that was not kept
    }
    outgoing o{next_seq_++, msg, std::move(picks), nullptr, {}, bytes};
    // Held for this peer only while a stream can carry the copy: a peer that
    // is not connected now does not delay anybody (it gets the copy later).
    // An ack timeout of 0 holds nobody (acknowledged once sent to the outbox).
    if (ack && writer_ && opts_.ack_timeout.count() > 0) {
      ack->expect();
      o.ack = ack;
    }
    bytes_ += bytes;
    data_.push_back(std::move(o));
    stats.forwarded.fetch_add(1, std::memory_order_relaxed);
  }
  pump();
}

void peer::pump() {
  wire::Batch batch;
  struct item {
    std::uint64_t seq;
    core::message_ptr msg;
    std::vector<ports::shared_pick> picks;
  };
  std::vector<item> items;
  std::vector<core::message_ptr> retained;
  std::vector<replication_lane::group> replicated;
  std::vector<wire::Frame> bulk;  // after every other lane's frames: a snapshot chunk follows its snapshot part
  std::shared_ptr<outbound_link> link;
  std::size_t bytes = 0;
  {
    std::lock_guard lock(mutex_);
    if (writing_ || !writer_) return;
    const bool any_bulk = !bulk_.empty() || !bulk_frames_.empty();
    if (control_.empty() && !replication_.unsent() && resend_.empty() && data_.empty() && !any_bulk) return;
    writing_ = true;
    link = writer_;
    std::size_t budget = opts_.batch_bytes;
    while (!control_.empty() && budget > 0) {
      std::size_t size = control_.front().ByteSizeLong();
      *batch.add_frames() = std::move(control_.front());
      control_.pop_front();
      budget = size >= budget ? 0 : budget - size;
    }
    if (budget > 0 && replication_.unsent()) {
      replicated = replication_.take(budget);
      for (const auto& g : replicated) budget = g.bytes >= budget ? 0 : budget - g.bytes;
    }
    // Bulk frames' share, kept from forwards while both wait (the rest of
    // the batch goes to bulk when no forward needs it).
    std::size_t bulk_budget = !any_bulk || (resend_.empty() && data_.empty()) ? 0 : budget / 4;
    budget -= bulk_budget;
    const auto now = steady_now();
    // In send order: one publisher's messages stay in order whatever their QoS.
    auto take = [&](std::deque<outgoing>& from) {
      while (!from.empty() && budget > 0) {
        outgoing o = std::move(from.front());
        from.pop_front();
        budget = o.bytes >= budget ? 0 : budget - o.bytes;
        bytes += o.bytes;
        o.sent_at = now;
        items.push_back({o.seq, o.msg, o.picks});
        if (o.msg->qos > 0) unacked_.push_back(std::move(o));
        else bytes_ -= o.bytes;  // QoS 0: sent and forgotten
      }
    };
    take(resend_);
    take(data_);
    bulk_budget += budget;
    while (!bulk_frames_.empty() && bulk_budget > 0) {
      const std::size_t size = bulk_frames_.front().ByteSizeLong();
      bulk.push_back(std::move(bulk_frames_.front()));
      bulk_frames_.pop_front();
      bulk_budget = size >= bulk_budget ? 0 : bulk_budget - size;
    }
    while (!bulk_.empty() && bulk_budget > 0) {
      const std::size_t size = message_bytes(*bulk_.front());
      retained.push_back(std::move(bulk_.front()));
      bulk_.pop_front();
      bulk_budget = size >= bulk_budget ? 0 : bulk_budget - size;
    }
  }
  // Encoded outside the lock: workers keep forwarding meanwhile.
  for (const auto& g : replicated) {
    auto* r = batch.add_frames()->mutable_replicate();
    r->set_group(g.id);
    for (const auto& part : g.parts) {
      auto* p = r->add_parts();
      p->set_partition(part->partition);
      p->set_epoch(part->epoch);
      p->set_lsn(part->lsn);
      p->set_base_epoch(part->base_epoch);
      p->set_snapshot(part->snapshot);
      p->set_writes(part->writes);
    }
  }
  if (!items.empty()) {
    const auto now = steady_now();
    auto* forwards = batch.add_frames()->mutable_forwards();
    const bool v1 = protocol() < protocol_message_codec;
    auto* packed = v1 ? forwards->mutable_packed() : forwards->mutable_records();
    packed->reserve(bytes + items.size() * 16);
    forwards->mutable_published_unix_us()->Reserve(static_cast<int>(items.size()));
    for (const auto& i : items) {
      if (v1) encode_forward_v1(*packed, i.seq, *i.msg, i.picks, now);
      else encode_forward(*packed, i.seq, *i.msg, i.picks, now);
      forwards->add_published_unix_us(static_cast<std::uint64_t>(std::max<std::int64_t>(i.msg->received_us, 0)));
    }
  }
  if (!retained.empty()) {
    const auto now = steady_now();
    for (const auto& m : retained) encode_message(*m, now, protocol(), *batch.add_frames()->mutable_retained()->mutable_message());
  }
  for (auto& f : bulk) *batch.add_frames() = std::move(f);
  link->write(std::move(batch));
}

void peer::on_written() {
  {
    std::lock_guard lock(mutex_);
    writing_ = false;
  }
  pump();
}

void peer::on_ack(std::uint64_t seq) {
  std::vector<core::remote_ack::due> due;
  {
    std::lock_guard lock(mutex_);
    while (!unacked_.empty() && unacked_.front().seq <= seq) {
      auto& o = unacked_.front();
      if (o.ack) {
        if (auto d = o.ack->confirm_later(); d.fn) due.push_back(std::move(d));
        o.ack.reset();
      }
      bytes_ -= o.bytes;
      unacked_.pop_front();
    }
  }
  // One task per worker for every publisher this acknowledgement releases.
  while (!due.empty()) {
    auto* ex = due.front().executor;
    auto w = due.front().worker;
    std::vector<std::function<void()>> fns;
    std::erase_if(due, [&](core::remote_ack::due& d) {
      if (d.executor != ex || d.worker != w) return false;
      fns.push_back(std::move(d.fn));
      return true;
    });
    ex->post(w, [fns = std::move(fns)] {
      for (const auto& f : fns) f();
    });
  }
}

void peer::connected(std::shared_ptr<outbound_link> l, std::uint64_t applied, std::uint32_t protocol) {
  // What both read: a node from before says no protocol (0), meaning 1.
  protocol_.store(std::clamp<std::uint32_t>(protocol, 1, opts_.protocol), std::memory_order_release);
  {
    std::lock_guard lock(mutex_);
    writer_ = std::move(l);
    writing_ = false;
    replication_.rewind();
    // What the peer applied already is done; the rest goes again, first.
    while (!resend_.empty() && resend_.front().seq <= applied) {
      confirm(resend_.front(), false);
      bytes_ -= resend_.front().bytes;
      resend_.pop_front();
    }
  }
  pump();
}

void peer::disconnected() {
  std::lock_guard lock(mutex_);
  writer_.reset();
  writing_ = false;
  replication_.rewind();
  control_.clear();
  bulk_.clear();
  bulk_frames_.clear();
  // Unacknowledged copies go again on the next stream, in order, before
  // anything newer; nobody waits for them meanwhile.
  for (auto it = unacked_.rbegin(); it != unacked_.rend(); ++it) resend_.push_front(std::move(*it));
  unacked_.clear();
  for (auto& o : resend_) confirm(o, true);
  for (auto it = data_.begin(); it != data_.end();) {
    confirm(*it, true);
    if (it->msg->qos == 0) {
      stats.dropped_qos0.fetch_add(1, std::memory_order_relaxed);
      bytes_ -= it->bytes;
      it = data_.erase(it);
    } else {
      ++it;
    }
  }
}

void peer::expire_acks(ports::time_point now) {
  std::lock_guard lock(mutex_);
  for (auto& o : unacked_) {
    if (!o.ack) continue;
    if (now - o.sent_at < opts_.ack_timeout) break;  // in send order: the rest are younger
    confirm(o, true);
  }
}

bool peer::accept_forward(std::uint64_t inc, std::uint64_t seq) {
  std::lock_guard lock(inbound_mutex_);
  if (inc != applied_inc_) {
    applied_inc_ = inc;
    applied_seq_ = 0;
  }
  if (seq <= applied_seq_) return false;
  applied_seq_ = seq;
  return true;
}

std::uint64_t peer::applied_seq(std::uint64_t inc) {
  std::lock_guard lock(inbound_mutex_);
  return inc == applied_inc_ ? applied_seq_ : 0;
}

void peer::note_routed(std::uint64_t inc, std::uint64_t seq) {
  std::lock_guard lock(inbound_mutex_);
  if (inc != routed_inc_) {
    routed_inc_ = inc;
    routed_seq_ = 0;
  }
  routed_seq_ = std::max(routed_seq_, seq);
}

std::uint64_t peer::routed_seq(std::uint64_t inc) {
  std::lock_guard lock(inbound_mutex_);
  return inc == routed_inc_ ? routed_seq_ : 0;
}

std::uint64_t peer::last_forward_seq() const {
  std::lock_guard lock(mutex_);
  return next_seq_ - 1;
}

}  // namespace flock::cluster
