#pragma once
// A node's cluster settings (docs/configuration.md, "Cluster").
#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace flock::cluster {

struct options {
  std::string node_name;                  // unique in the cluster; names the node to its peers
  std::string listen;                     // HOST:PORT for Link streams; empty: no cluster
  std::string advertise;                  // HOST:PORT peers dial; empty: `listen`
  std::vector<std::string> seeds;         // HOST:PORT of nodes to join through
  std::string dns;                        // NAME:PORT resolved every dns_interval (a headless Service)
  std::chrono::milliseconds heartbeat{500};
  std::chrono::milliseconds failure_timeout{5000};  // silent this long: the peer is down, its routes go
  std::chrono::milliseconds claim_timeout{3000};    // a connect waits this long for silent peers
  std::chrono::milliseconds ack_timeout{2000};      // a publisher's ack waits this long for a peer
  std::chrono::milliseconds dns_interval{5000};
  std::chrono::milliseconds move_timeout{60000};
  // start() waits this long for the seeds to answer: a node that takes
  // clients before it knows its peers would not find sessions living there.
  std::chrono::milliseconds join_timeout{3000};
  // Shutdown waits this long for the other nodes to take this node's
  // sessions (0: they stay on this node's disk until it is back).
  std::chrono::milliseconds drain_timeout{10000};    // a session handed over and never confirmed stays here
  std::size_t max_outbox_messages = 100000;  // per peer: forwarded publishes not yet acknowledged
  std::size_t max_outbox_bytes = 64u << 20;
  std::size_t batch_bytes = 256u << 10;      // per write on a link
};

}  // namespace flock::cluster
