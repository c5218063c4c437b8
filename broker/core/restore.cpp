// Start-up from the store: the memory state the broker had, rebuilt.
#include "broker/core/broker_impl.hpp"

namespace flock::core {

void broker::impl::restore(ports::restored_state state) {
  const auto now = this->now();
  std::uint64_t next = state.next_id;
  std::vector<ports::store_op> ops;

  for (auto& m : state.retained) {
    if (m->expires_at && *m->expires_at <= now) {
      ops.push_back(ports::retained_delete{m->topic});
      continue;
    }
    cluster->retained_restored(m);
    retained.set(std::move(m));
  }

  const std::uint32_t workers = executor.worker_count();
  std::uint32_t w = 0;
  for (auto& r : state.sessions) {
    if (r.will && r.will->qos > 0 && r.will->id == 0) {
      // A restored will is published like any other QoS 1/2 message: with an
      // id, so persistent subscribers get a stored copy.
      auto will = std::make_shared<message>(*r.will);
      will->id = next++;
      r.will = std::move(will);
    }
    cluster->restored(r.claimed);
    auto s = std::make_shared<session>(r.client_id, r.session_id, w, config, persistence);
    s->restore(r, now);
    for (const auto& [filter, opts] : s->subscriptions()) {
      const std::size_t before = index.holders(filter);
      index.add(filter, s, opts);
      note_route(filter, before);
    }
    directory[r.client_id] = s;
    // Offline with an expiry or a will pending: the owner's tick ends it (at
    // once if the deadline passed while the broker was down).
    if (s->expires_at() || s->will()) timed[w].emplace(s.get(), s);
    w = (w + 1) % workers;
  }
  next_id.store(next, std::memory_order_relaxed);
  persistence.append(ops);
}

}  // namespace flock::core
