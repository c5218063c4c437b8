#pragma once
// A node's cluster settings (docs/configuration.md, "Cluster").
#include <chrono>
#include <cstddef>
#include <cstdint>
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
  // A follower whose acknowledgement an owner has waited for this long is
  // shrunk from the ISR of the owner's partitions (replication).
  std::chrono::milliseconds replication_lag_timeout{2000};
  // Snapshots of our partitions sent to followers, all together, at most
  // this many bytes per second (docs/replication.md, 6), so catching a
  // follower up never takes the disk or the link from live traffic.
  // 0: unlimited.
  std::size_t replication_snapshot_bytes_per_s = 32u << 20;
  std::chrono::milliseconds claim_timeout{3000};    // a connect waits this long for silent peers
  std::chrono::milliseconds ack_timeout{2000};      // a publisher's ack waits this long for a peer
  std::chrono::milliseconds dns_interval{5000};
  std::chrono::milliseconds move_timeout{60000};
  // A moved session's old node routes for it (passing on what arrives) at
  // most this long while peers catch up with the new node's routes.
  std::chrono::milliseconds handover_timeout{10000};
  // start() waits this long for the seeds to answer: a node that takes
  // clients before it knows its peers would not find sessions living there.
  std::chrono::milliseconds join_timeout{3000};
  // Shutdown waits this long for the other nodes to take this node's
  // sessions (0: they stay on this node's disk until it is back).
  std::chrono::milliseconds drain_timeout{10000};    // a session handed over and never confirmed stays here
  // A peer unreachable this long is forgotten: its slot (one of
  // node::max_peers) and what waits for it (unacknowledged forwarded
  // copies) go. One that was never reachable, or that left with nothing
  // queued for it, goes after ten failure timeouts.
  std::chrono::milliseconds forget_after{3600000};
  std::size_t max_outbox_messages = 100000;  // per peer: forwarded publishes not yet acknowledged
  std::size_t max_outbox_bytes = 64u << 20;
  std::size_t batch_bytes = 256u << 10;      // per write on a link
  // The newest cluster protocol this node speaks (wire_codec.hpp). Only
  // tests lower it, to play a node from before in a rolling upgrade.
  std::uint32_t protocol = 2;

  // Replicated sessions (docs/replication.md): 0 keeps them off. Otherwise
  // the node runs the replication controller (its Raft log in the data
  // directory) with this many copies of each partition as its target.
  std::uint32_t replication_factor = 0;
  // Nodes that create a new controller together at first start (0: the
  // seeds and this node). Every node of a new cluster should say the same.
  std::size_t cluster_expect = 0;

  // Mutual TLS between nodes (docs/clustering.md, "Security"): on unless
  // turned off explicitly. Each node presents `certfile` (as server and as
  // client) and accepts only peers whose chain leads to a CA in `cafile`.
  bool tls = true;
  std::string certfile, keyfile, cafile;
  // How often certificate files are checked for changes (cert-manager
  // rotates them in place).
  std::chrono::milliseconds tls_reload_interval{10000};
  // A shared secret every hello must prove (empty: none), read from
  // `secret_file` at start-up.
  std::string secret_file;
  std::string secret;
};

}  // namespace flock::cluster
