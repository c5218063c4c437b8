// Output held until the store has made durable what it confirms, and until
// the peers that got a forwarded copy confirmed they have it.
#include "broker/protocol/machine_impl.hpp"

namespace flock::protocol {

void connection_machine::impl::hold_output_until(std::uint64_t ticket) { hold_output_until(ticket, nullptr); }

void connection_machine::impl::hold_output_until(std::uint64_t ticket, const core::remote_ack_ptr& ack) {
  if (phase_ == phase::closed) return;
  if (ack && ack->done()) {
    hold_output_until(ticket, nullptr);
    return;
  }
  ports::store* store = core_.store();
  if (!ack) {
    if (ticket == 0) return;
    if (!held_.empty()) {
      if (held_.back().ticket >= ticket) return;  // already waiting for a later group
    } else if (store->is_durable(ticket)) {
      return;
    }
  }
  held_.push_back(held_output{ticket, ack, {}});
  auto release = [self = weak_from_this()] {
    if (auto me = self.lock()) me->release_held();
  };
  if (ticket != 0) store->when_durable(ticket, core_.current(), release);
  if (ack) ack->when_done(core_.executor(), core_.current(), release);
}

void connection_machine::impl::release_held() {
  if (phase_ == phase::closed) return;
  ports::store* store = core_.store();
  std::size_t n = 0;
  auto& buffer = io_.out_buffer();
  while (n < held_.size() && held_[n].ready(store)) buffer += held_[n++].bytes;
  if (n == 0) return;
  held_.erase(held_.begin(), held_.begin() + static_cast<std::ptrdiff_t>(n));
  io_.schedule_flush();
}

std::size_t connection_machine::impl::held_bytes() const {
  std::size_t n = 0;
  for (const auto& h : held_) n += h.bytes.size();
  return n;
}

}  // namespace flock::protocol
