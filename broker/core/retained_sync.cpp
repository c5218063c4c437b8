// Retained messages in a cluster: every node keeps all of them, and a topic
// written on two nodes at once ends up the same everywhere: the write with
// the newest stamp wins, clears included (docs/clustering.md).
#include "broker/core/broker_impl.hpp"

namespace flock::core {

bool broker::impl::apply_retained(const message_ptr& msg, std::vector<ports::store_op>& ops) {
  message_ptr current = retained.find(msg->topic);
  const stamp have = current ? current->written : clears.find(msg->topic);
  if (!(have < msg->written)) return false;
  if (current) retained_digest ^= retained_digest_part(current->topic, current->written);
  if (msg->payload.empty()) {
    retained.erase(msg->topic);
    clears.put(msg->topic, msg->written, now());
    if (persistence.enabled()) ops.push_back(ports::retained_delete{msg->topic});
  } else {
    retained.set(msg);
    clears.erase(msg->topic);
    retained_digest ^= retained_digest_part(msg->topic, msg->written);
    if (persistence.enabled()) ops.push_back(ports::retained_put{msg});
  }
  return true;
}

}  // namespace flock::core
