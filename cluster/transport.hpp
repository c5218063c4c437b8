#pragma once
// How nodes reach each other, as the cluster logic sees it: streams of
// wire::Batch. The gRPC transport (grpc_transport.cpp) carries them over
// HTTP/2 on TCP; the memory transport (memory_transport.cpp) between nodes
// of one process, for tests, where links can also be cut.
//
// Threads: events arrive on the transport's threads, one at a time per
// stream; a link's methods may be called from any thread, also after the
// stream ended (they do nothing then).
// Lifetime: links are shared; the events object must outlive the stream
// (until on_closed). shutdown() ends every stream and waits for their
// on_closed before it returns.
#include <functional>
#include <memory>
#include <string>

#include "proto/cluster.pb.h"

namespace flock::cluster {

// Our stream to a peer.
class outbound_link {
 public:
  virtual ~outbound_link() = default;
  // Sends one batch. One write at a time: the next after on_written.
  virtual void write(wire::Batch batch) = 0;
  // Ends the stream; on_closed follows.
  virtual void close() = 0;
};

class outbound_events {
 public:
  virtual ~outbound_events() = default;
  virtual void on_response(wire::Batch&& batch) = 0;
  virtual void on_written() = 0;
  virtual void on_closed() = 0;  // last event
};

// A peer's stream to us.
class inbound_link {
 public:
  virtual ~inbound_link() = default;
  // Queues frames for the response side; written in order, batched.
  virtual void respond(wire::Batch batch) = 0;
  virtual void close() = 0;
};

class inbound_events {
 public:
  virtual ~inbound_events() = default;
  virtual void on_batch(wire::Batch&& batch) = 0;
  virtual void on_closed() = 0;  // last event
};

class transport {
 public:
  virtual ~transport() = default;
  // Accepts streams on `address` (HOST:PORT); `accept` makes the events
  // object of each. Throws std::runtime_error when it cannot listen.
  using acceptor = std::function<std::shared_ptr<inbound_events>(std::shared_ptr<inbound_link>)>;
  virtual void serve(const std::string& address, acceptor accept) = 0;
  // The port actually bound (serve() with port 0).
  virtual int bound_port() const = 0;
  // Opens a stream to `address`. Failure shows as on_closed (soon, or when
  // the connection attempt gives up).
  virtual std::shared_ptr<outbound_link> dial(const std::string& address, std::shared_ptr<outbound_events> events) = 0;
  virtual void shutdown() = 0;
};

}  // namespace flock::cluster
