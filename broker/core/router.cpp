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
};

// Per thread, reused for every publish so routing does not allocate.
thread_local std::vector<target> t_targets;

}  // namespace

std::size_t broker::impl::publish(const message_ptr& msg) {
  if (msg->retain) {
    std::unique_lock lock(retained_mutex);
    retained.set(msg);
  }
  return route(msg);
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

std::size_t broker::impl::route(const message_ptr& msg) {
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
  if (targets.empty()) return 0;

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

  const ports::worker_id here = current();
  const auto now = this->now();
  std::vector<std::vector<std::pair<std::shared_ptr<session>, delivery>>> remote(executor.worker_count());
  std::size_t routed = targets.size();
  for (auto& t : targets) {
    delivery d{msg, std::min(msg->qos, t.qos), t.retain_as_published && msg->retain, std::move(t.ids)};
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
  return routed;
}

}  // namespace flock::core
