// Output held until the store has made durable what it confirms.
#include "broker/protocol/machine_impl.hpp"

namespace flock::protocol {

void connection_machine::impl::hold_output_until(std::uint64_t ticket) {
  if (ticket == 0 || phase_ == phase::closed) return;
  ports::store* store = broker_.persistence.store();
  if (!held_.empty()) {
    if (held_.back().ticket >= ticket) return;  // already waiting for a later group
  } else if (store->is_durable(ticket)) {
    return;
  }
  held_.push_back(held_output{ticket, {}});
  store->when_durable(ticket, broker_.current(), [self = weak_from_this()] {
    if (auto me = self.lock()) me->release_held();
  });
}

void connection_machine::impl::release_held() {
  if (phase_ == phase::closed) return;
  ports::store* store = broker_.persistence.store();
  std::size_t n = 0;
  auto& buffer = io_.out_buffer();
  while (n < held_.size() && store->is_durable(held_[n].ticket)) buffer += held_[n++].bytes;
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
