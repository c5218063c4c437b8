// Retained messages in a cluster: every node keeps all of them, and a topic
// written on two nodes at once ends up the same everywhere: the write with
// the newest stamp wins, clears included (docs/clustering.md).
#include "broker/clustering/member.hpp"

namespace flock::clustering {

void member::retain(const core::message_ptr& msg, std::vector<ports::store_op>& ops) {
  msg->written = hlc.now();
  apply_retained(msg, ops);
}

void member::retained(const core::message_ptr& msg) { cluster_->retained_changed(msg); }

void member::retained_restored(const core::message_ptr& m) {
  hlc.observe(m->written);
  retained_digest ^= retained_digest_part(m->topic, m->written);
}

// Expiry runs on each node's own clock: what expires leaves the digest.
void member::retained_expired(const core::message_ptr& m) {
  retained_digest ^= retained_digest_part(m->topic, m->written);
}

void member::tick(ports::time_point now) { clears.expire(now); }

bool member::apply_retained(const core::message_ptr& msg, std::vector<ports::store_op>& ops) {
  core::message_ptr current = b_.retained.find(msg->topic);
  const core::stamp have = current ? current->written : clears.find(msg->topic);
  if (!(have < msg->written)) return false;
  if (current) retained_digest ^= retained_digest_part(current->topic, current->written);
  if (msg->payload.empty()) {
    b_.retained.erase(msg->topic);
    clears.put(msg->topic, msg->written, b_.now());
    if (b_.persistence.enabled()) ops.push_back(ports::retained_delete{msg->topic});
  } else {
    b_.retained.set(msg);
    clears.erase(msg->topic);
    retained_digest ^= retained_digest_part(msg->topic, msg->written);
    if (b_.persistence.enabled()) ops.push_back(ports::retained_put{msg});
  }
  return true;
}

}  // namespace flock::clustering
