#pragma once
// The cluster transport over gRPC (Debian's libgrpc++): one Cluster service
// per node, one bidirectional Link stream per peer and direction, plaintext
// HTTP/2 on TCP. Uses gRPC's callback API: events run on gRPC's threads.
// Owned by the cluster node; shutdown() before destruction.
#include <memory>

#include "cluster/transport.hpp"

namespace flock::cluster {

std::unique_ptr<transport> make_grpc_transport();

}  // namespace flock::cluster
