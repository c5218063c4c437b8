// Routing: a publish becomes one delivery per matching session, one post per
// target worker (carrying a batch), one copy per peer node with a matching
// route, and no copy of the message itself.
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

// A peer that gets one copy: for its plain routes and/or the groups whose
// turn fell on its members.
struct peer_copy {
  ports::peer_id peer = 0;
  std::vector<ports::shared_pick> picks;
};

// A peer route group matching the topic, and whether a local group of the
// same name and filter already weighed it in.
struct remote_group {
  const remote_routes::group* g = nullptr;
  bool weighed = false;
};

// Per thread, reused for every publish so routing does not allocate.
thread_local std::vector<target> t_targets;
thread_local std::vector<ports::store_op> t_ops;
thread_local std::vector<peer_copy> t_copies;
thread_local std::vector<remote_group> t_remote_groups;

peer_copy& copy_for(ports::peer_id peer) {
  for (auto& c : t_copies)
    if (c.peer == peer) return c;
  t_copies.push_back({peer, {}});
  return t_copies.back();
}

std::uint32_t remote_weight(const remote_routes::group& g) {
  std::uint32_t n = 0;
  for (const auto& m : g.members()) n += m.options.holders;
  return n;
}

// The peer whose members hold position k (0 <= k < remote_weight(g)).
ports::peer_id remote_member(const remote_routes::group& g, std::uint32_t k) {
  for (const auto& m : g.members()) {
    if (k < m.options.holders) return m.target->id;
    k -= m.options.holders;
  }
  return g.members().back().target->id;
}

}  // namespace

broker::impl::publish_result broker::impl::publish(const message_ptr& msg, std::optional<ports::store_op> publisher_op) {
  auto& ops = t_ops;
  ops.clear();
  if (publisher_op) ops.push_back(std::move(*publisher_op));
  bool replicate = false;
  if (msg->retain) {
    std::unique_lock lock(retained_mutex);
    // $SYS topics are per node, rebuilt every interval: neither stored nor replicated.
    const bool sys = msg->topic.starts_with("$SYS/");
    if (cluster && !sys) {
      msg->written = hlc.now();
      apply_retained(msg, ops);
      replicate = true;
    } else {
      retained.set(msg);
      if (persistence.enabled() && !sys) {
        if (msg->payload.empty()) ops.push_back(ports::retained_delete{msg->topic});
        else ops.push_back(ports::retained_put{msg});
      }
    }
  }
  if (replicate) cluster->retained_changed(msg);
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

broker::impl::publish_result broker::impl::route(const message_ptr& msg, std::vector<ports::store_op>& ops,
                                                 const std::vector<ports::shared_pick>* forwarded) {
  auto& targets = t_targets;
  targets.clear();
  t_copies.clear();
  t_remote_groups.clear();
  // A message from a peer is delivered here only; $SYS is per node.
  const bool to_peers = cluster && !forwarded && !remote.empty() && !msg->topic.starts_with("$SYS/");
  std::shared_lock remote_lock(remote.mutex(), std::defer_lock);
  if (to_peers) {
    remote_lock.lock();
    remote.index().match(
        msg->topic, [&](const std::shared_ptr<remote_peer>& p, const route_weight&) { copy_for(p->id); },
        [&](const remote_routes::group& g) { t_remote_groups.push_back({&g, false}); });
  }
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
          const auto& members = group.members();
          if (members.empty()) return;
          if (forwarded) {
            // The publishing node chose which groups are ours to serve.
            bool ours = std::any_of(forwarded->begin(), forwarded->end(), [&](const ports::shared_pick& p) {
              return p.group == group.name() && p.filter == group.filter();
            });
            if (!ours) return;
          }
          // One member per message, cluster-wide: round robin over the local
          // members and the peers' (weighted by their member counts),
          // preferring connected members among the local ones.
          std::uint32_t total = static_cast<std::uint32_t>(members.size());
          const remote_routes::group* rg = nullptr;
          for (auto& r : t_remote_groups) {
            if (!r.weighed && r.g->name() == group.name() && r.g->filter() == group.filter()) {
              r.weighed = true;
              rg = r.g;
              total += remote_weight(*rg);
              break;
            }
          }
          std::uint32_t turn = group.next_index() % total;
          if (turn >= members.size()) {
            copy_for(remote_member(*rg, turn - static_cast<std::uint32_t>(members.size())))
                .picks.push_back({group.name(), group.filter()});
            return;
          }
          std::size_t pick = turn;
          for (std::size_t i = 0; i < members.size(); ++i) {
            std::size_t k = (turn + i) % members.size();
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
  // Groups with members on peers only.
  for (auto& r : t_remote_groups) {
    if (r.weighed || r.g->members().empty()) continue;
    std::uint32_t total = remote_weight(*r.g);
    if (total == 0) continue;
    copy_for(remote_member(*r.g, r.g->next_index() % total)).picks.push_back({r.g->name(), r.g->filter()});
  }
  remote_ack_ptr ack;
  if (!t_copies.empty()) {
    if (msg->qos > 0) ack = std::make_shared<remote_ack>();
    for (auto& c : t_copies) cluster->forward(c.peer, msg, std::move(c.picks), ack);
  }
  // Only now: a peer route that changes meanwhile waits until these copies
  // are queued, so a route hand-over's barrier answer (which names the last
  // copy queued for a peer) covers every copy routed by the old routes.
  if (to_peers) remote_lock.unlock();
  const std::size_t copies = t_copies.size();
  if (targets.empty()) return {copies, persistence.append(ops), std::move(ack)};

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
  // One vector per other worker, reused per thread (but not by a publish
  // made while delivering this one: a will, say).
  thread_local std::vector<std::vector<delivery_mailbox::item>> reused;
  thread_local bool reused_busy = false;
  std::vector<std::vector<delivery_mailbox::item>> fresh;
  auto& remote_batches = reused_busy ? fresh : reused;
  const bool owns_reused = !reused_busy;
  reused_busy = true;
  remote_batches.resize(executor.worker_count());
  std::size_t routed = targets.size() + copies;
  for (auto& t : targets) {
    delivery d{msg, std::min(msg->qos, t.qos), t.retain_as_published && msg->retain, std::move(t.ids), t.stored, true};
    ports::worker_id owner = t.s->owner();
    // While our own box holds deliveries (a session that just moved here
    // brings its earlier ones there), a local one queues behind them.
    if (owner == here && mailboxes[here]->size() == 0) {
      t.s->deliver(std::move(d), now, my_stats());
    } else {
      remote_batches[owner].emplace_back(std::move(t.s), std::move(d));
    }
  }
  for (ports::worker_id w = 0; w < remote_batches.size(); ++w)
    if (!remote_batches[w].empty()) send_to_worker(w, remote_batches[w]);
  if (owns_reused) reused_busy = false;
  return {routed, ticket, std::move(ack)};
}

void broker::impl::send_to_worker(ports::worker_id w, std::vector<delivery_mailbox::item>& batch) {
  std::uint64_t dropped = 0;
  std::vector<delivery_mailbox::item> moved;  // their session changed worker since route() looked
  const bool post = mailboxes[w]->put(
      batch, dropped, [w](const delivery_mailbox::item& i) { return i.first->owner() == w; }, moved);
  batch.clear();
  if (dropped != 0) my_stats().add(my_stats().dropped_queue_full[0], dropped);  // only QoS 0 is dropped there
  if (post) executor.post(w, [this, w] { drain_mailbox(w); });
  for (auto& i : moved) {
    std::vector<delivery_mailbox::item> one;
    one.push_back(std::move(i));
    send_to_worker(one.front().first->owner(), one);
  }
}

void broker::impl::drain_mailbox(ports::worker_id w) {
  thread_local std::vector<delivery_mailbox::item> batch;
  mailboxes[w]->take(batch);
  const auto now = this->now();
  auto& st = my_stats();
  for (auto& [s, d] : batch) {
    if (s->owner() == w) {
      s->deliver(std::move(d), now, st);
    } else {  // moved to another worker meanwhile
      run_on_owner(std::move(s), [this, d = std::move(d)](const std::shared_ptr<session>& moved) mutable {
        moved->deliver(std::move(d), this->now(), my_stats());
      });
    }
  }
  batch.clear();  // the sessions and messages go now, not at the next drain
}

}  // namespace flock::core
