// Subscribe / unsubscribe: the session's own list and the shared index.
#include "broker/codec/topic.hpp"
#include "broker/core/broker_impl.hpp"

namespace flock::core {

bool broker::impl::subscribe(const std::shared_ptr<session>& s, const std::string& filter,
                             const subscription_options& opts) {
  bool is_new;
  {
    std::unique_lock lock(index_mutex);
    is_new = index.add(filter, s, opts);
  }
  s->subscriptions()[filter] = opts;
  return is_new;
}

bool broker::impl::unsubscribe(const std::shared_ptr<session>& s, const std::string& filter) {
  auto it = s->subscriptions().find(filter);
  if (it == s->subscriptions().end()) return false;
  s->subscriptions().erase(it);
  std::unique_lock lock(index_mutex);
  index.remove(filter, s.get());
  return true;
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
