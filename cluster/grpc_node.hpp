#pragma once
// The cluster node over gRPC, for the app to wire in: the only cluster
// header it needs (no generated protobuf headers behind it).
#include <memory>

#include "broker/ports/cluster.hpp"
#include "cluster/options.hpp"

namespace flock::cluster {

std::unique_ptr<ports::cluster> make_grpc_node(const options& opts, ports::cluster_host& host);

}  // namespace flock::cluster
