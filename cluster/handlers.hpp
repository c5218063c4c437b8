#pragma once
// The node's side of each stream: what the transport's threads call. They
// do the cheap, ordered parts at once (acknowledgements, deduplicating and
// delivering forwarded publishes) and post everything else to the node's
// thread. One handler per stream; it lives until the stream's on_closed.
#include "cluster/node.hpp"

namespace flock::cluster {

// Our stream to a peer (or a probe: a stream to a seed or DNS address whose
// node we do not know yet, only asking who is there).
class outbound_handler final : public outbound_events, public std::enable_shared_from_this<outbound_handler> {
 public:
  outbound_handler(node& n, std::shared_ptr<peer> p, std::string probe_address)
      : node_(n), peer_(std::move(p)), probe_address_(std::move(probe_address)) {}
  void on_response(wire::Batch&& batch) override;
  void on_written() override;
  void on_closed() override;

  std::shared_ptr<outbound_link> link;  // set by the node's thread right after dialing

 private:
  node& node_;
  std::shared_ptr<peer> peer_;  // null for a probe
  std::string probe_address_;
};

// A peer's stream to us.
class inbound_handler final : public inbound_events, public std::enable_shared_from_this<inbound_handler> {
 public:
  inbound_handler(node& n, std::shared_ptr<inbound_link> link) : node_(n), link_(std::move(link)) {}
  void on_batch(wire::Batch&& batch) override;
  void on_closed() override;

 private:
  node& node_;
  std::shared_ptr<inbound_link> link_;
  std::shared_ptr<peer> origin_;  // set by the hello
  std::uint64_t incarnation_ = 0;
};

}  // namespace flock::cluster
