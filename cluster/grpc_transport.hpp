#pragma once
// The cluster transport over gRPC (Debian's libgrpc++): one Cluster service
// per node, one bidirectional Link stream per peer and direction, plaintext
// HTTP/2 on TCP, over mutual TLS (cluster_tls) or, when `tls` is null,
// plaintext. Uses gRPC's callback API: events run on gRPC's threads.
// Owned by the cluster node; shutdown() before destruction.
#include <memory>

#include "cluster/transport.hpp"

namespace flock::cluster {

class cluster_tls;

std::unique_ptr<transport> make_grpc_transport(std::shared_ptr<cluster_tls> tls = nullptr);

}  // namespace flock::cluster
