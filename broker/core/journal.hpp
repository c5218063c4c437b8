#pragma once
// The core's side of durable state: builds ports::store ops for the changes
// the core makes and appends them to the store. With durability "memory"
// there is no store and every call here is a cheap no-op.
//
// Refcounting: a stored message is written once however many persistent
// sessions it was routed to; each stored delivery (queued or in flight) holds
// one reference, and whoever drops the last one deletes the stored copy.
#include <cstdint>
#include <functional>
#include <span>

#include "broker/core/delivery.hpp"
#include "broker/ports/store.hpp"

namespace flock::core {

class journal {
 public:
  using ticket = ports::store::ticket;  // 0: nothing to wait for

  explicit journal(ports::store* store = nullptr) : store_(store) {}

  bool enabled() const { return store_ != nullptr; }
  // False while the store cannot write (disk full): QoS 1/2 publishes are refused.
  bool healthy() const { return !store_ || store_->healthy(); }
  ports::store* store() const { return store_; }

  ticket append(std::span<ports::store_op> ops) { return (store_ && !ops.empty()) ? store_->append(ops) : 0; }

  // Runs fn on worker w once group t is durable; at once, here, when there
  // is nothing to wait for (t == 0).
  void when_durable(ticket t, ports::worker_id w, std::function<void()> fn) {
    if (t == 0) fn();
    else store_->when_durable(t, w, std::move(fn));
  }
  ticket append(ports::store_op op) { return store_ ? store_->append(std::span<ports::store_op>(&op, 1)) : 0; }

  // Drops one reference to a stored message; the last one adds its delete to `ops`.
  static void release(const message& m, std::vector<ports::store_op>& ops) {
    if (m.id != 0 && m.refs.value.fetch_sub(1, std::memory_order_acq_rel) == 1)
      ops.push_back(ports::message_delete{m.id, m.partitions});
  }

  static ports::delivery_meta meta_of(const delivery& d) { return {d.qos, d.retain, d.subscription_ids}; }

 private:
  ports::store* store_;
};

}  // namespace flock::core
