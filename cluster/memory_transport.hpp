#pragma once
// Nodes of one process connected by a memory network, for tests of the
// cluster logic: the same streams as gRPC, delivered by one network thread
// in order per stream, and links that can be cut (a netsplit: writes across
// the cut vanish, nothing reports an error) and healed.
#include <memory>
#include <string>

#include "cluster/transport.hpp"

namespace flock::cluster {

class memory_network {
 public:
  memory_network();
  ~memory_network();
  // A transport for the node that will serve on `address`.
  std::unique_ptr<transport> make_transport(const std::string& address);
  // Cuts (or heals) both directions between two nodes' addresses.
  void cut(const std::string& a, const std::string& b);
  void heal(const std::string& a, const std::string& b);

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace flock::cluster
