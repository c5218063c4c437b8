#include "broker/core/front_door.hpp"

#include "broker/core/broker_impl.hpp"

namespace flock::core {

const broker_config& front_door::config() const { return core_.config; }
ports::time_point front_door::now() const { return core_.now(); }
ports::worker_id front_door::current() const { return core_.current(); }
ports::executor& front_door::executor() const { return core_.executor; }
worker_stats& front_door::my_stats() { return core_.my_stats(); }

const ports::authenticator* front_door::authenticator() const { return core_.authenticator; }

bool front_door::may_publish(std::string_view client_id, std::optional<std::string_view> username,
                             std::string_view topic) const {
  return !core_.authorizer || core_.authorizer->can_publish(client_id, username, topic);
}

bool front_door::may_subscribe(std::string_view client_id, std::optional<std::string_view> username,
                               std::string_view filter_or_topic) const {
  return !core_.authorizer || core_.authorizer->can_subscribe(client_id, username, filter_or_topic);
}

void front_door::client_connected() {
  const auto now_connected = core_.clients_connected.fetch_add(1) + 1;
  auto max = core_.clients_maximum.load();
  while (now_connected > max && !core_.clients_maximum.compare_exchange_weak(max, now_connected)) {
  }
}

void front_door::client_disconnected() { core_.clients_connected.fetch_sub(1); }

void front_door::open_session(const std::string& client_id, bool clean_start,
                              std::weak_ptr<session_requester> requester) {
  core_.open_session(client_id, clean_start, std::move(requester));
}

void front_door::session_detached(const std::shared_ptr<session>& s, std::optional<message_ptr> will,
                                  std::uint32_t will_delay) {
  core_.on_session_detached(s, std::move(will), will_delay);
}

std::uint64_t front_door::new_message_id() { return core_.new_id(); }

publish_result front_door::publish(const message_ptr& msg, std::optional<ports::store_op> publisher_op) {
  return core_.publish(msg, std::move(publisher_op));
}

subscription_change front_door::subscribe(const std::shared_ptr<session>& s, const std::string& filter,
                                          const subscription_options& opts) {
  return core_.subscribe(s, filter, opts);
}

subscription_change front_door::unsubscribe(const std::shared_ptr<session>& s, const std::string& filter) {
  return core_.unsubscribe(s, filter);
}

std::vector<message_ptr> front_door::retained_for(std::string_view filter) { return core_.retained_for(filter); }

ports::store* front_door::store() const { return core_.persistence.store(); }
bool front_door::store_healthy() const { return core_.persistence.healthy(); }
journal::ticket front_door::persist(ports::store_op op) { return core_.persistence.append(std::move(op)); }

}  // namespace flock::core
