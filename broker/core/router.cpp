// Routing: a publish becomes one delivery per matching session, one post per
// target worker (carrying a batch), and no copy of the message itself.
#include <algorithm>

#include "broker/core/broker_impl.hpp"

namespace flock::core {

namespace {

struct target {
  std::shared_ptr<session> s;
  std::uint8_t qos = 0;
  bool retain_as_published = false;
  std::vector<std::uint32_t> ids;
  bool stored = false;  // written to the store for this session
};

// Per thread, reused for every publish so routing does not allocate.
thread_local std::vector<target> t_targets;
thread_local std::vector<ports::store_op> t_ops;

}  // namespace

broker::impl::publish_result broker::impl::publish(const message_ptr& msg, std::optional<ports::store_op> publisher_op) {
  auto& ops = t_ops;
  ops.clear();
  if (publisher_op) ops.push_back(std::move(*publisher_op));
  if (msg->retain) {
    std::unique_lock lock(retained_mutex);
    retained.set(msg);
    // $SYS topics are rebuilt every interval: not worth a write.
    if (persistence.enabled() && !msg->topic.starts_with("$SYS/")) {
      if (msg->payload.empty()) ops.push_back(ports::retained_delete{msg->topic});
      else ops.push_back(ports::retained_put{msg});
    }
  }
  return route(msg, ops);
}

void broker::impl::publish_will(const message_ptr& will) {
  if (!will->props.message_expiry_interval) {
    publish(will);
    return;
  }
  auto m = std::make_shared<message>(*will);
  m->expires_at = now() + std::chrono::seconds(*m->props.message_expiry_interval);
  m->props.message_expiry_interval.reset();
  publish(m);
}

broker::impl::publish_result broker::impl::route(const message_ptr& msg, std::vector<ports::store_op>& ops) {
  auto& targets = t_targets;
  targets.clear();
  {
    std::shared_lock lock(index_mutex);
    index.match(
        msg->topic,
        [&](const std::shared_ptr<session>& s, const subscription_options& o) {
          if (o.no_local && s->client_id() == msg->publisher) return;
          target t{s, o.qos, o.retain_as_published, {}};
          if (o.identifier != 0) t.ids.push_back(o.identifier);
          targets.push_back(std::move(t));
        },
        [&](const auto& group) {
          // One member per message: round robin, preferring connected members.
          const auto& members = group.members();
          if (members.empty()) return;
          std::size_t start = group.next_index() % members.size();
          std::size_t pick = start;
          for (std::size_t i = 0; i < members.size(); ++i) {
            std::size_t k = (start + i) % members.size();
            if (members[k].target->online()) {
              pick = k;
              break;
            }
          }
          const auto& m = members[pick];
          target t{m.target, m.options.qos, m.options.retain_as_published, {}};
          if (m.options.identifier != 0) t.ids.push_back(m.options.identifier);
          targets.push_back(std::move(t));
        });
  }
  if (targets.empty()) return {0, persistence.append(ops)};

  // One copy per session, at the highest granted QoS, carrying every matching
  // subscription identifier (MQTT 5 3.3.4).
  if (targets.size() > 1) {
    std::sort(targets.begin(), targets.end(), [](const target& a, const target& b) { return a.s.get() < b.s.get(); });
    std::size_t out = 0;
    for (std::size_t i = 1; i < targets.size(); ++i) {
      target& last = targets[out];
      if (targets[i].s == last.s) {
        last.qos = std::max(last.qos, targets[i].qos);
        last.retain_as_published = last.retain_as_published || targets[i].retain_as_published;
        last.ids.insert(last.ids.end(), targets[i].ids.begin(), targets[i].ids.end());
      } else if (++out != i) {  // never self-move: a self-moved vector loses its ids
        targets[out] = std::move(targets[i]);
      }
    }
    targets.resize(out + 1);
  }

  // Persistent sessions get their QoS 1/2 copy on disk: the message once, a
  // queued record each. Appended before any post below, so every later
  // change by the target sessions' workers comes after it in the store's log.
  std::uint32_t stored = 0;
  if (msg->id != 0) {
    const std::size_t first = ops.size();
    for (auto& t : targets) {
      std::uint8_t qos = std::min(msg->qos, t.qos);
      if (qos == 0 || !t.s->stores_messages()) continue;
      t.stored = true;
      ++stored;
      ops.push_back(ports::queued_put{t.s->id(), msg->id, {qos, t.retain_as_published && msg->retain, t.ids}});
    }
    if (stored != 0) {
      msg->refs.value.store(stored, std::memory_order_relaxed);  // published by the posts below
      ops.insert(ops.begin() + static_cast<std::ptrdiff_t>(first), ports::message_put{msg});
    }
  }
  const journal::ticket ticket = persistence.append(ops);

  const ports::worker_id here = current();
  const auto now = this->now();
  std::vector<std::vector<std::pair<std::shared_ptr<session>, delivery>>> remote(executor.worker_count());
  std::size_t routed = targets.size();
  for (auto& t : targets) {
    delivery d{msg, std::min(msg->qos, t.qos), t.retain_as_published && msg->retain, std::move(t.ids), t.stored};
    ports::worker_id owner = t.s->owner();
    if (owner == here) {
      t.s->deliver(std::move(d), now, my_stats());
    } else {
      remote[owner].emplace_back(std::move(t.s), std::move(d));
    }
  }
  for (ports::worker_id w = 0; w < remote.size(); ++w) {
    if (remote[w].empty()) continue;
    executor.post(w, [this, batch = std::move(remote[w])]() mutable {
      const auto now = this->now();
      for (auto& [s, d] : batch) {
        if (s->owner() == current()) {
          s->deliver(std::move(d), now, my_stats());
        } else {
          run_on_owner(s, [this, d = std::move(d)](const std::shared_ptr<session>& moved) mutable {
            moved->deliver(std::move(d), this->now(), my_stats());
          });
        }
      }
    });
  }
  return {routed, ticket};
}

}  // namespace flock::core
