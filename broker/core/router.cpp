// Routing: a publish becomes one delivery per matching session, one post per
// target worker (carrying a batch), one copy per peer node with a matching
// route, and no copy of the message itself. route() reads as its steps:
// match locally, plan peers, persist, dispatch.
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
thread_local std::vector<group_turn> t_groups;
thread_local std::vector<ports::store_op> t_ops;
thread_local peer_plan t_plan;

target target_of(const std::shared_ptr<session>& s, const subscription_options& o) {
  target t{s, o.qos, o.retain_as_published, {}};
  if (o.identifier != 0) t.ids.push_back(o.identifier);
  return t;
}

// Every session subscribed to msg's topic, and every shared group with members here.
void match_locally(const subscription_index& index, const message& msg, std::vector<target>& targets,
                   std::vector<group_turn>& groups) {
  index.match(
      msg.topic,
      [&](const std::shared_ptr<session>& s, const subscription_options& o) {
        if (o.no_local && s->client_id() == msg.publisher) return;
        targets.push_back(target_of(s, o));
      },
      [&](const subscription_index::group& g) {
        if (!g.members().empty()) groups.push_back({&g, std::nullopt});
      });
}

// The member of each group whose turn is here, preferring connected ones.
void pick_members(const std::vector<group_turn>& groups, std::vector<target>& targets) {
  for (const auto& turn : groups) {
    if (!turn.member) continue;
    const auto& members = turn.group->members();
    std::size_t pick = *turn.member;
    for (std::size_t i = 0; i < members.size(); ++i) {
      std::size_t k = (*turn.member + i) % members.size();
      if (members[k].target->online()) {
        pick = k;
        break;
      }
    }
    targets.push_back(target_of(members[pick].target, members[pick].options));
  }
}

// One copy per session, at the highest granted QoS, carrying every matching
// subscription identifier (MQTT 5 3.3.4).
void merge_per_session(std::vector<target>& targets) {
  if (targets.size() < 2) return;
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

}  // namespace

broker::impl::publish_result broker::impl::publish(const message_ptr& msg, std::optional<ports::store_op> publisher_op) {
  auto& ops = t_ops;
  ops.clear();
  if (publisher_op) ops.push_back(std::move(*publisher_op));
  // $SYS topics are per node, rebuilt every interval: neither stored nor
  // told to peers.
  const bool sys = msg->topic.starts_with("$SYS/");
  if (msg->retain) {
    {
      std::unique_lock lock(retained_mutex);
      if (sys) retained.set(msg);
      else cluster->retain(msg, ops);
    }
    if (!sys) cluster->retained(msg);
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

namespace {

// Persistent sessions get their QoS 1/2 copy on disk: the message once, a
// queued record each. Appended before any post to a worker, so every later
// change by the target sessions' workers comes after it in the store's log.
journal::ticket persist(broker::impl& b, const message_ptr& msg, std::vector<target>& targets,
                        std::vector<ports::store_op>& ops) {
  if (msg->id != 0) {
    const std::size_t first = ops.size();
    std::uint32_t stored = 0;
    msg->partitions.clear();
    for (auto& t : targets) {
      std::uint8_t qos = std::min(msg->qos, t.qos);
      if (qos == 0 || !t.s->stores_messages()) continue;
      t.stored = true;
      ++stored;
      msg->partitions.add(t.s->partition());
      ops.push_back(ports::queued_put{t.s->id(), msg->id, {qos, t.retain_as_published && msg->retain, t.ids}});
    }
    if (stored != 0) {
      msg->refs.value.store(stored, std::memory_order_relaxed);  // published by the posts below
      ops.insert(ops.begin() + static_cast<std::ptrdiff_t>(first), ports::message_put{msg});
    }
  }
  return b.persistence.append(ops);
}

// Each target session gets its delivery on its owner worker: at once when
// that is this one, else in one batch per worker.
void dispatch(broker::impl& b, const message_ptr& msg, std::vector<target>& targets) {
  const ports::worker_id here = b.current();
  const auto now = b.now();
  // One vector per other worker, reused per thread (but not by a publish
  // made while delivering this one: a will, say).
  thread_local std::vector<std::vector<delivery_mailbox::item>> reused;
  thread_local bool reused_busy = false;
  std::vector<std::vector<delivery_mailbox::item>> fresh;
  auto& batches = reused_busy ? fresh : reused;
  const bool owns_reused = !reused_busy;
  reused_busy = true;
  batches.resize(b.executor.worker_count());
  for (auto& t : targets) {
    delivery d{msg, std::min(msg->qos, t.qos), t.retain_as_published && msg->retain, std::move(t.ids), t.stored, true};
    ports::worker_id owner = t.s->owner();
    // While our own box holds deliveries (a session that just moved here
    // brings its earlier ones there), a local one queues behind them.
    if (owner == here && b.mailboxes[here]->size() == 0) {
      t.s->deliver(std::move(d), now, b.my_stats());
    } else {
      batches[owner].emplace_back(std::move(t.s), std::move(d));
    }
  }
  for (ports::worker_id w = 0; w < batches.size(); ++w)
    if (!batches[w].empty()) b.send_to_worker(w, batches[w]);
  if (owns_reused) reused_busy = false;
}

}  // namespace

broker::impl::publish_result broker::impl::route(const message_ptr& msg, std::vector<ports::store_op>& ops,
                                                 const std::vector<ports::shared_pick>* forwarded) {
  auto& targets = t_targets;
  auto& groups = t_groups;
  auto& plan = t_plan;
  targets.clear();
  groups.clear();
  plan.copies.clear();
  {
    std::shared_lock lock(index_mutex);  // groups point into the index
    match_locally(index, *msg, targets, groups);
    cluster->plan_peers(*msg, forwarded, groups, plan);
    pick_members(groups, targets);
  }
  merge_per_session(targets);
  const journal::ticket ticket = persist(*this, msg, targets, ops);
  const std::size_t routed = targets.size() + plan.copies.size();
  remote_ack_ptr ack = cluster->send_to_peers(msg, plan);
  if (!targets.empty()) dispatch(*this, msg, targets);
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
