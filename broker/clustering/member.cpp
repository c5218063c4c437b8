#include "broker/clustering/member.hpp"

namespace flock::clustering {

member::member(core::broker& b)
    : hlc(core::node_hash(b.config().node_name)), b_(b.internals()), host_(make_host(*this)) {}

member::~member() = default;

void member::add_metrics(core::broker_metrics& m) {
  m.cluster = cluster_->status();
  m.remote_routes = remote.size();
}

}  // namespace flock::clustering
