// Subscribe / unsubscribe: the session's own list and the shared index.
#include "broker/codec/topic.hpp"
#include "broker/core/broker_impl.hpp"

namespace flock::core {

broker::impl::subscription_change broker::impl::subscribe(const std::shared_ptr<session>& s, const std::string& filter,
                                                           const subscription_options& opts) {
  subscription_change c;
  {
    std::unique_lock lock(index_mutex);
    const std::size_t before = index.holders(filter);
    c.changed = index.add(filter, s, opts);
    note_route(filter, before);
  }
  s->subscriptions()[filter] = opts;
  if (s->stores_messages()) c.ticket = persistence.append(ports::subscription_put{s->id(), filter, opts});
  return c;
}

broker::impl::subscription_change broker::impl::unsubscribe(const std::shared_ptr<session>& s,
                                                             const std::string& filter) {
  subscription_change c;
  auto it = s->subscriptions().find(filter);
  if (it == s->subscriptions().end()) return c;
  s->subscriptions().erase(it);
  {
    std::unique_lock lock(index_mutex);
    const std::size_t before = index.holders(filter);
    index.remove(filter, s.get());
    note_route(filter, before);
  }
  c.changed = true;
  if (s->has_record()) c.ticket = persistence.append(ports::subscription_delete{s->id(), filter});
  return c;
}

void broker::impl::note_route(std::string_view filter, std::size_t before) {
  cluster->local_route_changed(filter, before, index.holders(filter));
}

std::vector<message_ptr> broker::impl::retained_for(std::string_view filter) {
  std::vector<message_ptr> out;
  std::shared_lock lock(retained_mutex);
  retained.match(filter, [&](const message_ptr& m) { out.push_back(m); });
  return out;
}

std::size_t broker::impl::subscription_count() {
  std::shared_lock lock(index_mutex);
  return index.size();
}

}  // namespace flock::core
